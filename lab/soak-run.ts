/**
 * `npm run lab -- --scenario soak` / `npm run soak`, the run (docs/soak.md): start the daemons of
 * one mode (startModeSession), take a baseline sample of both, run the load generator
 * (soak-load.ts) in `lan` for the soak's duration while sampling both daemons every 10 s
 * (/metrics: process_resident_memory_bytes, nodejs_heap_size_used_bytes, process_open_fds,
 * hybrid_connections_active; /api/v1/sessions' total), let the connections settle, take the final
 * sample, stop the daemons and judge (soak-analysis.ts). Bounded: the load generator is killed at
 * its duration plus its own drain time plus 60 s; the settle wait is capped.
 */
import type { ChildProcess } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { LAB_PORTS } from './addresses.ts'
import { sumMetric, type DaemonHandle } from './daemons.ts'
import type { DaemonMode } from './lab-daemons-config.ts'
import { startModeSession } from './mode-runners.ts'
import {
  analyseSoak, SOAK_DAEMONS, SOAK_THRESHOLDS, type DaemonSeries, type SoakDaemon, type SoakLoadTotals, type SoakSample, type SoakThresholds,
  type SoakVerdict
} from './soak-analysis.ts'
import type { Lab } from './topology.ts'

export interface SoakOptions {
  readonly mode: DaemonMode
  readonly minutes: number
  /** New connections per second. */
  readonly rate: number
  readonly maxInflight?: number
  readonly sampleEveryS?: number
  /** Minimum wait after the load before the final sample; then up to `settleMaxS` until connections and sessions are back. */
  readonly settleS?: number
  readonly settleMaxS?: number
  readonly thresholds?: SoakThresholds
  readonly seed?: number
  readonly log: (message: string) => void
}

export interface SoakReport {
  readonly scenario: 'soak'
  readonly prefix: string
  readonly mode: DaemonMode
  readonly minutes: number
  readonly rate: number
  readonly sampleEveryS: number
  /** Samples that failed (a scrape timed out) and are missing from the series. */
  readonly missedSamples: number
  readonly settledAfterS: number
  readonly thresholds: SoakThresholds
  readonly load: SoakLoadTotals
  readonly verdict: SoakVerdict
  readonly samples: Readonly<Record<SoakDaemon, DaemonSeries>>
  readonly totalSeconds: number
  /** Sessions still open at the final sample (up to 20 per daemon, largest first): what leaked. */
  readonly lingering: Readonly<Record<SoakDaemon, readonly unknown[]>>
  /** Daemon log folder when it was kept (failure). */
  readonly logsKept?: string
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))) }

/** One sample of a daemon: its metrics and its session table's size. */
export async function sampleDaemon (h: DaemonHandle, atS: number): Promise<SoakSample> {
  const [text, sessions] = await Promise.all([h.metricsText(), h.get('/api/v1/sessions?limit=1')])
  const total = (JSON.parse(sessions.body) as { total?: unknown }).total
  if (sessions.status !== 200 || typeof total !== 'number') throw new Error(`${h.mgmtUrl}/api/v1/sessions answered ${sessions.status}`)
  const need = (name: string): number => {
    if (!new RegExp(`^${name}[ {]`, 'm').test(text)) throw new Error(`${h.mgmtUrl}/metrics has no ${name}`)
    return sumMetric(text, name)
  }
  return {
    atS: Math.round(atS * 10) / 10,
    rssBytes: need('process_resident_memory_bytes'),
    heapUsedBytes: need('nodejs_heap_size_used_bytes'),
    openFds: need('process_open_fds'),
    connectionsActive: need('hybrid_connections_active'),
    sessions: total
  }
}

interface LoadProcess { child: ChildProcess, end: Promise<SoakLoadTotals | undefined>, progress: (l: Record<string, unknown>) => void }

function startLoad (lab: Lab, o: SoakOptions, onProgress: (l: Record<string, unknown>) => void): LoadProcess {
  const child = lab.spawn('lan', [process.execPath, '--import', 'tsx', 'lab/soak-load.ts',
    '--host', lab.plan.internet.servers[0]!.v4, '--http-port', String(LAB_PORTS.http), '--echo-port', String(LAB_PORTS.echo),
    '--rate', String(o.rate), '--seconds', String(Math.round(o.minutes * 60)), '--max-inflight', String(o.maxInflight ?? 100), '--seed',
    String(o.seed ?? 1)])
  let stderr = ''
  child.stderr?.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-2000) })
  const end = new Promise<SoakLoadTotals | undefined>((resolve, reject) => {
    let totals: SoakLoadTotals | undefined
    createInterface({ input: child.stdout! }).on('line', (l) => {
      let m: Record<string, unknown>
      try { m = JSON.parse(l) as Record<string, unknown> } catch { return }
      if (m.type === 'progress') onProgress(m)
      if (m.type === 'end') { const { type: _t, ...rest } = m; totals = rest as unknown as SoakLoadTotals }
    })
    child.once('close',
      (code) => { if (totals !== undefined) resolve(totals); else reject(new Error(`soak-load exited ${String(code)} without totals: ${stderr.trim()}`)) })
  })
  return { child, end, progress: onProgress }
}

function kill (child: ChildProcess): void {
  if (child.exitCode === null && child.pid !== undefined) { try { process.kill(child.pid, 'SIGKILL') } catch { /* gone */ } }
}

/** Run the soak of one mode on a built lab (daemons built with `npx tsc -b`). */
export async function runSoak (lab: Lab, o: SoakOptions): Promise<SoakReport> {
  const started = performance.now()
  const every = o.sampleEveryS ?? 10
  const session = await startModeSession(lab, o.mode, { log: o.log, logLevel: 'warn' })
  const handles: Record<SoakDaemon, DaemonHandle> = { cpe: session.cpe, concentrator: session.concentrator }
  let failed = false
  let load: LoadProcess | undefined
  try {
    await sleep(3000)
    const baseline = await sampleBoth(handles, -3)
    const t0 = performance.now()
    load = startLoad(lab, o,
      (p) => { o.log(`soak ${o.mode}: ${String(p.atS)} s, ${String(p.done)} done, ${String(p.inflight)} open, ${String(p.errors)} errors`) })
    const { series, totals, missed } = await sampleWhileLoading(handles, load, t0, every, (o.minutes * 60 + 180) * 1000)
    const settledAfterS = await settle(handles, o)
    const final = await sampleBoth(handles, (performance.now() - t0) / 1000)
    const lingering = { cpe: await openSessions(handles.cpe), concentrator: await openSessions(handles.concentrator) }
    const samples = {
      cpe: { baseline: baseline.cpe, load: series.cpe, final: final.cpe },
      concentrator: { baseline: baseline.concentrator, load: series.concentrator, final: final.concentrator }
    }
    const thresholds = o.thresholds ?? SOAK_THRESHOLDS
    const verdict = analyseSoak(samples, totals, thresholds)
    failed = !verdict.pass
    const { logsKept } = await session.stop({ keepLogs: failed })
    return {
      scenario: 'soak',
      prefix: lab.prefix,
      mode: o.mode,
      minutes: o.minutes,
      rate: o.rate,
      sampleEveryS: every,
      missedSamples: missed,
      settledAfterS,
      thresholds,
      load: totals,
      verdict,
      samples,
      lingering,
      totalSeconds: Math.round((performance.now() - started) / 100) / 10,
      ...(logsKept ? { logsKept: session.dir } : {})
    }
  } catch (err) {
    failed = true
    throw new Error(`soak ${o.mode}: ${(err as Error).message}\n(daemon logs kept in ${session.dir})`)
  } finally {
    if (load !== undefined) kill(load.child)
    await session.stop({ keepLogs: failed })
  }
}

async function openSessions (h: DaemonHandle): Promise<unknown[]> {
  const r = await h.get('/api/v1/sessions?limit=20')
  return r.status === 200 ? (JSON.parse(r.body) as { sessions?: unknown[] }).sessions ?? [] : []
}

async function sampleBoth (handles: Record<SoakDaemon, DaemonHandle>, atS: number): Promise<Record<SoakDaemon, SoakSample>> {
  const [cpe, concentrator] = await Promise.all([sampleDaemon(handles.cpe, atS), sampleDaemon(handles.concentrator, atS)])
  return { cpe, concentrator }
}

/** Sample both daemons every `everyS` until the load generator ends (killed after `hardStopMs`). */
async function sampleWhileLoading (handles: Record<SoakDaemon, DaemonHandle>, load: LoadProcess, t0: number, everyS: number,
  hardStopMs: number): Promise<{ series: Record<SoakDaemon, SoakSample[]>, totals: SoakLoadTotals, missed: number }> {
  const series: Record<SoakDaemon, SoakSample[]> = { cpe: [], concentrator: [] }
  const guard = setTimeout(() => { kill(load.child) }, hardStopMs)
  const state = { ended: false }
  const totalsP = load.end.finally(() => { state.ended = true; clearTimeout(guard) })
  let missed = 0
  let inARow = 0
  for (let i = 1; i * everyS * 1000 < hardStopMs; i++) {
    await Promise.race([sleep(t0 + i * everyS * 1000 - performance.now()), totalsP.catch(() => undefined)])
    if (state.ended) break
    try {
      const s = await sampleBoth(handles, (performance.now() - t0) / 1000)
      for (const d of SOAK_DAEMONS) series[d].push(s[d])
      inARow = 0
    } catch (err) {
      // One slow scrape on a shared host is a gap in the series, not a verdict; three in a row are.
      missed++
      if (++inARow >= MAX_MISSED_IN_A_ROW) throw new Error(`${MAX_MISSED_IN_A_ROW} samples in a row failed, the last: ${(err as Error).message}`)
    }
  }
  const totals = await totalsP
  if (totals === undefined) throw new Error('soak-load ended without totals')
  return { series, totals, missed }
}

/** Samples that may fail in a row (a scrape timing out on a loaded host) before the soak gives up. */
const MAX_MISSED_IN_A_ROW = 3

/** Wait `settleS`, then until both daemons show no connections and no sessions (at most `settleMaxS`); seconds waited. */
async function settle (handles: Record<SoakDaemon, DaemonHandle>, o: SoakOptions): Promise<number> {
  const t0 = performance.now()
  await sleep((o.settleS ?? 10) * 1000)
  const deadline = t0 + (o.settleMaxS ?? 60) * 1000
  while (performance.now() < deadline) {
    const s = await Promise.all(SOAK_DAEMONS.map(async (d) => sampleDaemon(handles[d], 0)))
    if (s.every((x) => x.connectionsActive === 0 && x.sessions === 0)) break
    await sleep(2000)
  }
  return Math.round((performance.now() - t0) / 100) / 10
}
