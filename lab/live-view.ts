/**
 * The lab demo's live view: about once a second, per access the throughput in both directions, the
 * subflow RTT and the subflows, plus the transfer's goodput.
 *
 * Two sources (`MeterReading`):
 * - mptcp mode (no daemons): the access routers' interface byte counters (what actually crossed the
 *   emulated link, IP bytes) and the flow tool's MPTCP_FULL_INFO samples for RTT and subflows;
 * - daemon modes: the CPE agent's metrics API (`GET /metrics`): `hybrid_path_bytes_total{path,direction}`
 *   (payload bytes per access), `hybrid_path_rtt_seconds` (histogram: RTT = Δsum / Δcount),
 *   `hybrid_mptcp_subflows_active{path}` and the path state (`readPathMetrics`): per access up/down
 *   (`hybrid_path_up`), probe loss (`hybrid_path_loss_ratio`) and probe RTT
 *   (`hybrid_path_probe_rtt_seconds`), and the access new connections are steered to
 *   (`hybrid_failover_steering`). The live line ends with them: `dsl up 0% 21.3ms  lte up 0% 30.1ms  new→dsl`.
 * The rate and formatting functions are pure.
 */
import { ACCESS_NAMES, type AccessName } from './addresses.ts'
import { sumMetric } from './daemons.ts'
import type { InterfaceBytes } from './topology.ts'

export interface AccessRates { upMbps: number, downMbps: number }
export type AccessBytes = { [K in AccessName]: InterfaceBytes }
export type PerAccess<T> = { [K in AccessName]: T }

/** Cumulative state of every access at one moment (`at`: performance.now() ms). */
export interface MeterReading {
  at: number
  bytes: AccessBytes
  /** Cumulative RTT histogram sum (s) and count per access: daemon modes only. */
  rtt?: PerAccess<{ sum: number, count: number }>
  /** Subflows per access right now: daemon modes only. */
  subflows?: PerAccess<number>
  /** Path health per access right now: daemon modes only. */
  paths?: PerAccess<PathState>
  /** Access new connections are steered to; null: none (no path up); undefined: failover off. Daemon modes only. */
  steering?: AccessName | null | undefined
}

/** One access's state as the CPE reports it; null where the CPE exports no value. */
export interface PathState {
  up: boolean | null
  /** Share of probes lost (0..1); null without the metric. */
  lossRatio: number | null
  /** Probe RTT (EWMA) in ms, 1 decimal; null before the first answer or without probing. */
  probeRttMs: number | null
}

export interface LiveSample {
  direction: string
  t: number
  goodputMbps: number
  subflows: number
  rates: PerAccess<AccessRates>
  rttMs: PerAccess<number | null>
  /** Daemon modes: path state and steering (appended to the line). */
  paths?: PerAccess<PathState> | undefined
  steering?: AccessName | null | undefined
}

/** Path bytes, RTT histogram and subflows per access from the CPE's Prometheus text. Pure. */
export function readPathMetrics (text: string, at: number): MeterReading {
  const per = <T>(f: (path: AccessName) => T): PerAccess<T> => ({ dsl: f('dsl'), lte: f('lte') })
  return {
    at,
    bytes: per((path) => ({
      up: sumMetric(text, 'hybrid_path_bytes_total', { path, direction: 'up' }),
      down: sumMetric(text, 'hybrid_path_bytes_total', { path, direction: 'down' })
    })),
    rtt: per((path) => ({
      sum: sumMetric(text, 'hybrid_path_rtt_seconds_sum', { path }),
      count: sumMetric(text, 'hybrid_path_rtt_seconds_count', { path })
    })),
    subflows: per((path) => sumMetric(text, 'hybrid_mptcp_subflows_active', { path })),
    paths: per((path) => readPathState(text, path)),
    steering: readSteering(text)
  }
}

/** Whether Prometheus text has a sample of `name` with label path="<path>" (sumMetric reads absent as 0). */
function hasPathSample (text: string, name: string, path: string): boolean {
  return new RegExp(`^${name}\\{[^}]*path="${path}"`, 'm').test(text)
}

/** Up/down, probe loss and probe RTT of one access from the CPE's Prometheus text. Pure. */
export function readPathState (text: string, path: AccessName): PathState {
  const rtt = sumMetric(text, 'hybrid_path_probe_rtt_seconds', { path })
  return {
    up: hasPathSample(text, 'hybrid_path_up', path) ? sumMetric(text, 'hybrid_path_up', { path }) === 1 : null,
    lossRatio: hasPathSample(text, 'hybrid_path_loss_ratio', path) ? sumMetric(text, 'hybrid_path_loss_ratio', { path }) : null,
    probeRttMs: rtt > 0 ? Math.round(rtt * 10_000) / 10 : null
  }
}

/** The access `hybrid_failover_steering` marks (1); null when none is; undefined without the metric. Pure. */
export function readSteering (text: string): AccessName | null | undefined {
  if (!ACCESS_NAMES.some((n) => hasPathSample(text, 'hybrid_failover_steering', n))) return undefined
  return ACCESS_NAMES.find((n) => sumMetric(text, 'hybrid_failover_steering', { path: n }) === 1) ?? null
}

/** Per-access Mbit/s between two snapshots taken `ms` apart (0 for ms <= 0). */
export function ratesBetween (a: AccessBytes, b: AccessBytes, ms: number): PerAccess<AccessRates> {
  const r = (x: number, y: number): number => (ms > 0 ? Math.round(((y - x) * 8) / (ms * 10)) / 100 : 0)
  return {
    dsl: { upMbps: r(a.dsl.up, b.dsl.up), downMbps: r(a.dsl.down, b.dsl.down) },
    lte: { upMbps: r(a.lte.up, b.lte.up), downMbps: r(a.lte.down, b.lte.down) }
  }
}

/** Mean RTT (ms, 2 decimals) of the histogram observations between two readings; null without new ones. */
export function rttBetween (a: MeterReading, b: MeterReading): PerAccess<number | null> {
  const one = (n: AccessName): number | null => {
    const x = a.rtt?.[n]
    const y = b.rtt?.[n]
    if (x === undefined || y === undefined || y.count <= x.count) return null
    return Math.round(((y.sum - x.sum) / (y.count - x.count)) * 100_000) / 100
  }
  return { dsl: one('dsl'), lte: one('lte') }
}

/** Bytes per access in one direction between two readings. */
export function bytesBetween (a: MeterReading, b: MeterReading, key: 'up' | 'down'): PerAccess<number> {
  return { dsl: b.bytes.dsl[key] - a.bytes.dsl[key], lte: b.bytes.lte[key] - a.bytes.lte[key] }
}

export function sumAccesses (x: PerAccess<number>): number {
  return ACCESS_NAMES.reduce((s, n) => s + x[n], 0)
}

const col = (s: string, w: number): string => s.padStart(w)
const f1 = (x: number | null): string => (x === null ? '-' : x.toFixed(1))

const SUBFLOWS_W = 'subflows'.length

/** The two header lines; `paths`: daemon modes, whose lines end with the path state. */
export function formatLiveHeader (paths = false): string {
  const acc = (n: string): string => `${col(`${n} down`, 9)}${col('up', 7)}${col('rtt', 7)}`
  const state = paths ? ' | path health: state, probe loss, probe RTT; new connections →' : ''
  return `${'direction'.padEnd(9)}${col('t', 4)}${col('goodput', 9)} |${acc('dsl')} |${acc('lte')} | subflows${state}` +
    '\n' + `${''.padEnd(9)}${col('s', 4)}${col('Mbit/s', 9)} |${col('Mbit/s', 9)}${col('Mbit/s', 7)}${col('ms', 7)} |${col('Mbit/s', 9)}${col('Mbit/s', 7)}${col('ms', 7)} |`
}

export function formatLiveLine (s: LiveSample): string {
  const acc = (n: AccessName): string => `${col(f1(s.rates[n].downMbps), 9)}${col(f1(s.rates[n].upMbps), 7)}${col(f1(s.rttMs[n]), 7)}`
  const line = `${s.direction.padEnd(9)}${col(String(s.t), 4)}${col(f1(s.goodputMbps), 9)} |${acc('dsl')} |${acc('lte')} | `
  if (s.paths === undefined) return `${line}${s.subflows}`
  return `${line}${String(s.subflows).padEnd(SUBFLOWS_W)} | ${formatPathState(s.paths, s.steering)}`
}

/**
 * The path-state part of a live line: per access `up`/`DOWN` (`-`: no health metric), probe loss
 * in %, probe RTT in ms, then `new→<access>` (new connections steered there; `new→none`: no path
 * up; omitted with failover off). Fixed widths, so the columns stay aligned. Pure.
 */
export function formatPathState (paths: PerAccess<PathState>, steering: AccessName | null | undefined): string {
  const one = (n: AccessName): string => {
    const p = paths[n]
    const state = p.up === null ? '-' : p.up ? 'up' : 'DOWN'
    const loss = p.lossRatio === null ? '-' : `${Math.round(p.lossRatio * 100)}%`
    const rtt = p.probeRttMs === null ? '-' : `${p.probeRttMs.toFixed(1)}ms`
    return `${n} ${state.padEnd(4)}${loss.padStart(5)}${rtt.padStart(9)}`
  }
  const steer = steering === undefined ? '' : `  new→${steering ?? 'none'}`
  return `${ACCESS_NAMES.map(one).join('  ')}${steer}`
}

/** Sum over the accesses of one direction's rate. */
export function rateOf (rates: PerAccess<AccessRates>, key: 'up' | 'down'): number {
  return Math.round(ACCESS_NAMES.reduce((s, n) => s + (key === 'up' ? rates[n].upMbps : rates[n].downMbps), 0) * 100) / 100
}
