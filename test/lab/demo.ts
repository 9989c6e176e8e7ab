/**
 * The lab demo: one transfer per direction through a built lab, with a live view and a summary.
 *
 * Modes are a registry (`MODE_RUNNERS`): today only `mptcp` (kernel MPTCP alone: flow-tool client
 * in cpe → flow server on hag's service address). The proxy modes come with their issues: each adds
 * a runner that starts its daemons in hag and cpe and runs the flow client from `lan` through them
 * (`runFlowIn(lab, { role: 'lan', host: <inet server>, … })`); nothing else here has to change.
 */
import type { AccessName } from './addresses.ts'
import { ACCESS_NAMES } from './addresses.ts'
import type { FlowDirection } from './flow-protocol.ts'
import { runFlowIn } from './flow-run.ts'
import type { FlowLine } from './flow-tool.ts'
import { CounterMeter, formatLiveHeader, formatLiveLine, type AccessBytes } from './live-view.ts'
import { summarizeTransfer, type LabSummary, type TransferInput } from './summary.ts'
import type { Lab } from './topology.ts'

export const LAB_MODES = ['mptcp', 'socks5', 'convert', 'transparent'] as const
export type LabMode = typeof LAB_MODES[number]

/** Modes accepted on the command line but not implemented yet, and what will add them. */
export const PLANNED_MODES: { readonly [M in Exclude<LabMode, 'mptcp'>]: string } = {
  socks5: 'the SOCKS5 mode issue (CPE agent + concentrator speaking SOCKS5 over MPTCP)',
  convert: 'the RFC 8803 Convert mode issue (0-RTT TCP Convert over MPTCP with TFO)',
  transparent: 'the transparent mode issue (CPE TPROXY + on-path concentrator interception)'
}

export interface DemoContext {
  seconds: number
  directions: readonly FlowDirection[]
  /** Every flow-tool line, as it arrives. */
  onLine: (line: FlowLine) => void
}

/** Runs the transfers of one mode; resolves when the flow client is done. */
export type ModeRunner = (lab: Lab, ctx: DemoContext) => Promise<void>

export const MODE_RUNNERS: { readonly [M in LabMode]?: ModeRunner } = {
  mptcp: async (lab, ctx) => {
    await runFlowIn(lab, { role: 'cpe', host: lab.plan.service.v4, seconds: ctx.seconds, directions: ctx.directions }, ctx.onLine)
  }
}

/** Why a mode cannot run (undefined when it can). */
export function modeUnavailable (mode: string): string | undefined {
  if (MODE_RUNNERS[mode as LabMode] !== undefined) return undefined
  const planned = PLANNED_MODES[mode as keyof typeof PLANNED_MODES] as string | undefined
  if (planned !== undefined) return `--mode ${mode} is not available yet: it comes with ${planned}. Use --mode mptcp (kernel MPTCP only).`
  return `unknown --mode ${JSON.stringify(mode)} (known: ${LAB_MODES.join(', ')})`
}

export interface DemoOptions {
  mode: LabMode
  seconds: number
  directions?: readonly FlowDirection[]
  /** Live-view lines (header first), about one per second. */
  live: (line: string) => void
}

/** Run the demo on a built lab and summarise it. */
export async function runDemo (lab: Lab, opts: DemoOptions): Promise<LabSummary> {
  const runner = MODE_RUNNERS[opts.mode]
  if (runner === undefined) throw new Error(modeUnavailable(opts.mode))
  const meter = new CounterMeter(async (n) => lab.accessBytes(n))
  const transfers: TransferInput[] = []
  let phase: { direction: FlowDirection, at: number, bytes: AccessBytes, rtt: { [K in AccessName]: number[] } } | undefined
  let chain = Promise.resolve()
  const handle = async (l: FlowLine): Promise<void> => {
    if (l.type === 'start') {
      await meter.sample()
      phase = { direction: l.direction, at: performance.now(), bytes: await meter.snapshot(), rtt: { dsl: [], lte: [] } }
      opts.live(formatLiveHeader())
    } else if (l.type === 'tick' && phase !== undefined) {
      const rates = await meter.sample()
      const rttMs = { dsl: null as number | null, lte: null as number | null }
      for (const sf of l.subflows) {
        if (sf.access !== 'dsl' && sf.access !== 'lte') continue
        phase.rtt[sf.access].push(sf.rttMs)
        rttMs[sf.access] = sf.rttMs
      }
      opts.live(formatLiveLine({ direction: l.direction, t: l.t, goodputMbps: l.mbps, subflows: l.subflows.length, rates, rttMs }))
    } else if (l.type === 'result' && phase !== undefined) {
      const end = await meter.snapshot()
      const p = phase
      const key = l.direction === 'download' ? 'down' : 'up'
      transfers.push({
        mode: opts.mode,
        direction: l.direction,
        result: l,
        measuredMs: performance.now() - p.at,
        accesses: ACCESS_NAMES.map((n) => ({ name: n, profile: lab.access[n].profile, bytes: end[n][key] - p.bytes[n][key], rttSamplesMs: p.rtt[n] }))
      })
      phase = undefined
    }
  }
  await runner(lab, {
    seconds: opts.seconds,
    directions: opts.directions ?? ['download', 'upload'],
    onLine: (l) => { chain = chain.then(async () => handle(l)) }
  })
  await chain
  return { prefix: lab.prefix, mode: opts.mode, transfers: transfers.map(summarizeTransfer) }
}
