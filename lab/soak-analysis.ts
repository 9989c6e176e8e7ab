/**
 * The churn soak's verdict (docs/soak.md), pure: the daemons' samples (every 10 s: RSS, V8 heap
 * used, open fds, hybrid_connections_active, /api/v1/sessions total) and the load generator's
 * totals in, checks and a pass/fail out.
 *
 * Leak checks: after the load and a settle time, open fds within `fdMargin` of the baseline and
 * connections and sessions back to the baseline. Trend checks, over the last `trendFraction` of
 * the load phase (the first third is warm-up: JIT, V8 heap sizing, buffer pools): memory is read
 * as its floor, the minimum per `bucketS` bucket, because V8's heap saw-tooths by tens of MiB
 * between collections and a random 10 s sample of a saw-tooth is noise; a leak lifts the floor.
 * The least-squares slope of the floors must stay below `*SlopeMiBPerMin` (catches fast leaks in a
 * short run) and last floor minus first floor below `*GrowthMiB` (catches slow leaks in a long run).
 */

export type SoakDaemon = 'cpe' | 'concentrator'
export const SOAK_DAEMONS: readonly SoakDaemon[] = ['cpe', 'concentrator']

export interface SoakSample {
  /** Seconds since the load started (the baseline is taken before: negative). */
  readonly atS: number
  readonly rssBytes: number
  readonly heapUsedBytes: number
  readonly openFds: number
  readonly connectionsActive: number
  readonly sessions: number
}

export interface DaemonSeries {
  readonly baseline: SoakSample
  /** Samples taken while the load ran, in time order. */
  readonly load: readonly SoakSample[]
  /** After the load and the settle time. */
  readonly final: SoakSample
}

export interface SoakLoadTotals {
  /** Connections the schedule asked for (rate × duration). */
  readonly planned: number
  readonly started: number
  /** Finished one way or the other (ok + aborted + halfClosed + errors). */
  readonly done: number
  readonly ok: number
  readonly aborted: number
  readonly halfClosed: number
  readonly errors: number
  /** Not started because `maxInflight` connections were open. */
  readonly skipped: number
  readonly bytesDown: number
  readonly bytesUp: number
  /** `<kind>:<reason>` → count (soak-load.ts kinds; reasons: errno codes, timeout, short-body, …). */
  readonly errorsByReason: Readonly<Record<string, number>>
}

export interface SoakThresholds {
  readonly trendFraction: number
  readonly bucketS: number
  readonly rssSlopeMiBPerMin: number
  readonly rssGrowthMiB: number
  readonly heapSlopeMiBPerMin: number
  readonly heapGrowthMiB: number
  /** Final open fds may exceed the baseline by this many. */
  readonly fdMargin: number
  /** errors / done at most. */
  readonly maxErrorRatio: number
  /** done / planned at least (the load really ran). */
  readonly minDoneRatio: number
  /** Fewer trend buckets than this: the trend checks fail (run too short to judge). */
  readonly minBuckets: number
}

/** The documented bounds (docs/soak.md explains each margin). */
export const SOAK_THRESHOLDS: SoakThresholds = {
  trendFraction: 2 / 3,
  bucketS: 60,
  rssSlopeMiBPerMin: 3,
  rssGrowthMiB: 24,
  heapSlopeMiBPerMin: 3,
  heapGrowthMiB: 16,
  fdMargin: 4,
  maxErrorRatio: 0.01,
  minDoneRatio: 0.9,
  minBuckets: 4
}

export interface SoakCheck {
  readonly subject: SoakDaemon | 'load'
  readonly name: string
  readonly value: number
  readonly limit: number
  /** How value compares with limit to pass. */
  readonly rule: '<=' | '>='
  readonly unit: string
  readonly ok: boolean
}

export interface MemoryTrend {
  /** Floor (MiB) of the first and last trend bucket. */
  readonly startMiB: number
  readonly endMiB: number
  readonly growthMiB: number
  readonly slopeMiBPerMin: number
  readonly buckets: number
}

export interface DaemonFigures {
  readonly rss: MemoryTrend
  readonly heap: MemoryTrend
  readonly rssMiB: { readonly baseline: number, readonly peak: number, readonly final: number }
  readonly heapMiB: { readonly baseline: number, readonly peak: number, readonly final: number }
  readonly fds: { readonly baseline: number, readonly peak: number, readonly final: number }
  readonly connections: { readonly baseline: number, readonly peak: number, readonly final: number }
  readonly sessions: { readonly baseline: number, readonly peak: number, readonly final: number }
}

export interface SoakVerdict {
  readonly pass: boolean
  readonly checks: readonly SoakCheck[]
  readonly failed: readonly SoakCheck[]
  readonly daemons: Readonly<Record<SoakDaemon, DaemonFigures>>
  /** The trend window, seconds since the load started. */
  readonly trendWindowS: readonly [number, number]
}

const MIB = 1024 * 1024
const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits

/** Least-squares slope of y over x (0 with fewer than two distinct x). Pure. */
export function leastSquaresSlope (xs: readonly number[], ys: readonly number[]): number {
  const n = Math.min(xs.length, ys.length)
  if (n < 2) return 0
  let sx = 0
  let sy = 0
  for (let i = 0; i < n; i++) { sx += xs[i]!; sy += ys[i]! }
  const mx = sx / n
  const my = sy / n
  let sxx = 0
  let sxy = 0
  for (let i = 0; i < n; i++) { sxx += (xs[i]! - mx) ** 2; sxy += (xs[i]! - mx) * (ys[i]! - my) }
  return sxx === 0 ? 0 : sxy / sxx
}

/** The samples of the last `fraction` of the load phase. */
export function trendSamples (load: readonly SoakSample[], fraction: number): SoakSample[] {
  if (load.length === 0) return []
  const first = load[0]!.atS
  const last = load[load.length - 1]!.atS
  const from = last - (last - first) * fraction
  return load.filter((s) => s.atS >= from)
}

/** Floors: per bucket of `bucketS` from the window start, the minimum of `value` (MiB) at the bucket's middle. */
export function bucketFloors (samples: readonly SoakSample[], bucketS: number,
  value: (s: SoakSample) => number): Array<{ atMin: number, mib: number }> {
  if (samples.length === 0) return []
  const start = samples[0]!.atS
  const buckets = new Map<number, number>()
  for (const s of samples) {
    const k = Math.floor((s.atS - start) / bucketS)
    const v = value(s) / MIB
    buckets.set(k, Math.min(buckets.get(k) ?? Infinity, v))
  }
  return [...buckets.entries()].sort((a, b) => a[0] - b[0]).map(([k, mib]) => ({ atMin: (start + (k + 0.5) * bucketS) / 60, mib }))
}

function memoryTrend (samples: readonly SoakSample[], bucketS: number, value: (s: SoakSample) => number): MemoryTrend {
  const floors = bucketFloors(samples, bucketS, value)
  const startMiB = floors[0]?.mib ?? 0
  const endMiB = floors[floors.length - 1]?.mib ?? 0
  return {
    startMiB: round(startMiB),
    endMiB: round(endMiB),
    growthMiB: round(endMiB - startMiB),
    slopeMiBPerMin: round(leastSquaresSlope(floors.map((f) => f.atMin), floors.map((f) => f.mib)), 3),
    buckets: floors.length
  }
}

function span (series: DaemonSeries, value: (s: SoakSample) => number, scale = 1): { baseline: number, peak: number, final: number } {
  const all = [series.baseline, ...series.load, series.final]
  return {
    baseline: round(value(series.baseline) / scale),
    peak: round(Math.max(...all.map(value)) / scale),
    final: round(value(series.final) / scale)
  }
}

/** The figures of one daemon. Pure. */
export function daemonFigures (series: DaemonSeries, t: SoakThresholds = SOAK_THRESHOLDS): DaemonFigures {
  const window = trendSamples(series.load, t.trendFraction)
  return {
    rss: memoryTrend(window, t.bucketS, (s) => s.rssBytes),
    heap: memoryTrend(window, t.bucketS, (s) => s.heapUsedBytes),
    rssMiB: span(series, (s) => s.rssBytes, MIB),
    heapMiB: span(series, (s) => s.heapUsedBytes, MIB),
    fds: span(series, (s) => s.openFds),
    connections: span(series, (s) => s.connectionsActive),
    sessions: span(series, (s) => s.sessions)
  }
}

const check = (subject: SoakCheck['subject'], name: string, value: number, rule: SoakCheck['rule'], limit: number, unit: string): SoakCheck =>
  ({ subject, name, value, limit, rule, unit, ok: Number.isFinite(value) && (rule === '<=' ? value <= limit : value >= limit) })

function daemonChecks (d: SoakDaemon, f: DaemonFigures, t: SoakThresholds): SoakCheck[] {
  return [
    check(d, 'fds back to baseline', f.fds.final - f.fds.baseline, '<=', t.fdMargin, 'fds over baseline'),
    check(d, 'connections back to baseline', f.connections.final - f.connections.baseline, '<=', 0, 'connections over baseline'),
    check(d, 'sessions back to baseline', f.sessions.final - f.sessions.baseline, '<=', 0, 'sessions over baseline'),
    check(d, 'trend buckets', Math.min(f.rss.buckets, f.heap.buckets), '>=', t.minBuckets, 'buckets'),
    check(d, 'RSS slope', f.rss.slopeMiBPerMin, '<=', t.rssSlopeMiBPerMin, 'MiB/min'),
    check(d, 'RSS growth', f.rss.growthMiB, '<=', t.rssGrowthMiB, 'MiB'),
    check(d, 'heap slope', f.heap.slopeMiBPerMin, '<=', t.heapSlopeMiBPerMin, 'MiB/min'),
    check(d, 'heap growth', f.heap.growthMiB, '<=', t.heapGrowthMiB, 'MiB')
  ]
}

function loadChecks (load: SoakLoadTotals, t: SoakThresholds): SoakCheck[] {
  return [
    check('load', 'connections done', load.planned === 0 ? 0 : round(load.done / load.planned, 4), '>=', t.minDoneRatio, 'of planned'),
    check('load', 'connection errors', load.done === 0 ? 1 : round(load.errors / load.done, 4), '<=', t.maxErrorRatio, 'of done')
  ]
}

/** Samples of both daemons and the load's totals in, the verdict out. Pure. */
export function analyseSoak (series: Readonly<Record<SoakDaemon, DaemonSeries>>, load: SoakLoadTotals,
  t: SoakThresholds = SOAK_THRESHOLDS): SoakVerdict {
  const daemons = { cpe: daemonFigures(series.cpe, t), concentrator: daemonFigures(series.concentrator, t) }
  const checks = [...loadChecks(load, t), ...SOAK_DAEMONS.flatMap((d) => daemonChecks(d, daemons[d], t))]
  const window = trendSamples(series.cpe.load, t.trendFraction)
  const failed = checks.filter((c) => !c.ok)
  return {
    pass: failed.length === 0,
    checks,
    failed,
    daemons,
    trendWindowS: [window[0]?.atS ?? 0, window[window.length - 1]?.atS ?? 0]
  }
}
