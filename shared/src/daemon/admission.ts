/**
 * Admission and drain, one component for every accept path of both daemons (CPE: socks5, convert,
 * transparent; concentrator: SOCKS5, Convert listeners and transparent mode).
 *
 * - `admit(key)`: not while draining, not under overload (docs/overload.md: `refuse_new`, or
 *   `stop_accept_busiest` for a source holding many connections), then a caps slot
 *   (`ConnectionCaps`, per source and global). An admitted connection gets an id, its logger and a
 *   `Ticket`; the ticket's `attach(conn)` tracks the connection object for drain and its `release()`
 *   (from the connection's one `done`) frees the slot and untracks it. Refusals are reasons, never
 *   throws: what goes on the wire (SOCKS5 REP, Convert Error, reset) is the mode's business.
 * - `stopAdmitting()`: synchronous, so readiness is false from the moment a stop begins.
 * - `drain(timeoutMs)`: wait for the tracked connections to finish; at the deadline abort the rest
 *   and wait ≤ 1 s for their ends. A connection for which `abortAtDrainStart` says yes (the
 *   concentrator's SOCKS5/Convert handshakes: nothing to finish) is aborted at once.
 *
 * One instance per daemon, no module state.
 */
import type { Logger } from 'pino'
import type { CapRefusal, ConnectionCaps } from '../net/connection-caps.ts'
import { connLogger, type ConnLogFields } from '../log.ts'

/** What drain needs of a connection object. */
export interface Drainable {
  abort: (reason: 'drain') => void
}

/** Why a connection was not admitted. `draining`: a stop has begun. */
export type AdmissionRefusal = 'draining' | 'overload' | CapRefusal

/**
 * The `hybrid_connections_rejected_total{reason}` label of a refusal: one refused while draining has
 * always been counted as `max_conns` (no label value of its own).
 */
export function rejectedLabel (reason: AdmissionRefusal): Exclude<AdmissionRefusal, 'draining'> {
  return reason === 'draining' ? 'max_conns' : reason
}

export interface AdmitOptions {
  /** Acquire the slot outside the unauthenticated budget (a trusted or already authenticated source). */
  readonly authenticated?: boolean
  /**
   * Under overload, refuse (default) or admit and report `overloaded: true` so that the mode can
   * answer on the wire after its request (the concentrator's SOCKS5 sends REP 01 after the request).
   */
  readonly refuseOverloaded?: boolean
  /** Logger of the connection: `connLogger(log, id, fields)`. */
  readonly log?: { readonly base: Logger, readonly fields?: ConnLogFields }
}

export interface Ticket<C extends Drainable> {
  readonly id: number
  /** Overloaded at admission (only with `refuseOverloaded: false`). */
  readonly overloaded: boolean
  /** The connection's logger (the base logger with `connId` and the fields); undefined without `log`. */
  readonly log: Logger | undefined
  /** Track the connection object for drain. */
  attach: (conn: C) => void
  /** Leave the unauthenticated budget (idempotent). */
  authenticated: () => void
  /** Free the slot and stop tracking (idempotent): the connection's one `done`. */
  release: () => void
}

export type Admitted<C extends Drainable> = { ok: true, ticket: Ticket<C> } | { ok: false, reason: AdmissionRefusal }

export interface AdmissionDeps<C extends Drainable> {
  readonly overload: { admit: (held: number) => boolean }
  /** The caps in force (replaced on reload); undefined before start: nothing is admitted. */
  readonly caps: () => ConnectionCaps | undefined
  /** Drain log (deadline passed). */
  readonly log?: Logger
  /** Connections to abort as soon as drain begins (default: none). */
  readonly abortAtDrainStart?: (conn: C) => boolean
}

/** The admitting half, for an accept path that does not drain itself (transparent mode). */
export interface Admitter<C extends Drainable> {
  readonly admitting: boolean
  admit: (key: string, options?: AdmitOptions) => Admitted<C>
}

export class Admission<C extends Drainable = Drainable> implements Admitter<C> {
  readonly #deps: AdmissionDeps<C>
  readonly #live = new Set<C>()
  #nextId = 0
  #admitting = true
  #onIdle: (() => void) | undefined

  constructor (deps: AdmissionDeps<C>) {
    this.#deps = deps
  }

  get admitting (): boolean { return this.#admitting }
  /** Tracked connections. */
  get size (): number { return this.#live.size }
  connections (): IterableIterator<C> { return this.#live.values() }

  admit (key: string, options: AdmitOptions = {}): Admitted<C> {
    if (!this.#admitting) return { ok: false, reason: 'draining' }
    const caps = this.#deps.caps()
    const overloaded = !this.#deps.overload.admit(caps?.countFor(key) ?? 0)
    if (overloaded && options.refuseOverloaded !== false) return { ok: false, reason: 'overload' }
    const slot = caps?.tryAcquire(key, { authenticated: options.authenticated ?? false }) ?? { ok: false as const, reason: 'max_conns' as const }
    if (!slot.ok) return slot
    const id = ++this.#nextId
    let conn: C | undefined
    let released = false
    const ticket: Ticket<C> = {
      id,
      overloaded,
      log: options.log === undefined ? undefined : connLogger(options.log.base, id, options.log.fields),
      attach: (c) => {
        if (released) return
        conn = c
        this.#live.add(c)
      },
      authenticated: slot.authenticated,
      release: () => {
        if (released) return
        released = true
        slot.release()
        if (conn !== undefined) this.#live.delete(conn)
        if (this.#live.size === 0) this.#onIdle?.()
      }
    }
    return { ok: true, ticket }
  }

  /** Admit nothing from now on (synchronous). */
  stopAdmitting (): void { this.#admitting = false }

  /** Stop admitting, wait ≤ timeoutMs for the tracked connections, abort the rest, wait ≤ 1 s for their ends. */
  async drain (timeoutMs: number): Promise<void> {
    this.#admitting = false
    const early = this.#deps.abortAtDrainStart
    if (early !== undefined) for (const c of [...this.#live]) if (early(c)) c.abort('drain')
    await this.#waitIdle(timeoutMs)
    if (this.#live.size === 0) return
    this.#deps.log?.info({ remaining: this.#live.size }, 'drain deadline passed; closing the remaining connections')
    for (const c of [...this.#live]) c.abort('drain')
    await this.#waitIdle(1000)
  }

  async #waitIdle (ms: number): Promise<void> {
    if (this.#live.size === 0) return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms)
      this.#onIdle = () => { clearTimeout(timer); resolve() }
    })
    this.#onIdle = undefined
  }
}
