/**
 * Per-source authentication back-off (docs/design/threat-model.md, threat 5): after `maxFailures` failed RFC 1929 attempts
 * within `windowMs`, the source is throttled for `initialMs`; every further failure after a
 * throttle ends doubles the period, up to `maxMs`. While throttled, attempts are refused without
 * checking the credentials (cheap under attack; the caller counts result="throttled"). A success
 * forgets the source, and so does `sweep()` once a source has had no failure for `windowMs` after
 * its last throttle ended. Sources are keyed by address; the table is bounded (oldest entry evicted).
 * Pure apart from the injected clock.
 */
export interface BackoffOptions {
  maxFailures: number
  windowMs: number
  initialMs: number
  maxMs: number
  /** Sources remembered at once. Default 100 000. */
  maxSources?: number
  now?: () => number
}

interface SourceState {
  /** Failure times inside the window (oldest first). */
  failures: number[]
  /** 0 = not throttled yet; n = the next throttle lasts initial × 2^(n) … */
  level: number
  throttledUntil: number
}

export class AuthBackoff {
  readonly #o: Required<Omit<BackoffOptions, 'now'>>
  readonly #now: () => number
  readonly #sources = new Map<string, SourceState>()

  constructor (options: BackoffOptions) {
    this.#o = { maxSources: 100_000, ...options }
    this.#now = options.now ?? Date.now
  }

  /** Milliseconds the source must still wait (0 = may try now). */
  throttledFor (source: string): number {
    const s = this.#sources.get(source)
    if (s === undefined) return 0
    return Math.max(0, s.throttledUntil - this.#now())
  }

  recordSuccess (source: string): void {
    this.#sources.delete(source)
  }

  /** Record a failure; returns the throttle period started (0 if none). */
  recordFailure (source: string): number {
    const now = this.#now()
    let s = this.#sources.get(source)
    if (s === undefined) {
      s = { failures: [], level: 0, throttledUntil: 0 }
      this.#evictIfFull()
    } else {
      this.#sources.delete(source) // re-insert: Map order = least recently failed first
    }
    this.#sources.set(source, s)
    s.failures = s.failures.filter((t) => now - t < this.#o.windowMs)
    s.failures.push(now)
    if (s.failures.length > this.#o.maxFailures) s.failures.shift()
    // Once throttled, every further failure (until the source is forgotten) starts the next period.
    if (s.failures.length < this.#o.maxFailures && s.level === 0) return 0
    const period = Math.min(this.#o.maxMs, this.#o.initialMs * 2 ** s.level)
    s.level = Math.min(s.level + 1, 30)
    s.throttledUntil = now + period
    return period
  }

  /** Sources currently throttled (the gauge). */
  throttledCount (): number {
    const now = this.#now()
    let n = 0
    for (const s of this.#sources.values()) if (s.throttledUntil > now) n++
    return n
  }

  /** Forget sources with no failure in the window and no throttle running. */
  sweep (): void {
    const now = this.#now()
    for (const [key, s] of this.#sources) {
      const quietSince = Math.max(s.failures[s.failures.length - 1] ?? 0, s.throttledUntil)
      if (now - quietSince >= this.#o.windowMs) this.#sources.delete(key)
    }
  }

  get size (): number { return this.#sources.size }

  #evictIfFull (): void {
    if (this.#sources.size < this.#o.maxSources) return
    const oldest = this.#sources.keys().next()
    if (oldest.done !== true) this.#sources.delete(oldest.value)
  }
}
