/**
 * The lab's report card (`npm run lab` with no --mode): one row per way of carrying a LAN user's
 * traffic — kernel MPTCP alone (the ceiling: no proxy code carries a byte) and the three signalling
 * modes through the real daemons — with goodput as a share of the access-rate sum and of the
 * kernel's figure, setup latency against direct TCP over DSL, and the accesses that carried
 * subflows. Pure: built from the demo summaries and TTFB samples, rendered as text or JSON
 * (fields documented in docs/lab.md).
 */
import type { FlowDirection } from './flow-protocol.ts'
import type { FaultResult } from './scenario-failover.ts'
import type { LabSummary, TransferSummary } from './summary.ts'
import type { TtfbResult } from './ttfb.ts'

export interface ModeResult {
  /** `mptcp` (kernel MPTCP alone) or a daemon mode. */
  readonly mode: string
  readonly summary: LabSummary
  /** Daemon modes: TTFB through the CPE agent (kernel MPTCP has no LAN path to time). */
  readonly ttfb?: TtfbResult
  /** Daemon modes: a 5 s DSL blackhole during a download (the failover scenario's `dsl-blackhole`). */
  readonly failover?: FaultResult
}

export interface ReportCardInput {
  readonly prefix: string
  /** Seconds per transfer. */
  readonly seconds: number
  /** TTFB of the same fetch with no agent running (plain TCP over DSL). */
  readonly directTtfb: TtfbResult
  /** Kernel MPTCP first (`mode: 'mptcp'`), then the daemon modes. */
  readonly results: readonly ModeResult[]
}

export interface DirectionFigures {
  readonly goodputMbps: number
  readonly sumOfAccessRatesMbps: number
  /** goodput / sum of the access rates (null when an access is unshaped). */
  readonly ofAccessSum: number | null
  /** goodput / kernel MPTCP's goodput in the same direction (null without a kernel row). */
  readonly ofKernel: number | null
  /** Most subflows at once, and the accesses they used. */
  readonly subflows: number
  readonly subflowAccesses: readonly string[]
}

export interface ReportCardRow {
  readonly mode: string
  readonly label: string
  readonly download: DirectionFigures | null
  readonly upload: DirectionFigures | null
  readonly ttfbMs: number | null
  /** ttfbMs − direct TCP's TTFB. */
  readonly ttfbVsDirectMs: number | null
  readonly ttfbSamples: number
  /** The DSL blackhole run (daemon modes), null when not run. */
  readonly failover: FailoverFigures | null
}

/** What a 5 s DSL blackhole did to a running download and to new connections (scenario-failover.ts). */
export interface FailoverFigures {
  /** Longest gap in the running download that began during the blackhole, ms. */
  readonly stallMs: number | null
  /** Longest gap after DSL came back, ms. */
  readonly backStallMs: number | null
  readonly reset: boolean
  readonly newOk: number
  readonly newCount: number
  readonly newTtfbMs: number | null
  /** ms after the blackhole until both accesses carry subflows / DSL carries its share again. */
  readonly subflowsBackMs: number | null
  readonly bulkBackMs: number | null
}

function failoverFigures (f: FaultResult | undefined): FailoverFigures | null {
  if (f === undefined) return null
  return {
    stallMs: f.stallDuringMs,
    backStallMs: f.stallAfterMs,
    reset: f.reset,
    newOk: f.during.ok,
    newCount: f.during.count,
    newTtfbMs: f.during.medianTtfbMs,
    subflowsBackMs: f.subflowsBackMs,
    bulkBackMs: f.bulkBackMs
  }
}

export interface ReportCardAccess {
  readonly name: string
  readonly profile: string
  readonly downMbps: number
  readonly upMbps: number
  /** Median subflow RTT seen during the kernel run's download, ms. */
  readonly rttMs: number | null
}

export interface ReportCard {
  readonly prefix: string
  readonly seconds: number
  readonly accesses: readonly ReportCardAccess[]
  readonly directTtfbMs: number | null
  readonly directTtfbSamples: number
  readonly rows: readonly ReportCardRow[]
  /** What the card does not measure yet, said on the card itself. */
  readonly notes: readonly string[]
}

export const MODE_LABELS: Readonly<Record<string, string>> = {
  mptcp: 'kernel MPTCP',
  socks5: 'socks5',
  convert: 'convert',
  transparent: 'transparent'
}

const NOTES = [
  'kernel MPTCP: the flow tool in cpe straight to the concentrator host, no proxy code: the ceiling.',
  'The modes: a plain-TCP flow client in lan, intercepted by the CPE agent and carried by it and the concentrator.',
  'DSL blackhole: 5 s, carrier up, every packet dropped in the DSL router, during a download and a new LAN fetch every 200 ms',
  '  (npm run lab -- --scenario failover runs every fault; docs/failover.md has the targets and figures).'
]

const transferOf = (s: LabSummary, d: FlowDirection): TransferSummary | undefined => s.transfers.find((t) => t.direction === d)
const ratio = (a: number, b: number): number | null => (b > 0 ? Math.round((a / b) * 1000) / 1000 : null)
const round2 = (x: number): number => Math.round(x * 100) / 100

function figures (t: TransferSummary | undefined, kernel: TransferSummary | undefined): DirectionFigures | null {
  if (t === undefined) return null
  return {
    goodputMbps: t.goodputMbps,
    sumOfAccessRatesMbps: t.sumOfAccessRatesMbps,
    ofAccessSum: t.ratio,
    ofKernel: kernel === undefined ? null : ratio(t.goodputMbps, kernel.goodputMbps),
    subflows: t.subflows,
    subflowAccesses: t.subflowAccesses
  }
}

/** Build the card from the runs. Pure. */
export function buildReportCard (input: ReportCardInput): ReportCard {
  const kernel = input.results.find((r) => r.mode === 'mptcp')?.summary
  const direct = input.directTtfb.medianMs
  const rows = input.results.map((r): ReportCardRow => {
    const ttfbMs = r.ttfb?.medianMs ?? null
    return {
      mode: r.mode,
      label: MODE_LABELS[r.mode] ?? r.mode,
      download: figures(transferOf(r.summary, 'download'), kernel === undefined ? undefined : transferOf(kernel, 'download')),
      upload: figures(transferOf(r.summary, 'upload'), kernel === undefined ? undefined : transferOf(kernel, 'upload')),
      ttfbMs,
      ttfbVsDirectMs: ttfbMs === null || direct === null ? null : round2(ttfbMs - direct),
      ttfbSamples: r.ttfb?.samplesMs.length ?? 0,
      failover: failoverFigures(r.failover)
    }
  })
  const any = input.results[0]?.summary
  const down = any === undefined ? undefined : transferOf(kernel ?? any, 'download')
  const up = any === undefined ? undefined : transferOf(kernel ?? any, 'upload')
  const accesses = (down?.accesses ?? up?.accesses ?? []).map((a): ReportCardAccess => ({
    name: a.name,
    profile: a.profile,
    downMbps: down?.accesses.find((x) => x.name === a.name)?.rateMbps ?? 0,
    upMbps: up?.accesses.find((x) => x.name === a.name)?.rateMbps ?? 0,
    rttMs: a.rttMs
  }))
  return {
    prefix: input.prefix,
    seconds: input.seconds,
    accesses,
    directTtfbMs: direct,
    directTtfbSamples: input.directTtfb.samplesMs.length,
    rows,
    notes: NOTES
  }
}

const pct = (r: number | null): string => (r === null ? '-' : (r * 100).toFixed(1))
const num = (x: number | null, digits = 1): string => (x === null ? '-' : x.toFixed(digits))
const signed = (x: number | null): string => (x === null ? '-' : `${x >= 0 ? '+' : ''}${x.toFixed(1)}`)

function subflowCell (row: ReportCardRow): string {
  const cell = (f: DirectionFigures | null): string => (f === null ? '-' : `${f.subflows} (${f.subflowAccesses.join('+') || 'none'})`)
  const d = cell(row.download)
  const u = cell(row.upload)
  return d === u ? d : `${d} / ${u}`
}

const COLUMNS = { mode: 14, mbps: 8, share: 7, kernel: 10, ms: 8, vs: 11 }
const GROUP = COLUMNS.mbps + COLUMNS.share + COLUMNS.kernel

/** `label` centred in dashes over `width` characters, one space either side. */
function groupHeader (label: string, width: number): string {
  const dashes = width - label.length - 3
  const left = Math.floor(dashes / 2)
  return ` ${'-'.repeat(left)} ${label} ${'-'.repeat(dashes - left)}`
}

function directionCells (f: DirectionFigures | null): string {
  return num(f?.goodputMbps ?? null).padStart(COLUMNS.mbps) + pct(f?.ofAccessSum ?? null).padStart(COLUMNS.share) +
    pct(f?.ofKernel ?? null).padStart(COLUMNS.kernel)
}

function rowLine (r: ReportCardRow): string {
  return r.label.padEnd(COLUMNS.mode) + directionCells(r.download) + directionCells(r.upload) +
    num(r.ttfbMs).padStart(COLUMNS.ms) + signed(r.ttfbVsDirectMs).padStart(COLUMNS.vs) + `   ${subflowCell(r)}`
}

function failoverLines (card: ReportCard): string[] {
  const rows = card.rows.filter((r) => r.failover !== null)
  if (rows.length === 0) return []
  const ms = (x: number | null): string => (x === null ? 'never' : String(Math.round(x)))
  return [
    '',
    'DSL blackhole (5 s)'.padEnd(COLUMNS.mode) + '  stall ms  back stall  reset  new conns ok  ttfb ms  both back ms  DSL bulk back ms',
    ...rows.map((r) => {
      const f = r.failover!
      return r.label.padEnd(COLUMNS.mode) + ms(f.stallMs).padStart(10) + ms(f.backStallMs).padStart(12) + (f.reset ? 'yes' : 'no').padStart(7) +
        `${f.newOk}/${f.newCount}`.padStart(14) + num(f.newTtfbMs, 0).padStart(9) + ms(f.subflowsBackMs).padStart(14) + ms(f.bulkBackMs).padStart(18)
    })
  ]
}

/** The card as a table for a terminal (what `npm run lab` prints at the end). Pure. */
export function formatReportCard (card: ReportCard): string {
  const sum = (k: 'downMbps' | 'upMbps'): number => card.accesses.reduce((s, a) => s + a[k], 0)
  const accesses = card.accesses.map((a) => `${a.name} (${a.profile} ${num(a.downMbps, 0)}/${num(a.upMbps, 0)} Mbit/s${a.rttMs === null ? '' : `, RTT ${num(a.rttMs, 0)} ms`})`).join(' + ')
  const unit = (x: string, w: number): string => x.padStart(w)
  const units = unit('Mbit/s', COLUMNS.mbps) + unit('% sum', COLUMNS.share) + unit('% kernel', COLUMNS.kernel)
  const modeTtfb = card.rows.find((r) => r.ttfbSamples > 0)?.ttfbSamples ?? 0
  return [
    `Report card (lab ${card.prefix}*, ${card.seconds} s per transfer, one connection each way)`,
    `Accesses: ${accesses} = ${num(sum('downMbps'), 0)} Mbit/s down, ${num(sum('upMbps'), 0)} up`,
    '',
    ' '.repeat(COLUMNS.mode) + groupHeader('download', GROUP) + groupHeader('upload', GROUP) + groupHeader('TTFB', COLUMNS.ms + COLUMNS.vs),
    'mode'.padEnd(COLUMNS.mode) + units + units + unit('ms', COLUMNS.ms) + unit('vs direct', COLUMNS.vs) + '   subflows (accesses)',
    ...card.rows.map(rowLine),
    ...failoverLines(card),
    '',
    `direct TCP over DSL, no agent: TTFB ${num(card.directTtfbMs)} ms (median of ${card.directTtfbSamples}); each mode's TTFB: median of ${modeTtfb} fetches.`,
    ...card.notes
  ].join('\n') + '\n'
}
