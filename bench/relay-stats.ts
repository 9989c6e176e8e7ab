/**
 * Pure statistics of the relay benchmark (bench/relay.ts): how stable a figure is across rounds,
 * ratios paired within a round, per-thread CPU from /proc/<pid>/task/<tid>/stat, and the
 * connection-churn summary. No I/O.
 */

export function median (xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid] as number : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}
/** min, median, max and the spread (max − min) / median of a series of figures. */
export interface Spread { n: number, min: number, median: number, max: number, spread: number }

export function spreadOf (xs: readonly number[]): Spread {
  const ok = xs.filter((x) => Number.isFinite(x))
  if (ok.length === 0) return { n: 0, min: NaN, median: NaN, max: NaN, spread: NaN }
  const m = median(ok)
  const min = Math.min(...ok)
  const max = Math.max(...ok)
  return { n: ok.length, min, median: m, max, spread: m === 0 ? NaN : (max - min) / m }
}

/**
 * `of / to` for every round in which both ran, in round order. A ratio of two figures measured a
 * few seconds apart in one round is what the noise of a shared host hurts least: a slow phase of
 * the host lowers both.
 */
export function pairedRatios<P extends string> (runs: ReadonlyArray<{ path: P, round: number, value: number }>, of: P, to: P): number[] {
  const rounds = [...new Set(runs.map((r) => r.round))].sort((a, b) => a - b)
  const out: number[] = []
  for (const round of rounds) {
    const a = runs.find((r) => r.round === round && r.path === of)
    const b = runs.find((r) => r.round === round && r.path === to)
    if (a !== undefined && b !== undefined && b.value > 0) out.push(a.value / b.value)
  }
  return out
}

/** One thread's name (comm) and CPU clock ticks (utime + stime) from /proc/<pid>/task/<tid>/stat text. */
export function parseThreadStat (text: string): { name: string, ticks: number } {
  const open = text.indexOf('(')
  const close = text.lastIndexOf(')')
  const name = open >= 0 && close > open ? text.slice(open + 1, close) : '?'
  const f = text.slice(close + 2).split(' ').map(Number)
  return { name, ticks: (f[11] ?? 0) + (f[12] ?? 0) }
}

/** Per-thread CPU seconds between two samples (thread id → {name, ticks}), summed by thread name, largest first. */
type ThreadTicks = ReadonlyMap<string, { name: string, ticks: number }>

export function threadDelta (before: ThreadTicks, after: ThreadTicks, clk: number): Array<{ name: string, seconds: number }> {
  const byName = new Map<string, number>()
  for (const [tid, a] of after) {
    const ticks = a.ticks - (before.get(tid)?.ticks ?? 0)
    if (ticks > 0) byName.set(a.name, (byName.get(a.name) ?? 0) + ticks)
  }
  return [...byName.entries()].sort((x, y) => y[1] - x[1]).map(([name, ticks]) => ({ name, seconds: ticks / clk }))
}

/** Many short connections through one relay: connections per second and per CPU-second of the relay. */
export interface ChurnRun {
  path: string
  round: number
  connections: number
  failed: number
  seconds: number
  cpuSeconds: number
  perSecond: number
  perCoreSecond: number
}

export function churnRun (path: string, round: number, r: { count: number, failed: number, ms: number }, cpuSeconds: number): ChurnRun {
  const seconds = r.ms / 1000
  return {
    path,
    round,
    connections: r.count,
    failed: r.failed,
    seconds,
    cpuSeconds,
    perSecond: seconds > 0 ? r.count / seconds : NaN,
    perCoreSecond: cpuSeconds > 0 ? r.count / cpuSeconds : NaN
  }
}
