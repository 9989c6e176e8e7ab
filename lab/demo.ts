/**
 * The lab demo: one transfer per direction through a built lab, with a live view and a summary.
 *
 * Modes (`MODE_RUNNERS`):
 * - `mptcp`: kernel MPTCP alone, flow-tool client in cpe → flow server on hag's service address;
 *   live view from the access routers' interface counters and the flow tool's subflow samples.
 * - `socks5`, `convert`, `transparent`: the concentrator in hag and the CPE agent in cpe
 *   (mode-runners.ts), and the flow-tool client in lan (plain TCP, intercepted by the CPE) → the
 *   flow server on inet. Live view and per-access figures from the CPE's metrics API.
 */
import { ACCESS_NAMES } from './addresses.ts'
import type { FlowDirection } from './flow-protocol.ts'
import { runFlowIn } from './flow-run.ts'
import type { FlowLine } from './flow-tool.ts'
import { DAEMON_MODES, type DaemonMode } from './lab-daemons-config.ts'
import {
  bytesBetween, formatLiveHeader, formatLiveLine, rateOf, ratesBetween, readPathMetrics, rttBetween, sumAccesses,
  type MeterReading, type PerAccess
} from './live-view.ts'
import { startModeSession, type ModeSession } from './mode-runners.ts'
import { summarizeTransfer, type LabSummary, type TransferInput } from './summary.ts'
import type { Lab } from './topology.ts'

export const LAB_MODES = ['mptcp', ...DAEMON_MODES] as const
export type LabMode = typeof LAB_MODES[number]

export function isDaemonMode (mode: LabMode): mode is DaemonMode {
  return (DAEMON_MODES as readonly string[]).includes(mode)
}

export interface DemoContext {
  seconds: number
  directions: readonly FlowDirection[]
  /** Every flow-tool line, as it arrives. */
  onLine: (line: FlowLine) => void
}

/** Runs the transfers of one mode; resolves when the flow client is done. */
export type ModeRunner = (lab: Lab, ctx: DemoContext) => Promise<void>

/** The daemon modes' transfer: lan (plain TCP, intercepted by the CPE) → flow server on inet. */
const throughCpe: ModeRunner = async (lab, ctx) => {
  const server = lab.plan.internet.servers[0]!
  await runFlowIn(lab, { role: 'lan', host: server.v4, protocol: 'tcp', seconds: ctx.seconds, directions: ctx.directions }, ctx.onLine)
}

export const MODE_RUNNERS: { readonly [M in LabMode]: ModeRunner } = {
  mptcp: async (lab, ctx) => {
    await runFlowIn(lab, { role: 'cpe', host: lab.plan.service.v4, seconds: ctx.seconds, directions: ctx.directions }, ctx.onLine)
  },
  socks5: throughCpe,
  convert: throughCpe,
  transparent: throughCpe
}

/** Why a mode cannot run (undefined when it can). */
export function modeUnavailable (mode: string): string | undefined {
  if ((LAB_MODES as readonly string[]).includes(mode)) return undefined
  return `unknown --mode ${JSON.stringify(mode)} (known: ${LAB_MODES.join(', ')})`
}

export interface DemoOptions {
  mode: LabMode
  seconds: number
  directions?: readonly FlowDirection[]
  /** Live-view lines (header first), about one per second. */
  live: (line: string) => void
  /** Progress messages (daemon start). */
  log?: (message: string) => void
  /** Daemon modes: use this running session (left running) instead of starting one. */
  session?: ModeSession
  /** Daemon modes: leave the daemons this demo started running (`--keep`). */
  keepDaemons?: boolean
}

export interface DemoResult extends LabSummary {
  /** Daemon modes: the daemons (stopped unless `keepDaemons` or a given session). */
  session?: ModeSession
}

/** Run the demo on a built lab and summarise it. */
export async function runDemo (lab: Lab, opts: DemoOptions): Promise<DemoResult> {
  const mode = opts.mode
  if (!isDaemonMode(mode)) {
    const summary = await runTransfers(lab, opts, async () => interfaceReading(lab))
    return summary
  }
  const session = opts.session ?? await startModeSession(lab, mode, opts.log !== undefined ? { log: opts.log } : {})
  let failed = false
  try {
    const summary = await runTransfers(lab, opts, async () => readPathMetrics(await session.cpe.metricsText(), performance.now()))
    return { ...summary, session }
  } catch (err) {
    failed = true
    throw new Error(`${(err as Error).message}\n--- cpe log (${session.dir}, kept) ---\n${session.logTail('cpe', 1500)}\n--- concentrator log ---\n${session.logTail('concentrator', 1500)}`)
  } finally {
    if (opts.session === undefined && opts.keepDaemons !== true) await session.stop({ keepLogs: failed })
  }
}

async function interfaceReading (lab: Lab): Promise<MeterReading> {
  const [dsl, lte] = await Promise.all(ACCESS_NAMES.map(async (n) => lab.accessBytes(n)))
  return { at: performance.now(), bytes: { dsl: dsl!, lte: lte! } }
}

interface Phase {
  direction: FlowDirection
  startedAt: number
  start: MeterReading
  last: MeterReading
  rtt: PerAccess<number[]>
  maxSubflows: number
  accesses: Set<string>
}

/** The CPE samples its paths every second: wait this long after a transfer before reading its last bytes. */
const PATH_SAMPLE_LAG_MS = 1300

async function runTransfers (lab: Lab, opts: DemoOptions, read: () => Promise<MeterReading>): Promise<LabSummary> {
  const transfers: TransferInput[] = []
  let phase: Phase | undefined
  let baseline: MeterReading | undefined
  let chain = Promise.resolve()
  const handle = async (l: FlowLine, at: number): Promise<void> => {
    if (l.type === 'start') {
      const start = baseline ?? await read()
      phase = { direction: l.direction, startedAt: at, start, last: start, rtt: { dsl: [], lte: [] }, maxSubflows: 0, accesses: new Set() }
      opts.live(formatLiveHeader(start.paths !== undefined))
    } else if (l.type === 'tick' && phase !== undefined) {
      const r = await read()
      opts.live(formatLiveLine(tickSample(phase, r, l)))
      phase.last = r
    } else if (l.type === 'result' && phase !== undefined) {
      const p = phase
      phase = undefined
      baseline = await read()
      // Metrics lag the transfer by up to one CPE sample; the other direction's bytes stay put meanwhile.
      const end = baseline.subflows === undefined ? baseline : await delay(PATH_SAMPLE_LAG_MS).then(read)
      const bytes = bytesBetween(p.start, end, l.direction === 'download' ? 'down' : 'up')
      const metered = end.subflows !== undefined
      transfers.push({
        mode: opts.mode,
        direction: l.direction,
        result: metered ? { ...l, subflows: p.maxSubflows, accesses: [...p.accesses].sort() } : l,
        measuredMs: at - p.startedAt,
        accesses: ACCESS_NAMES.map((n) => ({ name: n, profile: lab.access[n].profile, bytes: bytes[n], rttSamplesMs: p.rtt[n] }))
      })
    }
  }
  await MODE_RUNNERS[opts.mode](lab, {
    seconds: opts.seconds,
    directions: opts.directions ?? ['download', 'upload'],
    onLine: (l) => { const at = performance.now(); chain = chain.then(async () => handle(l, at)) }
  })
  await chain
  return { prefix: lab.prefix, mode: opts.mode, transfers: transfers.map(summarizeTransfer) }
}

/** One live-view line; records RTT samples and subflows in the phase. */
function tickSample (phase: Phase, r: MeterReading, l: Extract<FlowLine, { type: 'tick' }>): Parameters<typeof formatLiveLine>[0] {
  const rates = ratesBetween(phase.last.bytes, r.bytes, r.at - phase.last.at)
  let rttMs: PerAccess<number | null> = { dsl: null, lte: null }
  let subflows = l.subflows.length
  let goodputMbps = l.mbps
  if (r.subflows !== undefined) {
    rttMs = rttBetween(phase.last, r)
    subflows = sumAccesses(r.subflows)
    for (const n of ACCESS_NAMES) if (r.subflows[n] > 0) phase.accesses.add(n)
    // A plain-TCP flow client cannot count acked upload bytes: use the CPE's acked path bytes.
    if (l.direction === 'upload' && l.subflows.length === 0) goodputMbps = rateOf(rates, 'up')
  } else {
    for (const sf of l.subflows) if (sf.access === 'dsl' || sf.access === 'lte') rttMs[sf.access] = sf.rttMs
  }
  for (const n of ACCESS_NAMES) { const v = rttMs[n]; if (v !== null) phase.rtt[n].push(v) }
  phase.maxSubflows = Math.max(phase.maxSubflows, subflows)
  return { direction: l.direction, t: l.t, goodputMbps, subflows, rates, rttMs, paths: r.paths, steering: r.steering }
}

async function delay (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}
