/**
 * Which concentrators do not accept a pipelined SOCKS5 handshake (`socks5.pipelining: auto`).
 * A concentrator seen answering only the greeting (or closing after it) is handled stepwise for
 * `memoryMs`; then pipelining is tried again, so a concentrator upgrade is picked up. Pure apart from
 * the injected clock; bounded (at most `maxEntries` concentrators remembered).
 */
import { formatHostPort } from '../../../shared/src/net/endpoint.ts'

export type PipeliningSetting = 'auto' | 'always' | 'never'

export class PipeliningMemory {
  readonly #memoryMs: number
  readonly #now: () => number
  readonly #maxEntries: number
  /** Concentrator key → time until which it is handled stepwise. */
  readonly #stepwiseUntil = new Map<string, number>()

  constructor (memoryMs: number, now: () => number = Date.now, maxEntries = 64) {
    this.#memoryMs = memoryMs
    this.#now = now
    this.#maxEntries = maxEntries
  }

  /** Whether the next connection to `key` should pipeline. */
  shouldPipeline (setting: PipeliningSetting, key: string): boolean {
    if (setting !== 'auto') return setting === 'always'
    const until = this.#stepwiseUntil.get(key)
    if (until === undefined) return true
    if (this.#now() < until) return false
    this.#stepwiseUntil.delete(key)
    return true
  }

  /** `key` did not accept a pipelined handshake. */
  recordRefused (key: string): void {
    this.#stepwiseUntil.delete(key)
    if (this.#stepwiseUntil.size >= this.#maxEntries) {
      const oldest = this.#stepwiseUntil.keys().next()
      if (oldest.done !== true) this.#stepwiseUntil.delete(oldest.value)
    }
    this.#stepwiseUntil.set(key, this.#now() + this.#memoryMs)
  }

  /** A pipelined handshake with `key` worked. */
  recordAccepted (key: string): void {
    this.#stepwiseUntil.delete(key)
  }

  /** Concentrators currently handled stepwise. */
  stepwiseKeys (): string[] {
    const now = this.#now()
    return [...this.#stepwiseUntil].filter(([, until]) => until > now).map(([k]) => k)
  }
}

export function concentratorKey (host: string, port: number): string {
  return formatHostPort(host, port)
}
