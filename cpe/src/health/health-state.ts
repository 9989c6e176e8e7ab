/**
 * Health of one access (pure, times passed in): a two-state machine fed with probe outcomes and the
 * link's carrier, plus the loss ratio over a sliding window, a probe RTT (EWMA, α = 1/8 like
 * TCP's SRTT) with its variation (β = 1/4, RFC 6298) and the adaptive probe timeout derived from
 * them (`probeTimeoutMs`). docs/path-health.md.
 *
 *   up   ── downAfter consecutive lost probes ─────────────────────────────► down
 *   up   ── carrier lost ───────────────────────────────────────────────────► down (at once)
 *   down ── upAfter consecutive answers, carrier up, ≥ holdDownMs since down ─► up
 *
 * The machine starts `up` when the carrier is up (optimistic: a starting agent does not report a
 * healthy access down before its first probes) and `down` otherwise. While the carrier is down,
 * probe outcomes are ignored.
 */

export type HealthStateName = 'up' | 'down'

export type TransitionReason = 'probes_lost' | 'probes_answered' | 'carrier_down'

export interface Transition {
  from: HealthStateName
  to: HealthStateName
  reason: TransitionReason
  /** When it happened (the caller's clock, ms). */
  at: number
  /** Human-readable cause: `3 probes lost`, `carrier down`, `3 probes answered`. */
  detail: string
}

export interface HealthParams {
  downAfter: number
  upAfter: number
  holdDownMs: number
  window: number
}

export interface HealthSnapshot {
  state: HealthStateName
  /** Lost / sent over the last `window` probes (0 before the first). */
  lossRatio: number
  /** EWMA of answered probes' RTT; undefined before the first answer. */
  rttMs: number | undefined
  /** Time of the last transition (or of creation). */
  since: number
  carrier: boolean
}

export class HealthState {
  readonly #p: HealthParams
  #state: HealthStateName
  #since: number
  #carrier: boolean
  #misses = 0
  #answers = 0
  #rttMs: number | undefined
  #rttVarMs = 0
  /** Ring of the last outcomes: true = lost. */
  readonly #window: boolean[] = []

  constructor (params: HealthParams, now: number, carrier = true) {
    this.#p = params
    this.#carrier = carrier
    this.#state = carrier ? 'up' : 'down'
    this.#since = now
  }

  get state (): HealthStateName { return this.#state }

  snapshot (): HealthSnapshot {
    const lost = this.#window.filter((l) => l).length
    return {
      state: this.#state,
      lossRatio: this.#window.length === 0 ? 0 : lost / this.#window.length,
      rttMs: this.#rttMs,
      since: this.#since,
      carrier: this.#carrier
    }
  }

  /** Carrier (link UP and LOWER_UP with an address) as read now; a loss takes the path down at once. */
  carrier (up: boolean, now: number): Transition | undefined {
    if (up === this.#carrier) return undefined
    this.#carrier = up
    this.#misses = 0
    this.#answers = 0
    if (!up && this.#state === 'up') return this.#go('down', 'carrier_down', now, 'carrier down')
    return undefined
  }

  /** A probe was answered (rttMs) or declared lost (undefined). */
  probe (rttMs: number | undefined, now: number): Transition | undefined {
    if (!this.#carrier) return undefined
    this.#record(rttMs === undefined)
    if (rttMs === undefined) {
      this.#misses += 1
      this.#answers = 0
      if (this.#state === 'up' && this.#misses >= this.#p.downAfter) return this.#go('down', 'probes_lost', now, `${this.#misses} probes lost`)
      return undefined
    }
    this.rttSample(rttMs)
    this.#answers += 1
    this.#misses = 0
    if (this.#state === 'down' && this.#answers >= this.#p.upAfter && now - this.#since >= this.#p.holdDownMs) {
      return this.#go('up', 'probes_answered', now, `${this.#answers} probes answered`)
    }
    return undefined
  }

  /**
   * Feed one RTT into the estimator only (also for a reply that came after its probe was declared
   * lost: the path is slower than the timeout assumed, so the timeout grows; the verdict stays).
   */
  rttSample (rttMs: number): void {
    if (this.#rttMs === undefined) {
      this.#rttMs = rttMs
      this.#rttVarMs = rttMs / 2
      return
    }
    this.#rttVarMs += (Math.abs(this.#rttMs - rttMs) - this.#rttVarMs) / 4
    this.#rttMs += (rttMs - this.#rttMs) / 8
  }

  /**
   * The timeout for the next probe: `max(srtt + 4 × rttvar, 2 × srtt)` clamped to [minMs, maxMs]
   * (a queue that doubles the RTT is load, not an outage); `maxMs` while there is no RTT yet or
   * when adaptation is off (minMs undefined).
   */
  probeTimeoutMs (minMs: number | undefined, maxMs: number): number {
    if (minMs === undefined || this.#rttMs === undefined) return maxMs
    const adaptive = Math.max(this.#rttMs + 4 * this.#rttVarMs, 2 * this.#rttMs)
    return Math.min(maxMs, Math.max(minMs, Math.ceil(adaptive)))
  }

  #record (lost: boolean): void {
    this.#window.push(lost)
    if (this.#window.length > this.#p.window) this.#window.shift()
  }

  #go (to: HealthStateName, reason: TransitionReason, now: number, detail: string): Transition {
    const from = this.#state
    this.#state = to
    this.#since = now
    this.#misses = 0
    this.#answers = 0
    return { from, to, reason, at: now, detail }
  }
}
