/**
 * SOCKS5 server strategy: one `Socks5Connection` per accepted socket. It feeds the pure
 * `Socks5ServerParser`, authorises (trusted source prefix or RFC 1929 with back-off), vets the
 * destination with the policy, connects to the vetted literal through the one egress dialer,
 * answers, and relays. The lifecycle — socket handlers, the handshake deadline, refusals, the
 * relay, the session entry and the single `done()` — is the shared `ProxiedConnection`
 * (shared/src/net/proxied-connection.ts).
 */
import type net from 'node:net'
import type { Logger } from '../../../shared/src/log.ts'
import { Socks5ServerParser } from '../../../shared/src/codec/socks5-server-parser.ts'
import type { Socks5ServerEvent } from '../../../shared/src/codec/socks5-server-parser.ts'
import { encodeReply, errnoToSocks5Reply, Socks5Method, Socks5Reply } from '../../../shared/src/codec/socks5.ts'
import type { Socks5Address } from '../../../shared/src/codec/socks5.ts'
import type { ErrorCode } from '../../../shared/src/errors.ts'
import type { RejectReason } from '../../../shared/src/metrics/labels.ts'
import { formatEndpoint, formatHostPort } from '../../../shared/src/net/endpoint.ts'
import type { RelayEndReason } from '../../../shared/src/net/relay.ts'
import { ProxiedConnection } from '../../../shared/src/net/proxied-connection.ts'
import type { DataPlane } from '../../../shared/src/net/data-plane.ts'
import { connectUpstream } from '../egress/connect-upstream.ts'
import type { UpstreamResult } from '../egress/connect-upstream.ts'
import type { ConcentratorMetrics } from '../metrics.ts'
import { repLabel } from '../metrics.ts'
import type { PolicyDecision } from '../policy/destination-policy.ts'
import type { Runtime } from '../runtime.ts'
import type { SessionEntry, SessionTable } from '../mgmt/session-table.ts'
import type { RateLimitedLog } from '../../../shared/src/rate-limited-log.ts'
import { EarlyData } from './early-data.ts'
import type { EarlyBytes } from './early-data.ts'

/** Handshake deadline of a connection accepted under overload only to be answered REP 01 (docs/overload.md). */
export const OVERLOAD_HANDSHAKE_MS = 1000

export interface ConnectionDeps {
  readonly metrics: ConcentratorMetrics
  readonly sessions: SessionTable
  readonly errorLog: RateLimitedLog
  readonly runtime: () => Runtime
  /** Who moves the relayed bytes (docs/data-plane.md); absent: the stream relay. */
  readonly dataPlane?: DataPlane
}

export interface ConnectionInfo {
  readonly id: number
  /** Canonical source address (caps, back-off, trusted prefixes). */
  readonly source: string
  readonly mptcp: boolean
  readonly accepted: number
  /** Overload protection refuses it (docs/overload.md): SOCKS5 answers its request with REP 01. */
  readonly overloaded?: boolean
  /** The connection has authenticated and its request was accepted: its caps slot leaves the unauthenticated budget. */
  readonly authenticated: () => void
  readonly log: Logger
  /** Called exactly once when the connection is gone (caps slot, gauges, live set). */
  readonly onDone: () => void
}

function rejectReasonOf (code: ErrorCode): RejectReason {
  switch (code) {
    case 'HYBRID_ERR_SOCKS5_AUTH_FAILED': case 'HYBRID_ERR_SOCKS5_NO_ACCEPTABLE_METHOD': return 'auth_failed'
    case 'HYBRID_ERR_SOCKS5_COMMAND_NOT_SUPPORTED': return 'unsupported_cmd'
    default: return 'malformed'
  }
}

function boundAddress (socket: net.Socket): Socks5Address {
  const host = socket.localAddress ?? '0.0.0.0'
  return { type: host.includes(':') ? 'ipv6' : 'ipv4', host, port: socket.localPort ?? 0 }
}

/** The shared lifecycle object for a concentrator connection in `mode`. */
export function concentratorConnection (socket: net.Socket, mode: SessionEntry['mode'], info: ConnectionInfo,
  deps: ConnectionDeps): ProxiedConnection<SessionEntry> {
  return new ProxiedConnection<SessionEntry>(socket, {
    id: info.id,
    mode,
    mptcp: info.mptcp,
    log: info.log,
    onDone: info.onDone,
    metrics: deps.metrics,
    sessions: deps.sessions,
    errorLog: deps.errorLog,
    dataPlane: deps.dataPlane
  })
}

export class Socks5Connection {
  readonly #conn: ProxiedConnection<SessionEntry>
  readonly #socket: net.Socket
  readonly #info: ConnectionInfo
  readonly #deps: ConnectionDeps
  readonly #runtime: Runtime
  readonly #parser: Socks5ServerParser
  /** Between the request and the upstream connect: the early bytes read meanwhile. */
  #early: EarlyData | undefined
  #dst = ''
  /**
   * Replies (method selection, RFC 1929 status) answered within the data chunk being handled: written
   * once the chunk is done, or, when that chunk also held the request (a pipelined client), together
   * with the CONNECT reply or the refusal, in one write: one segment instead of 2 B + 10 B.
   */
  #held: Buffer[] | undefined

  constructor (socket: net.Socket, info: ConnectionInfo, deps: ConnectionDeps) {
    this.#conn = concentratorConnection(socket, 'socks5', info, deps)
    this.#socket = socket
    this.#info = info
    this.#deps = deps
    this.#runtime = deps.runtime()
    this.#conn.closeOnEarlyEnd(() => this.#early !== undefined)
    const { trusted, verifier, limits } = this.#runtime
    this.#parser = new Socks5ServerParser({ allowNoAuth: trusted.has(info.source), allowUserPass: verifier !== undefined })
    // Refused for overload: its answer comes after the request; it gets a short deadline to send one.
    const deadline = info.overloaded === true ? Math.min(limits.handshakeTimeoutMs, OVERLOAD_HANDSHAKE_MS) : limits.handshakeTimeoutMs
    this.#conn.deadline(deadline, () => {
      // a deliberate close: FIN, as documented (docs/cpe.md counts it `closed`)
      this.#conn.refuse({ close: 'fin', count: 'handshake_timeout', why: 'handshake deadline passed' })
    })
    socket.on('data', this.#onData)
    info.log.debug('open')
  }

  /** Shutdown: a relay ends with reason 'drain'; a handshake in progress is destroyed. */
  abort (reason: RelayEndReason): void { this.#conn.abort(reason) }

  get relaying (): boolean { return this.#conn.relaying }

  readonly #onData = (chunk: Buffer): void => {
    this.#held = []
    for (const ev of this.#parser.feed(chunk)) this.#handle(ev)
    // No request in this chunk: the client waits for these replies before it sends more.
    if (this.#early === undefined && !this.#conn.settled) this.#flushHeld()
  }

  /** Write `reply`, after the held replies (if any) in the same write. */
  #answer (reply: Buffer): void {
    if (this.#held === undefined) { this.#socket.write(reply); return }
    this.#held.push(reply)
  }

  /** The held replies followed by `last`, as one buffer (empty when there is nothing). */
  #takeHeld (last: Buffer = Buffer.alloc(0)): Buffer {
    const held = this.#held ?? []
    this.#held = undefined
    return held.length === 0 ? last : Buffer.concat([...held, last])
  }

  #flushHeld (): void {
    const bytes = this.#takeHeld()
    if (bytes.length > 0) this.#socket.write(bytes)
  }

  #handle (ev: Socks5ServerEvent): void {
    switch (ev.type) {
      case 'method-selected':
        if (ev.method === Socks5Method.NoAuth) this.#deps.metrics.authAttempts.inc({ method: 'none', result: 'success' })
        this.#answer(ev.reply)
        return
      case 'auth': this.#authenticate(ev.username, ev.password); return
      case 'auth-accepted': this.#answer(ev.reply); return
      case 'request': this.#onRequest(ev.address, ev.earlyData); return
      case 'data': return // not reached: reading stops at the request
      case 'failure': this.#fail(ev.reply, rejectReasonOf(ev.code), ev.code === 'HYBRID_ERR_SOCKS5_BAD_VERSION' ? undefined : ev.detail)
    }
  }

  #authenticate (username: Buffer, password: Buffer): void {
    this.#socket.pause()
    const { backoff, verifier } = this.#runtime
    const source = this.#info.source
    let ok = false
    if (backoff.throttledFor(source) > 0) {
      this.#deps.metrics.authAttempts.inc({ method: 'userpass', result: 'throttled' })
    } else {
      ok = verifier?.verify(username, password) ?? false
      this.#deps.metrics.authAttempts.inc({ method: 'userpass', result: ok ? 'success' : 'failure' })
      if (ok) backoff.recordSuccess(source)
      else if (backoff.recordFailure(source) > 0) this.#deps.metrics.sourcesThrottled.set(backoff.throttledCount())
    }
    for (const ev of this.#parser.authResult(ok)) this.#handle(ev)
    if (this.#parser.state === 'request') this.#socket.resume()
  }

  #onRequest (address: Socks5Address, earlyData: Buffer): void {
    this.#socket.off('data', this.#onData)
    this.#conn.clearDeadline()
    if (this.#info.overloaded === true) {
      this.#fail(encodeReply(Socks5Reply.GeneralFailure), 'overload', 'overloaded: new connections are refused (docs/overload.md)')
      return
    }
    this.#dst = formatHostPort(address.host, address.port)
    const cap = this.#runtime.limits.earlyDataMaxBytes
    const early = new EarlyData(this.#socket, earlyData, cap, (bytes) => {
      this.#fail(encodeReply(Socks5Reply.GeneralFailure), 'malformed', `early data over ${cap} bytes (${bytes} before the upstream connected)`)
    })
    if (this.#conn.settled) return
    this.#early = early
    this.#connect(address).catch((err: unknown) => {
      this.#info.log.error({ err }, 'connect path failed')
      this.#socket.destroy()
    })
  }

  async #connect (address: Socks5Address): Promise<void> {
    const { policy, limits } = this.#runtime
    const decision: PolicyDecision = await policy.check(address.host, address.port, this.#info.source)
    if (this.#conn.settled) return
    if (!decision.allowed) {
      const { count } = decision
      if (count.kind === 'upstream') this.#deps.metrics.upstreamConnectFailures.inc({ reason: count.reason })
      this.#fail(encodeReply(decision.socks5Reply), count.kind === 'rejected' ? count.reason : undefined, `${decision.reason}: ${decision.detail}`)
      return
    }
    this.#info.authenticated() // authorised and the request accepted: out of the unauthenticated budget
    const started = performance.now()
    const result = await connectUpstream(decision.addresses, {
      port: decision.port, timeoutMs: limits.connectTimeoutMs, highWaterMark: limits.highWaterMark, signal: this.#conn.signal
    })
    if (this.#conn.settled) {
      if (result.ok) result.socket.destroy()
      return
    }
    this.#onUpstream(result, (performance.now() - started) / 1000)
  }

  #onUpstream (result: UpstreamResult, seconds: number): void {
    const m = this.#deps.metrics
    if (!result.ok) {
      m.upstreamConnectFailures.inc({ reason: result.reason })
      this.#fail(encodeReply(errnoToSocks5Reply(result.errno)), undefined, `upstream connect failed: ${result.errno}`)
      return
    }
    m.upstreamConnectDuration.observe({ mode: 'socks5' }, seconds)
    const early = this.#takeEarly()
    const upstream = result.socket
    this.#socket.write(this.#takeHeld(encodeReply(Socks5Reply.Succeeded, boundAddress(upstream))))
    m.socks5Replies.inc({ rep: '0' })
    m.handshakeDuration.observe({ mode: 'socks5' }, (Date.now() - this.#info.accepted) / 1000)
    this.#conn.relayTo(upstream, {
      limits: this.#runtime.limits,
      session: { mode: 'socks5', dst: this.#dst, upstream: formatEndpoint(result.endpoint) },
      earlyData: early.later.length === 0 ? early.first : Buffer.concat([early.first, early.later]),
      clientEnded: early.ended
    })
  }

  #takeEarly (): EarlyBytes {
    const early = this.#early?.take() ?? { first: Buffer.alloc(0), later: Buffer.alloc(0), ended: false }
    this.#early = undefined
    return early
  }

  /** Answer (if there is an answer), count, flush and close within the refusal linger. */
  #fail (reply: Buffer, reason: RejectReason | undefined, why: string | undefined): void {
    if (this.#conn.settled) return
    this.#takeEarly()
    this.#socket.off('data', this.#onData)
    if (reply.length >= 10 && reply[0] === 5) this.#deps.metrics.socks5Replies.inc({ rep: repLabel(reply[1] ?? 1) })
    const bytes = this.#takeHeld(reply)
    // No reply (a client that does not speak SOCKS5): FIN at once, nothing to linger for.
    this.#conn.refuse({ reply: bytes, close: bytes.length > 0 ? 'linger' : 'fin', ...(reason === undefined ? {} : { count: reason }), why: why ?? '' })
  }
}
