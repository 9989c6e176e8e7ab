/**
 * `npm run lab` with no --mode: on one built lab, the product's report card. In order:
 * 1. TTFB of a LAN fetch with no agent running (plain TCP over DSL: the setup-latency reference);
 * 2. kernel MPTCP alone (cpe → the concentrator host): the throughput ceiling;
 * 3. socks5, convert and transparent in turn through the real daemons (mode-runners.ts): the demo's
 *    download and upload from lan, then the TTFB of the same fetch through the CPE agent, then a 5 s
 *    DSL blackhole during a download and new fetches (the failover scenario's `dsl-blackhole`).
 * Each mode's daemons are stopped before the next one starts (the last ones stay with `keepLast`).
 */
import { isDaemonMode, runDemo, type LabMode } from './demo.ts'
import { DAEMON_MODES, type DaemonMode } from './lab-daemons-config.ts'
import { startModeSession, type ModeSession } from './mode-runners.ts'
import { buildReportCard, MODE_LABELS, type ModeResult, type ReportCard } from './report-card.ts'
import { FAULTS } from './scenario-failover.ts'
import { runOneFault } from './scenario-run.ts'
import type { Lab } from './topology.ts'
import { measureTtfb } from './ttfb.ts'

export const TOUR_MODES: readonly LabMode[] = ['mptcp', ...DAEMON_MODES]

export interface TourOptions {
  readonly seconds: number
  /** Fetches per TTFB figure (default 11). */
  readonly ttfbRuns?: number
  /** Default: all of TOUR_MODES. */
  readonly modes?: readonly LabMode[]
  readonly live: (line: string) => void
  readonly log: (message: string) => void
  /** Leave the last daemon mode's daemons running (`--keep`). */
  readonly keepLast?: boolean
  /** Run the DSL blackhole per daemon mode (default true; about 20 s per mode). */
  readonly failover?: boolean
  /** Called with each daemon mode's running daemons once its transfer and TTFB figures are in, before the blackhole (tests read counters here). */
  readonly onModeDone?: (session: ModeSession, result: ModeResult) => Promise<void>
}

export interface TourResult {
  readonly card: ReportCard
  readonly results: readonly ModeResult[]
  /** The last mode's daemons, when `keepLast`. */
  readonly session?: ModeSession
}

/** Run every mode on `lab` and build the report card. On a failure the failed mode's logs are kept (the error names them). */
export async function runTour (lab: Lab, opts: TourOptions): Promise<TourResult> {
  const runs = opts.ttfbRuns ?? 11
  const modes = opts.modes ?? TOUR_MODES
  opts.log(`direct TCP (no agent): TTFB of ${runs} fetches lan → inet over DSL`)
  const directTtfb = await measureTtfb(lab, runs)
  const results: ModeResult[] = []
  let kept: ModeSession | undefined
  const lastDaemonMode = [...modes].reverse().find(isDaemonMode)
  for (const mode of modes) {
    opts.log(`${MODE_LABELS[mode] ?? mode}: ${opts.seconds} s download, then ${opts.seconds} s upload`)
    if (!isDaemonMode(mode)) {
      const { session: _none, ...summary } = await runDemo(lab, { mode, seconds: opts.seconds, live: opts.live, log: opts.log })
      results.push({ mode, summary })
      continue
    }
    const keep = opts.keepLast === true && mode === lastDaemonMode
    const { result, session } = await runDaemonMode(lab, mode, runs, opts, keep)
    results.push(result)
    kept = session
  }
  const card = buildReportCard({ prefix: lab.prefix, seconds: opts.seconds, directTtfb, results })
  return kept === undefined ? { card, results } : { card, results, session: kept }
}

async function runDaemonMode (lab: Lab, mode: DaemonMode, runs: number, opts: TourOptions,
  keep: boolean): Promise<{ result: ModeResult, session?: ModeSession }> {
  const session = await startModeSession(lab, mode, { log: opts.log })
  let failed = false
  try {
    const { session: _same, ...summary } = await runDemo(lab, { mode, seconds: opts.seconds, live: opts.live, log: opts.log, session })
    opts.log(`${mode}: TTFB of ${runs} fetches through the CPE agent`)
    const ttfb = await measureTtfb(lab, runs)
    await opts.onModeDone?.(session, { mode, summary, ttfb })
    const blackhole = FAULTS.find((f) => f.name === 'dsl-blackhole')
    let result: ModeResult = { mode, summary, ttfb }
    if (opts.failover !== false && blackhole !== undefined) {
      opts.log(`${mode}: ${blackhole.description}, during a download and new fetches`)
      result = { ...result, failover: await runOneFault(lab, mode, blackhole, session) }
    }
    return keep ? { result, session } : { result }
  } catch (err) {
    failed = true
    throw new Error(`${mode}: ${(err as Error).message}\n(daemon logs kept in ${session.dir})`)
  } finally {
    if (failed || !keep) await session.stop({ keepLogs: failed })
  }
}
