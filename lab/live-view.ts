/**
 * The lab demo's live view: about once a second, per access the throughput in both directions, the
 * subflow RTT and the subflows, plus the transfer's goodput.
 *
 * Two sources (`MeterReading`):
 * - mptcp mode (no daemons): the access routers' interface byte counters (what actually crossed the
 *   emulated link, IP bytes) and the flow tool's MPTCP_FULL_INFO samples for RTT and subflows;
 * - daemon modes: the CPE agent's metrics API (`GET /metrics`): `hybrid_path_bytes_total{path,direction}`
 *   (payload bytes per access), `hybrid_path_rtt_seconds` (histogram: RTT = Δsum / Δcount) and
 *   `hybrid_mptcp_subflows_active{path}` (`readPathMetrics`).
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
}

export interface LiveSample {
  direction: string
  t: number
  goodputMbps: number
  subflows: number
  rates: PerAccess<AccessRates>
  rttMs: PerAccess<number | null>
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
    rtt: per((path) => ({ sum: sumMetric(text, 'hybrid_path_rtt_seconds_sum', { path }), count: sumMetric(text, 'hybrid_path_rtt_seconds_count', { path }) })),
    subflows: per((path) => sumMetric(text, 'hybrid_mptcp_subflows_active', { path }))
  }
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

export function formatLiveHeader (): string {
  const acc = (n: string): string => `${col(`${n} down`, 9)}${col('up', 7)}${col('rtt', 7)}`
  return `${'direction'.padEnd(9)}${col('t', 4)}${col('goodput', 9)} |${acc('dsl')} |${acc('lte')} | subflows` +
    '\n' + `${''.padEnd(9)}${col('s', 4)}${col('Mbit/s', 9)} |${col('Mbit/s', 9)}${col('Mbit/s', 7)}${col('ms', 7)} |${col('Mbit/s', 9)}${col('Mbit/s', 7)}${col('ms', 7)} |`
}

export function formatLiveLine (s: LiveSample): string {
  const acc = (n: AccessName): string => `${col(f1(s.rates[n].downMbps), 9)}${col(f1(s.rates[n].upMbps), 7)}${col(f1(s.rttMs[n]), 7)}`
  return `${s.direction.padEnd(9)}${col(String(s.t), 4)}${col(f1(s.goodputMbps), 9)} |${acc('dsl')} |${acc('lte')} | ${s.subflows}`
}

/** Sum over the accesses of one direction's rate. */
export function rateOf (rates: PerAccess<AccessRates>, key: 'up' | 'down'): number {
  return Math.round(ACCESS_NAMES.reduce((s, n) => s + (key === 'up' ? rates[n].upMbps : rates[n].downMbps), 0) * 100) / 100
}
