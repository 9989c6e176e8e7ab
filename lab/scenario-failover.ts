/**
 * `npm run lab -- --scenario failover`, the pure part: the faults, option parsing, and the figures
 * computed from what the run recorded (byte arrivals at the receiver, access byte counters,
 * subflow samples, the new-connection fetches), plus the table. The run itself: scenario-run.ts.
 * Times are epoch milliseconds throughout; see docs/lab.md ("Failover scenario").
 */
import type { AccessName } from './addresses.ts'
import { LAB_MODES, type LabMode } from './demo.ts'
import type { AccessState } from './topology.ts'

/** One change of an access's state, `atMs` after the fault starts. */
export interface FaultStep { readonly atMs: number, readonly access: AccessName, readonly state: AccessState }

export interface FaultSpec {
  readonly name: string
  readonly access: AccessName
  readonly description: string
  /** The steps; the last one (state up) ends the fault. */
  readonly steps: readonly FaultStep[]
}

const outage = (name: string, access: AccessName, state: AccessState, ms: number, description: string): FaultSpec =>
  ({ name, access, description, steps: [{ atMs: 0, access, state }, { atMs: ms, access, state: 'up' }] })

export const FAULTS: readonly FaultSpec[] = [
  outage('dsl-blackhole', 'dsl', 'blackhole', 5000, 'DSL blackhole 5 s (carrier up, every packet dropped in the DSL router)'),
  outage('dsl-carrier', 'dsl', 'down', 5000, 'DSL carrier loss 5 s (ip link set dsl0 down in cpe)'),
  outage('lte-loss', 'lte', 'blackhole', 5000, 'LTE loss 5 s (carrier up, every packet dropped in the LTE router)'),
  {
    name: 'dsl-flap',
    access: 'dsl',
    description: 'DSL flap: carrier down 0.5 s, up 0.5 s, down 0.5 s, up',
    steps: [{ atMs: 0, access: 'dsl', state: 'down' }, { atMs: 500, access: 'dsl', state: 'up' }, { atMs: 1000, access: 'dsl', state: 'down' },
      { atMs: 1500, access: 'dsl', state: 'up' }]
  }
]

/** Fault length: the time of its last step. */
export function faultMs (f: FaultSpec): number { return f.steps[f.steps.length - 1]?.atMs ?? 0 }

/** Phase lengths of one fault run: quiet before, observation after the fault ends. */
export const SCENARIO_TIMING = { preMs: 3000, postMs: 10_000, fetchEveryMs: 200, fetchTimeoutS: 2, bytesEveryMs: 100, metricsEveryMs: 250 } as const

export interface ScenarioSelection { readonly modes: readonly LabMode[], readonly faults: readonly FaultSpec[] }

/** `--modes` / `--faults` lists (comma-separated, default all); an error message when a name is unknown. Pure. */
export function parseScenarioSelection (modes: string | undefined, faults: string | undefined): ScenarioSelection | { error: string } {
  const split = (s: string): string[] => s.split(',').map((x) => x.trim()).filter((x) => x !== '')
  const m = modes === undefined || modes === 'all' ? ['socks5', 'convert', 'transparent', 'mptcp'] : split(modes)
  const bad = m.find((x) => !(LAB_MODES as readonly string[]).includes(x))
  if (bad !== undefined || m.length === 0) return { error: `--modes: unknown mode ${JSON.stringify(bad ?? '')} (known: ${LAB_MODES.join(', ')})` }
  const f = faults === undefined || faults === 'all' ? FAULTS.map((x) => x.name) : split(faults)
  const badF = f.find((x) => !FAULTS.some((y) => y.name === x))
  if (badF !== undefined || f.length === 0) return { error: `--faults: unknown fault ${JSON.stringify(badF ?? '')} (known: ${FAULTS.map((x) => x.name).join(', ')})` }
  return { modes: [...new Set(m)] as LabMode[], faults: FAULTS.filter((x) => f.includes(x.name)) }
}

/** Upper bound of the scenario's duration (s) without lab build and daemon starts. Pure. */
export function plannedSeconds (sel: ScenarioSelection): number {
  const perFault = sel.faults.reduce((s, f) => s + SCENARIO_TIMING.preMs + faultMs(f) + SCENARIO_TIMING.postMs + 2000, 0)
  return Math.round((perFault * sel.modes.length) / 1000)
}

// --- figures --------------------------------------------------------------------------------

/** Byte arrivals at the receiver: times (ms) and bytes, in time order. */
export interface Arrivals { readonly t: readonly number[], readonly b: readonly number[] }

export interface Gap { readonly ms: number, /** Gap start, ms after `from`. */ readonly startMs: number }

/**
 * Longest gap between consecutive arrivals among the gaps that begin within [from, to), each
 * measured to the next arrival; after the last arrival the gap runs to `limit` (a transfer that
 * stopped or was reset). null when no gap begins in the interval. Pure.
 */
export function longestGap (a: Arrivals, from: number, to: number, limit: number = to): Gap | null {
  let best: Gap | null = null
  const consider = (s: number, e: number): void => {
    if (s < from || s >= to || e < s) return
    if (best === null || e - s > best.ms) best = { ms: round1(e - s), startMs: round1(s - from) }
  }
  for (let i = 0; i < a.t.length; i++) {
    const s = a.t[i]!
    if (s >= to) break
    consider(s, a.t[i + 1] ?? Math.max(s, limit))
  }
  return best
}

/** A counter of the `MPTcpExt` lines of /proc/net/netstat (0 when absent). Pure. */
export function netstatCounter (text: string, name: string): number {
  const lines = text.split('\n').filter((l) => l.startsWith('MPTcpExt:'))
  const names = lines[0]?.split(/\s+/) ?? []
  const values = lines[1]?.split(/\s+/) ?? []
  const i = names.indexOf(name)
  return i > 0 ? Number(values[i] ?? 0) : 0
}

/** Cumulative received bytes per access at one moment (interface counters, towards the CPE). */
export interface BytesSample { readonly at: number, readonly dsl: number, readonly lte: number }

/** Share (0..1) of `access` in each window between consecutive samples; null share when nothing moved. */
export function shareWindows (samples: readonly BytesSample[], access: AccessName): Array<{ at: number, share: number | null, bytes: number }> {
  const out: Array<{ at: number, share: number | null, bytes: number }> = []
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]!
    const b = samples[i]!
    const d = { dsl: b.dsl - a.dsl, lte: b.lte - a.lte }
    const sum = d.dsl + d.lte
    out.push({ at: b.at, share: sum > 0 ? d[access] / sum : null, bytes: sum })
  }
  return out
}

/** Mean share of `access` over [from, to] (bytes-weighted); null when nothing moved. */
export function meanShare (samples: readonly BytesSample[], access: AccessName, from: number, to: number): number | null {
  const inside = samples.filter((s) => s.at >= from && s.at <= to)
  if (inside.length < 2) return null
  const first = inside[0]!
  const last = inside[inside.length - 1]!
  const sum = (last.dsl - first.dsl) + (last.lte - first.lte)
  return sum > 0 ? (last[access] - first[access]) / sum : null
}

/**
 * Time (ms after `from`) of the end of the first window from which `access`'s share stays at or
 * above `threshold` for `consecutive` windows in a row; null if it never does. Pure.
 */
export function shareBackAfter (samples: readonly BytesSample[], access: AccessName, from: number, threshold: number,
  consecutive = 3): number | null {
  const w = shareWindows(samples, access).filter((x) => x.at > from)
  for (let i = 0; i + consecutive <= w.length; i++) {
    if (w.slice(i, i + consecutive).every((x) => x.share !== null && x.share >= threshold)) return Math.max(0, Math.round(w[i]!.at - from))
  }
  return null
}

export interface SubflowSample { readonly at: number, readonly dsl: number, readonly lte: number }

/** ms after `from` of the first sample with a subflow on both accesses; null if none. Pure. */
export function bothSubflowsAfter (samples: readonly SubflowSample[], from: number): number | null {
  const s = samples.find((x) => x.at >= from && x.dsl > 0 && x.lte > 0)
  return s === undefined ? null : Math.round(s.at - from)
}

/** Fewest subflows seen on an access within [from, to]; null without samples. */
export function minSubflows (samples: readonly SubflowSample[], access: AccessName, from: number, to: number): number | null {
  const v = samples.filter((x) => x.at >= from && x.at <= to).map((x) => x[access])
  return v.length === 0 ? null : Math.min(...v)
}

/** One new-connection fetch: when it started, whether it succeeded, its TTFB. */
export interface Fetch { readonly at: number, readonly ok: boolean, readonly ttfbMs: number | null }

export interface FetchFigures { readonly count: number, readonly ok: number, readonly ratio: number | null, readonly medianTtfbMs: number | null }

/** Fetches started within [from, to). Pure. */
export function fetchFigures (fetches: readonly Fetch[], from: number, to: number): FetchFigures {
  const f = fetches.filter((x) => x.at >= from && x.at < to)
  const ok = f.filter((x) => x.ok)
  const ttfb = ok.map((x) => x.ttfbMs).filter((x): x is number => x !== null).sort((a, b) => a - b)
  const mid = ttfb.length >> 1
  const median = ttfb.length === 0 ? null : ttfb.length % 2 === 1 ? ttfb[mid]! : (ttfb[mid - 1]! + ttfb[mid]!) / 2
  return {
    count: f.length,
    ok: ok.length,
    ratio: f.length === 0 ? null : round3(ok.length / f.length),
    medianTtfbMs: median === null ? null : round1(median)
  }
}

/** What one fault run recorded. */
export interface FaultRecord {
  readonly fault: FaultSpec
  readonly mode: LabMode
  /** Transfer start (connected), fault start, fault end (last step), observation end. */
  readonly t: { readonly start: number, readonly faultStart: number, readonly faultEnd: number, readonly end: number }
  readonly arrivals: Arrivals
  readonly end: { readonly at: number, readonly complete: boolean, readonly reset: boolean, readonly bytes: number, readonly error?: string } | null
  readonly bytes: readonly BytesSample[]
  readonly subflows: readonly SubflowSample[]
  readonly subflowSource: 'cpe-metrics' | 'mptcp-full-info'
  readonly fetches: readonly Fetch[]
  /** Rise of the CPE namespace's MPTcpExtBlackhole counter during this run (kernel turned MPTCP off for new connections). */
  readonly mptcpBlackholes: number
}

export interface FaultResult {
  readonly mode: LabMode
  readonly fault: string
  readonly faultMs: number
  /** Longest gap between received bytes before the fault (quiet reference), ms. */
  readonly baselineStallMs: number | null
  /** Longest gap that began during the fault (outage and its detection), ms, and when (ms after the fault start). */
  readonly stallDuringMs: number | null
  readonly stallDuringAtMs: number | null
  /** Longest gap that began after the fault ended (failback), ms, and when (ms after the fault end). */
  readonly stallAfterMs: number | null
  readonly stallAfterAtMs: number | null
  readonly reset: boolean
  readonly transferMbytes: number
  readonly during: FetchFigures
  readonly after: FetchFigures
  /** Fewest subflows on the faulted access during the fault (did the product see it go?). */
  readonly minSubflowsFaulted: number | null
  /** ms after the fault ended until both accesses have a subflow again (null: not within the observation). */
  readonly subflowsBackMs: number | null
  /** Faulted access's share of the received bytes before the fault (0..1). */
  readonly shareBefore: number | null
  /** ms after the fault ended until the faulted access carries half its pre-fault share again, 3 windows of 100 ms in a row. */
  readonly bulkBackMs: number | null
  readonly observedAfterMs: number
  /** Times the kernel's MPTCP blackhole detection fired in the CPE namespace during this run. */
  readonly mptcpBlackholes: number
}

/** The figures of one fault run. Pure. */
export function analyseFault (r: FaultRecord): FaultResult {
  const { start, faultStart, faultEnd, end } = r.t
  const access = r.fault.access
  const transferEnd = r.end !== null ? Math.min(r.end.at, end) : end
  const baseline = longestGap(r.arrivals, start + 1000, faultStart)
  const during = longestGap(r.arrivals, faultStart, faultEnd, transferEnd)
  const after = longestGap(r.arrivals, faultEnd, transferEnd)
  const shareBefore = meanShare(r.bytes, access, start + 1000, faultStart)
  return {
    mode: r.mode,
    fault: r.fault.name,
    faultMs: faultMs(r.fault),
    baselineStallMs: baseline?.ms ?? null,
    stallDuringMs: during?.ms ?? null,
    stallDuringAtMs: during?.startMs ?? null,
    stallAfterMs: after?.ms ?? null,
    stallAfterAtMs: after?.startMs ?? null,
    reset: r.end === null || r.end.reset,
    transferMbytes: round1(r.arrivals.b.reduce((s, x) => s + x, 0) / 1e6),
    during: fetchFigures(r.fetches, faultStart, faultEnd),
    after: fetchFigures(r.fetches, faultEnd, end),
    minSubflowsFaulted: minSubflows(r.subflows, access, faultStart + 500, faultEnd),
    subflowsBackMs: bothSubflowsAfter(r.subflows, faultEnd),
    shareBefore: shareBefore === null ? null : round3(shareBefore),
    bulkBackMs: bulkBack(r.bytes, access, faultEnd, shareBefore),
    observedAfterMs: Math.round(end - faultEnd),
    mptcpBlackholes: r.mptcpBlackholes
  }
}

/** shareBackAfter at half the pre-fault share; null when the access carried (almost) nothing before. */
function bulkBack (bytes: readonly BytesSample[], access: AccessName, from: number, shareBefore: number | null): number | null {
  return shareBefore === null || shareBefore < 0.05 ? null : shareBackAfter(bytes, access, from, shareBefore / 2)
}

// --- output ---------------------------------------------------------------------------------

export interface ScenarioReport {
  readonly scenario: 'failover'
  readonly prefix: string
  readonly profiles: { readonly dsl: string, readonly lte: string }
  readonly timing: typeof SCENARIO_TIMING
  readonly results: readonly FaultResult[]
  readonly totalSeconds: number
}

const fmtMs = (x: number | null): string => (x === null ? '-' : x >= 10_000 ? `${(x / 1000).toFixed(1)}s` : String(Math.round(x)))
const fmtRatio = (f: FetchFigures): string => (f.count === 0 ? '-' : `${f.ok}/${f.count}`)

const COLUMNS: ReadonlyArray<readonly [string, number, (r: FaultResult) => string]> = [
  ['mode', 12, (r) => r.mode],
  ['fault', 14, (r) => r.fault],
  ['stall', 7, (r) => fmtMs(r.stallDuringMs)],
  ['back stall', 11, (r) => fmtMs(r.stallAfterMs)],
  ['at', 6, (r) => fmtMs(r.stallAfterAtMs)],
  ['reset', 6, (r) => (r.reset ? 'RESET' : 'no')],
  ['new ok', 7, (r) => fmtRatio(r.during)],
  ['ttfb ms', 8, (r) => fmtMs(r.during.medianTtfbMs)],
  ['after ok', 9, (r) => fmtRatio(r.after)],
  ['ttfb ms', 8, (r) => fmtMs(r.after.medianTtfbMs)],
  ['min sf', 7, (r) => (r.minSubflowsFaulted === null ? '-' : String(r.minSubflowsFaulted))],
  ['subfl back', 11, (r) => (r.subflowsBackMs === null ? 'never' : fmtMs(r.subflowsBackMs))],
  ['bulk back', 10, (r) => (r.bulkBackMs === null ? (r.shareBefore === null || r.shareBefore < 0.05 ? 'n/a' : 'never') : fmtMs(r.bulkBackMs))],
  ['base stall', 11, (r) => fmtMs(r.baselineStallMs)],
  ['mp off', 7, (r) => String(r.mptcpBlackholes)]
]

/** The readable table (one line per mode and fault) and its legend. Pure. */
export function formatScenarioReport (rep: ScenarioReport): string {
  const head = COLUMNS.map(([h, w]) => h.padStart(w)).join('')
  const lines = rep.results.map((r) => COLUMNS.map(([, w, f]) => f(r).padStart(w)).join(''))
  const post = rep.timing.postMs / 1000
  return [
    `Failover scenario (${rep.prefix}*, dsl ${rep.profiles.dsl}, lte ${rep.profiles.lte}), ${rep.totalSeconds} s in all`,
    '',
    head,
    ...lines,
    '',
    'stall: longest gap between received bytes of the running download (at the receiver, 1 ms) that began',
    `  during the fault; back stall: the same for gaps that began in the ${post} s after it (failback), at: ms`,
    '  after the fault end. reset: the download did not complete (RST, error or close).',
    `new ok / ttfb: LAN fetches (one every ${rep.timing.fetchEveryMs} ms, ${rep.timing.fetchTimeoutS} s timeout) that succeeded during the fault, median TTFB;`,
    `  after: the same for the ${post} s after the fault. subfl back: ms after the fault until both accesses`,
    '  have a subflow (never: not within the observation). bulk back: ms until the faulted access carries',
    '  half its pre-fault share of the download bytes again (100 ms windows, 3 in a row). min sf: fewest',
    '  subflows seen on the faulted access during the fault. base stall: the longest gap in the quiet 2 s',
    '  before the fault. mp off: times the kernel\'s MPTCP blackhole detection fired in cpe (MPTcpExtBlackhole);',
    '  the scenario resets that state before each fault. Times in ms unless marked s.'
  ].join('\n')
}

function round1 (x: number): number { return Math.round(x * 10) / 10 }
function round3 (x: number): number { return Math.round(x * 1000) / 1000 }
