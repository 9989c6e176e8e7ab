/**
 * The lab demo's live view: about once a second, per access the throughput in both directions
 * (from the access router's interface byte counters, i.e. what actually crossed the emulated link)
 * and the subflow RTT (from the flow tool's MPTCP_FULL_INFO samples), plus the transfer's goodput.
 * `CounterMeter` turns counter snapshots into rates; the formatters are pure.
 */
import { performance } from 'node:perf_hooks'
import { ACCESS_NAMES, type AccessName } from './addresses.ts'
import type { InterfaceBytes } from './topology.ts'

export interface AccessRates { upMbps: number, downMbps: number }
export type AccessBytes = { [K in AccessName]: InterfaceBytes }

export interface LiveSample {
  direction: string
  t: number
  goodputMbps: number
  subflows: number
  rates: { [K in AccessName]: AccessRates }
  rttMs: { [K in AccessName]: number | null }
}

/** Rates from successive byte-counter snapshots of every access. */
export class CounterMeter {
  readonly #read: (name: AccessName) => Promise<InterfaceBytes>
  readonly #now: () => number
  #last: { at: number, bytes: AccessBytes } | undefined

  constructor (read: (name: AccessName) => Promise<InterfaceBytes>, now: () => number = () => performance.now()) {
    this.#read = read
    this.#now = now
  }

  async snapshot (): Promise<AccessBytes> {
    const [dsl, lte] = await Promise.all(ACCESS_NAMES.map(async (n) => this.#read(n)))
    return { dsl: dsl!, lte: lte! }
  }

  /** Rates since the previous call (zero on the first call). */
  async sample (): Promise<{ [K in AccessName]: AccessRates }> {
    const bytes = await this.snapshot()
    const at = this.#now()
    const prev = this.#last
    this.#last = { at, bytes }
    return ratesBetween(prev?.bytes ?? bytes, bytes, prev === undefined ? 0 : at - prev.at)
  }
}

/** Per-access Mbit/s between two snapshots taken `ms` apart (0 for ms <= 0). */
export function ratesBetween (a: AccessBytes, b: AccessBytes, ms: number): { [K in AccessName]: AccessRates } {
  const r = (x: number, y: number): number => (ms > 0 ? Math.round(((y - x) * 8) / (ms * 10)) / 100 : 0)
  return {
    dsl: { upMbps: r(a.dsl.up, b.dsl.up), downMbps: r(a.dsl.down, b.dsl.down) },
    lte: { upMbps: r(a.lte.up, b.lte.up), downMbps: r(a.lte.down, b.lte.down) }
  }
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
