/**
 * Per-connection error logs are rate limited (docs/design/threat-model.md, "Conventions"): at most `perSecond`
 * lines per second for one component; the rest are counted and reported in one summary line when
 * the next second's budget opens. A flood of resets cannot flood the log.
 */
import type { Logger } from './log.ts'

export class RateLimitedLog {
  readonly #perSecond: number
  readonly #now: () => number
  #windowStart = 0
  #used = 0
  #suppressed = 0

  constructor (perSecond = 20, now: () => number = Date.now) {
    this.#perSecond = perSecond
    this.#now = now
  }

  /** Whether a line may be written now (and counts it). */
  allow (log: Logger): boolean {
    const now = this.#now()
    if (now - this.#windowStart >= 1000) {
      if (this.#suppressed > 0) log.warn({ suppressed: this.#suppressed }, 'connection error logs suppressed')
      this.#windowStart = now
      this.#used = 0
      this.#suppressed = 0
    }
    if (this.#used < this.#perSecond) {
      this.#used++
      return true
    }
    this.#suppressed++
    return false
  }
}
