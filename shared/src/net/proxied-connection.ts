/**
 * One proxied connection's lifecycle, written once for every mode: it owns the client socket and
 * its 'error'/'close' handlers (attached synchronously at accept), one deadline, an `AbortSignal`
 * (aborted when the connection is refused, reset or gone: a dial in progress is abandoned),
 * `refuse()`, `relayTo()` and exactly one `done()`. A mode is a thin strategy around it: it
 * parses, decides, dials and calls this object (concentrator/src/modes/).
 *
 * - `refuse({ reply, close, count })`: count the refusal (`connectionsRejected{mode,reason}`),
 *   then `linger` (reply and FIN delivered, what the client still sends drained, destroyed within
 *   `lingerMs`), `fin` (a deliberate close: FIN, no reply) or `reset` (RST).
 * - `relayTo(upstream, …)`: the shared relay with the data-plane metric hooks, the session table
 *   entry, relay-end accounting (`countRelayEnd`) and the close log; `done()` when it settles.
 * - `abort(reason)`: a drain or shedding; the relay ends with that reason, a handshake is destroyed.
 * - `countAs(mode)`: from then on outcomes are counted under another mode (the CPE's Convert → SOCKS5
 *   fallback runs inside the same lifecycle and is counted as SOCKS5).
 *
 * The CPE relays to an upstream it opened itself: `relayTo` takes the upstream's MPTCP state, the
 * bytes already sent inside the handshake (counted up), the accept time and a `RelayObserver` (its
 * per-path accounting: a sample on FIN and before an abort, the end before the relay-end count).
 *
 * Error discipline: nothing from the network throws out of a handler; every path ends in `done()`,
 * which clears the deadline, aborts the signal, removes the session entry and calls `onDone` once.
 */
import type net from 'node:net'
import type { Logger } from '../log.ts'
import type { RateLimitedLog } from '../rate-limited-log.ts'
import type { Mode, RejectReason } from '../metrics/labels.ts'
import type { CommonMetrics } from '../metrics/common-metrics.ts'
import { countRelayEnd, relayMetricHooks, type RelayEndSink, type RelayMetricSink } from '../metrics/relay-hooks.ts'
import type { SessionEntry } from '../mgmt/session-table.ts'
import { relayKeepalive } from '../config/common-schema.ts'
import { errnoOf } from './connect-error.ts'
import { formatRemote } from './endpoint.ts'
import { relay, type Relay, type RelayEndReason, type RelayResult } from './relay.ts'
import { disarmResetOnClose } from './sockopt.ts'
import type { DataPlane } from './data-plane.ts'

/** After a refusal with `close: 'linger'`, the socket is destroyed if the peer has not closed within this. */
export const REFUSAL_LINGER_MS = 1000

export type ProxiedMetrics = RelayMetricSink & RelayEndSink & Pick<CommonMetrics, 'connectionsRejected'>

/** The fields of a session entry the mode supplies; the connection adds id, src, times, counters. */
export type SessionFields<E extends SessionEntry> = Omit<E, 'id' | 'src' | 'started' | 'mptcp' | 'progress' | 'buffered' | 'abort'>

export interface ProxiedConnectionOptions<E extends SessionEntry> {
  readonly id: number
  readonly mode: Mode
  /** The client leg is MPTCP (not a TCP fallback). */
  readonly mptcp: boolean
  readonly log: Logger
  /** Called exactly once when the connection is gone (caps slot, gauges, live set). */
  readonly onDone: () => void
  readonly metrics: ProxiedMetrics
  readonly sessions: { add: (entry: E) => void, delete: (id: number) => void }
  /** Rate limit of the debug logs of socket errors; absent: every one is logged. */
  readonly errorLog?: RateLimitedLog
  /** Who moves the relayed bytes (docs/data-plane.md); absent: the stream relay. */
  readonly dataPlane?: DataPlane | undefined
}

/** The limits a relay reads (both daemons' `limits` sections have them). */
export interface RelayLimits {
  idleTimeoutMs: number
  halfCloseTimeoutMs: number
  keepaliveIdleMs: number
  keepaliveIntervalMs: number
  keepaliveCount: number
  userTimeoutMs: number
}

/** Hooks around one relay (the CPE's per-path accounting, cpe/src/modes/cpe-connection.ts). */
export interface RelayObserver {
  /** On a FIN either way and before an abort, while the upstream fd is open. */
  readonly sample: () => void
  /** The relay has settled: before the relay-end accounting and `done()`. */
  readonly end: () => void
}

export interface RelayTo<E extends SessionEntry> {
  readonly limits: RelayLimits
  readonly session: SessionFields<E>
  /** Bytes read from the client before the relay that belong to the server. */
  readonly earlyData?: Uint8Array
  /** The client's FIN was read before the relay started. */
  readonly clientEnded?: boolean
  /** Client bytes already sent upstream inside the handshake: added to the up count (session, relay end). */
  readonly sentInHandshake?: number
  /** The session's start (epoch ms); absent: now. */
  readonly started?: number
  /** The session's MPTCP flag; absent: the connection's `mptcp` (the client leg). */
  readonly mptcp?: boolean
  readonly observer?: RelayObserver
}

export interface Refusal {
  /** Bytes to answer with (a SOCKS5 reply, a Convert Error) before the FIN; `linger` only. */
  readonly reply?: Buffer
  readonly close: 'linger' | 'fin' | 'reset'
  /** Counted as `connectionsRejected{mode,reason}`; absent: counted by the caller (an upstream failure). */
  readonly count?: RejectReason
  /** Why, for the debug log. */
  readonly why: string
}

export class ProxiedConnection<E extends SessionEntry = SessionEntry> {
  readonly socket: net.Socket
  readonly #o: ProxiedConnectionOptions<E>
  readonly #abort = new AbortController()
  #mode: Mode
  #timer: NodeJS.Timeout | undefined
  #relay: Relay | undefined
  #observer: RelayObserver | undefined
  #sentInHandshake = 0
  #refused = false
  #finished = false

  constructor (socket: net.Socket, options: ProxiedConnectionOptions<E>) {
    this.socket = socket
    this.#o = options
    this.#mode = options.mode
    socket.on('error', this.#onError)
    socket.on('close', this.#onClose)
  }

  get log (): Logger { return this.#o.log }
  get id (): number { return this.#o.id }
  /** Aborted once the connection is refused or gone. */
  get signal (): AbortSignal { return this.#abort.signal }
  get relaying (): boolean { return this.#relay !== undefined }
  /** Refused or gone: a late result (policy, dial) must be dropped. */
  get settled (): boolean { return this.#refused || this.#finished }

  /** Count what follows (refusals, the relay end) under `mode`. */
  countAs (mode: Mode): void { this.#mode = mode }

  /** The one deadline (handshake, connect): replaces any earlier one; cleared by refuse, relay and done. */
  deadline (ms: number, onExpire: () => void): void {
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => { this.#timer = undefined; onExpire() }, ms)
  }

  clearDeadline (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /**
   * A client FIN before the relay (the listeners run allowHalfOpen for the relay's sake) closes the
   * connection with a FIN of our own — unless `kept()` says the bytes so far are kept for the relay
   * (a request with early data read: EarlyData carries the FIN on).
   */
  closeOnEarlyEnd (kept: () => boolean): void {
    this.socket.on('end', () => {
      if (this.#relay !== undefined || kept()) return
      disarmResetOnClose(this.socket) // the client's own close: answered with FIN
      this.socket.destroy()
    })
  }

  /** Drain or shedding: a relay ends with `reason`, a handshake is destroyed. */
  abort (reason: RelayEndReason): void {
    if (this.#relay === undefined) { this.socket.destroy(); return }
    this.#observer?.sample()
    this.#relay.abort(reason)
  }

  /** Refuse once (later calls are ignored and return false). */
  refuse (r: Refusal): boolean {
    if (this.settled) return false
    this.#refused = true
    this.#abort.abort() // a dial in progress is abandoned
    this.clearDeadline()
    if (r.count !== undefined) this.#o.metrics.connectionsRejected.inc({ mode: this.#mode, reason: r.count })
    this.#o.log.debug({ reason: r.count ?? 'upstream', why: r.why }, 'refused')
    const s = this.socket
    if (r.close === 'reset') {
      if (s.destroyed) this.done()
      else try { s.resetAndDestroy() } catch { s.destroy() }
      return true
    }
    if (r.close === 'fin') {
      disarmResetOnClose(s) // a deliberate close: FIN, not a reset
      s.destroy()
    } else {
      this.#linger(r.reply)
    }
    return true
  }

  /** Not a refusal (a Convert Info answered): write `reply`, FIN, linger as a refusal would. */
  answerAndClose (reply: Buffer): void {
    if (this.settled) return
    this.#refused = true
    this.#abort.abort()
    this.#linger(reply)
  }

  /** Write `reply` (if any) and our FIN, drain what the client still sends, destroy within the linger. */
  #linger (reply: Buffer | undefined): void {
    const s = this.socket
    disarmResetOnClose(s) // the reply and our FIN are delivered, not discarded by a reset
    this.deadline(REFUSAL_LINGER_MS, () => { s.destroy() })
    s.resume()
    if (reply !== undefined && reply.length > 0) s.end(reply)
    else s.end()
  }

  /** Relay to `upstream` until both legs are closed; then count, log and `done()`. */
  relayTo (upstream: net.Socket, r: RelayTo<E>): Relay {
    this.clearDeadline()
    const { limits, observer } = r
    const active = relay(this.socket, upstream, {
      ...relayMetricHooks(this.#o.metrics),
      idleTimeoutMs: limits.idleTimeoutMs,
      halfCloseTimeoutMs: limits.halfCloseTimeoutMs,
      keepalive: relayKeepalive(limits),
      dataPlane: this.#o.dataPlane,
      ...(r.earlyData !== undefined && r.earlyData.length > 0 ? { earlyData: r.earlyData } : {}),
      ...(r.clientEnded === true ? { clientEnded: true } : {}),
      ...(observer === undefined ? {} : { onFin: observer.sample })
    })
    this.#relay = active
    this.#observer = observer
    const sent = r.sentInHandshake ?? 0
    this.#sentInHandshake = sent
    const entry = {
      ...r.session,
      id: this.#o.id,
      src: formatRemote(this.socket),
      started: r.started ?? Date.now(),
      mptcp: r.mptcp ?? this.#o.mptcp,
      progress: sent === 0 ? active.progress : () => { const p = active.progress(); return { up: p.up + sent, down: p.down } },
      buffered: active.buffered,
      abort: active.abort
    } as unknown as E
    this.#o.sessions.add(entry)
    active.done.then((res) => { this.#onRelayEnd(res) }, () => {}) // never rejects
    return active
  }

  /** The connection is gone: exactly once. */
  done (): void {
    if (this.#finished) return
    this.#finished = true
    this.clearDeadline()
    this.#abort.abort()
    this.#o.sessions.delete(this.#o.id)
    this.#o.onDone()
  }

  readonly #onError = (err: Error): void => {
    if (this.#relay !== undefined) return // the relay records it
    const { errorLog, log } = this.#o
    if (errorLog === undefined || errorLog.allow(log)) log.debug({ err: { code: errnoOf(err), message: err.message } }, 'client socket error')
  }

  readonly #onClose = (): void => {
    if (this.#relay === undefined) this.done()
  }

  #onRelayEnd (res: RelayResult): void {
    const { metrics, log, errorLog } = this.#o
    this.#observer?.end()
    const bytesUp = res.bytesUp + this.#sentInHandshake
    countRelayEnd(metrics, this.#mode, { reason: res.reason, durationMs: res.durationMs, bytesUp, bytesDown: res.bytesDown })
    const fields = { reason: res.reason, bytesUp, bytesDown: res.bytesDown, ms: res.durationMs }
    if (res.error !== undefined && (errorLog === undefined || errorLog.allow(log))) {
      log.debug({ ...fields, err: { code: errnoOf(res.error), message: res.error.message } }, 'close')
    } else {
      log.debug(fields, 'close')
    }
    this.done()
  }
}
