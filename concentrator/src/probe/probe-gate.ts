/**
 * Decision of the probe responder for one datagram (pure, injected clock): answer, or drop with a
 * reason. Not an open reflector: only sources in the trusted prefixes are answered, only valid
 * requests (a reply is never larger than its request: path-probe.ts `echoOf`), and at most
 * `ratePerSecond` (bucket depth `burst`) per source address. The per-source table is bounded
 * (`maxSources`); when full, the least recently seen source is forgotten.
 */
import { decodeProbe, ProbeMaxBytes, ProbeType } from '../../../shared/src/codec/path-probe.ts'

export const ProbeDropReason = ['untrusted', 'oversized', 'malformed', 'not_request', 'rate_limited'] as const
export type ProbeDropReason = (typeof ProbeDropReason)[number]

export type ProbeDecision = { answer: true } | { answer: false, reason: ProbeDropReason }

export interface ProbeGateOptions {
  /** Whether a canonical source address is trusted. */
  trusted: (source: string) => boolean
  ratePerSecond: number
  burst: number
  now?: () => number
  maxSources?: number
}

interface Bucket { tokens: number, at: number }

export class ProbeGate {
  readonly #opts: ProbeGateOptions
  readonly #now: () => number
  readonly #max: number
  /** Insertion order = recency (re-inserted on use). */
  readonly #buckets = new Map<string, Bucket>()

  constructor (opts: ProbeGateOptions) {
    this.#opts = opts
    this.#now = opts.now ?? Date.now
    this.#max = opts.maxSources ?? 4096
  }

  /** Checks in the cheapest order: trust, size, format, then spends a token. */
  decide (source: string, datagram: Uint8Array): ProbeDecision {
    if (!this.#opts.trusted(source)) return { answer: false, reason: 'untrusted' }
    if (datagram.length > ProbeMaxBytes) return { answer: false, reason: 'oversized' }
    const msg = decodeProbe(datagram)
    if (!msg.ok) return { answer: false, reason: 'malformed' }
    if (msg.value.type !== ProbeType.Request) return { answer: false, reason: 'not_request' }
    return this.#take(source) ? { answer: true } : { answer: false, reason: 'rate_limited' }
  }

  get sources (): number { return this.#buckets.size }

  #take (source: string): boolean {
    const now = this.#now()
    const { ratePerSecond, burst } = this.#opts
    const b = this.#buckets.get(source) ?? { tokens: burst, at: now }
    b.tokens = Math.min(burst, b.tokens + (Math.max(0, now - b.at) * ratePerSecond) / 1000)
    b.at = now
    this.#buckets.delete(source)
    this.#buckets.set(source, b)
    if (this.#buckets.size > this.#max) {
      const oldest = this.#buckets.keys().next().value
      if (oldest !== undefined) this.#buckets.delete(oldest)
    }
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }
}
