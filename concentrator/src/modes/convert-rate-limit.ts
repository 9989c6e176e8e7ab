/**
 * Per-source token bucket for Convert Error replies (draft-05: errors SHOULD be rate-limited per
 * client; an Error reply is a small amplification vector towards a spoofed source). Over the limit
 * the converter closes without writing the Error. The table is bounded: at `maxSources` the oldest
 * entry is evicted (Map insertion order; a refill re-inserts).
 */
export interface TokenBucketOptions {
  /** Tokens added per second. */
  readonly perSecond: number
  /** Bucket size. */
  readonly burst: number
  readonly maxSources?: number
  readonly now?: () => number
}

interface Bucket { tokens: number, at: number }

export class SourceTokenBucket {
  readonly #perMs: number
  readonly #burst: number
  readonly #max: number
  readonly #now: () => number
  readonly #buckets = new Map<string, Bucket>()

  constructor (opts: TokenBucketOptions) {
    this.#perMs = opts.perSecond / 1000
    this.#burst = opts.burst
    this.#max = opts.maxSources ?? 100_000
    this.#now = opts.now ?? Date.now
  }

  get size (): number { return this.#buckets.size }

  /** Takes one token for `source`; false when its bucket is empty. */
  take (source: string): boolean {
    const now = this.#now()
    const b = this.#buckets.get(source)
    const tokens = b === undefined ? this.#burst : Math.min(this.#burst, b.tokens + (now - b.at) * this.#perMs)
    this.#buckets.delete(source)
    if (tokens < 1) {
      this.#buckets.set(source, { tokens, at: now })
      return false
    }
    if (this.#buckets.size >= this.#max) {
      const oldest = this.#buckets.keys().next().value
      if (oldest !== undefined) this.#buckets.delete(oldest)
    }
    this.#buckets.set(source, { tokens: tokens - 1, at: now })
    return true
  }

  /** Drops sources whose bucket is full again (nothing to remember). */
  sweep (): void {
    const now = this.#now()
    for (const [k, b] of this.#buckets) if (b.tokens + (now - b.at) * this.#perMs >= this.#burst) this.#buckets.delete(k)
  }
}
