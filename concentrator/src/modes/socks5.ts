/**
 * SOCKS5 server glue: one `Socks5Connection` per accepted socket. It feeds the pure
 * `Socks5ServerParser`, enforces the handshake deadline, authorises (trusted source prefix or
 * RFC 1929 with back-off), vets the destination with the policy, connects to the vetted literal,
 * answers, and hands both sockets to the shared `relay()`.
 *
 * Error discipline: 'error' and 'close' handlers are attached in the constructor, synchronously at
 * accept; nothing from the network throws out of a handler; every path ends in the single
 * `#done()` that clears timers, releases the caps slot, updates gauges and the session table.
 */
import type net from 'node:net'
import type { Logger } from '../../../shared/src/log.ts'
import { Socks5ServerParser } from '../../../shared/src/codec/socks5-server-parser.ts'
import type { Socks5ServerEvent } from '../../../shared/src/codec/socks5-server-parser.ts'
import { encodeReply, errnoToSocks5Reply, Socks5Method, Socks5Reply } from '../../../shared/src/codec/socks5.ts'
import type { Socks5Address } from '../../../shared/src/codec/socks5.ts'
import type { ErrorCode } from '../../../shared/src/errors.ts'
import type { RejectReason } from '../../../shared/src/metrics/labels.ts'
import { relay } from '../../../shared/src/net/relay.ts'
import { errnoOf } from '../../../shared/src/net/connect-error.ts'
import { formatEndpoint, formatHostPort, formatRemote } from '../../../shared/src/net/endpoint.ts'
import { disarmResetOnClose } from '../../../shared/src/net/sockopt.ts'
import { countRelayEnd, relayMetricHooks } from '../../../shared/src/metrics/relay-hooks.ts'
import { relayKeepalive } from '../../../shared/src/config/common-schema.ts'
import type { Relay, RelayEndReason, RelayResult } from '../../../shared/src/net/relay.ts'
import { connectUpstream } from '../egress/connect-upstream.ts'
import type { UpstreamResult } from '../egress/connect-upstream.ts'
import type { ConcentratorMetrics } from '../metrics.ts'
import { repLabel } from '../metrics.ts'
import type { PolicyDecision } from '../policy/destination-policy.ts'
import type { Runtime } from '../runtime.ts'
import type { SessionTable } from '../mgmt/session-table.ts'
import type { RateLimitedLog } from '../../../shared/src/rate-limited-log.ts'
import { EarlyData } from './early-data.ts'
import type { EarlyBytes } from './early-data.ts'

/** After a failure reply, the socket is destroyed if the peer has not closed within this. */
const FAILURE_LINGER_MS = 1000
/** Handshake deadline of a connection accepted under overload only to be answered REP 01 (docs/overload.md). */
export const OVERLOAD_HANDSHAKE_MS = 1000

export interface ConnectionDeps {
  readonly metrics: ConcentratorMetrics
  readonly sessions: SessionTable
  readonly errorLog: RateLimitedLog
  readonly runtime: () => Runtime
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

export class Socks5Connection {
  readonly #socket: net.Socket
  readonly #info: ConnectionInfo
  readonly #deps: ConnectionDeps
  readonly #runtime: Runtime
  readonly #parser: Socks5ServerParser
  readonly #abort = new AbortController()
  #timer: NodeJS.Timeout | undefined
  #relay: Relay | undefined
  /** Between the request and the upstream connect: the early bytes read meanwhile. */
  #early: EarlyData | undefined
  #finished = false
  #failed = false
  #dst = ''

  constructor (socket: net.Socket, info: ConnectionInfo, deps: ConnectionDeps) {
    this.#socket = socket
    this.#info = info
    this.#deps = deps
    this.#runtime = deps.runtime()
    socket.on('error', this.#onError)
    socket.on('close', this.#onClose)
    socket.on('end', this.#onEnd)
    const { trusted, verifier, limits } = this.#runtime
    this.#parser = new Socks5ServerParser({ allowNoAuth: trusted.has(info.source), allowUserPass: verifier !== undefined })
    // Refused for overload: its answer comes after the request; it gets a short deadline to send one.
    const deadline = info.overloaded === true ? Math.min(limits.handshakeTimeoutMs, OVERLOAD_HANDSHAKE_MS) : limits.handshakeTimeoutMs
    this.#timer = setTimeout(this.#onHandshakeTimeout, deadline)
    socket.on('data', this.#onData)
    info.log.debug('open')
  }

  /** Shutdown: a relay ends with reason 'drain'; a handshake in progress is destroyed. */
  abort (reason: RelayEndReason): void {
    if (this.#relay !== undefined) this.#relay.abort(reason)
    else this.#socket.destroy()
  }

  get relaying (): boolean { return this.#relay !== undefined }

  readonly #onError = (err: Error): void => {
    if (this.#relay !== undefined) return // the relay records it
    if (this.#deps.errorLog.allow(this.#info.log)) this.#info.log.debug({ err: { code: errnoOf(err), message: err.message } }, 'client socket error')
  }

  readonly #onClose = (): void => {
    if (this.#relay === undefined) this.#done()
  }

  /**
   * FIN before the request (the listener runs allowHalfOpen for the relay's sake): nothing to wait for. After
   * it, EarlyData keeps it for the relay.
   */
  readonly #onEnd = (): void => {
    if (this.#relay !== undefined || this.#early !== undefined) return
    disarmResetOnClose(this.#socket) // the client's own close: answered with FIN
    this.#socket.destroy()
  }

  readonly #onHandshakeTimeout = (): void => {
    this.#timer = undefined
    this.#reject('handshake_timeout')
    this.#info.log.debug('handshake deadline passed')
    disarmResetOnClose(this.#socket) // a deliberate close: FIN, as documented (docs/cpe.md counts it `closed`)
    this.#socket.destroy()
  }

  readonly #onData = (chunk: Buffer): void => {
    for (const ev of this.#parser.feed(chunk)) this.#handle(ev)
  }

  #handle (ev: Socks5ServerEvent): void {
    switch (ev.type) {
      case 'method-selected':
        if (ev.method === Socks5Method.NoAuth) this.#deps.metrics.authAttempts.inc({ method: 'none', result: 'success' })
        this.#socket.write(ev.reply)
        return
      case 'auth': this.#authenticate(ev.username, ev.password); return
      case 'auth-accepted': this.#socket.write(ev.reply); return
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
    clearTimeout(this.#timer)
    this.#timer = undefined
    if (this.#info.overloaded === true) {
      this.#fail(encodeReply(Socks5Reply.GeneralFailure), 'overload', 'overloaded: new connections are refused (docs/overload.md)')
      return
    }
    this.#dst = formatHostPort(address.host, address.port)
    const cap = this.#runtime.limits.earlyDataMaxBytes
    const early = new EarlyData(this.#socket, earlyData, cap, (bytes) => {
      this.#fail(encodeReply(Socks5Reply.GeneralFailure), 'malformed', `early data over ${cap} bytes (${bytes} before the upstream connected)`)
    })
    if (this.#failed) return
    this.#early = early
    this.#connect(address).catch((err: unknown) => {
      this.#info.log.error({ err }, 'connect path failed')
      this.#socket.destroy()
    })
  }

  async #connect (address: Socks5Address): Promise<void> {
    const { policy, limits } = this.#runtime
    const decision: PolicyDecision = await policy.check(address.host, address.port, this.#info.source)
    if (this.#finished || this.#failed) return
    if (!decision.allowed) {
      const { count } = decision
      if (count.kind === 'upstream') this.#deps.metrics.upstreamConnectFailures.inc({ reason: count.reason })
      this.#fail(encodeReply(decision.socks5Reply), count.kind === 'rejected' ? count.reason : undefined, `${decision.reason}: ${decision.detail}`)
      return
    }
    this.#info.authenticated() // authorised and the request accepted: out of the unauthenticated budget
    const started = performance.now()
    const result = await connectUpstream(decision.addresses, {
      port: decision.port, timeoutMs: limits.connectTimeoutMs, highWaterMark: limits.highWaterMark, signal: this.#abort.signal
    })
    if (this.#finished || this.#failed) {
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
    this.#socket.write(encodeReply(Socks5Reply.Succeeded, boundAddress(upstream)))
    m.socks5Replies.inc({ rep: '0' })
    m.handshakeDuration.observe({ mode: 'socks5' }, (Date.now() - this.#info.accepted) / 1000)
    this.#startRelay(upstream, formatEndpoint(result.endpoint), early)
  }

  #takeEarly (): EarlyBytes {
    const early = this.#early?.take() ?? { first: Buffer.alloc(0), later: Buffer.alloc(0), ended: false }
    this.#early = undefined
    return early
  }

  #startRelay (upstream: net.Socket, upstreamText: string, early: EarlyBytes): void {
    const { limits } = this.#runtime
    const earlyData = early.later.length === 0 ? early.first : Buffer.concat([early.first, early.later])
    const r = relay(this.#socket, upstream, {
      ...relayMetricHooks(this.#deps.metrics),
      idleTimeoutMs: limits.idleTimeoutMs,
      halfCloseTimeoutMs: limits.halfCloseTimeoutMs,
      keepalive: relayKeepalive(limits),
      ...(earlyData.length > 0 ? { earlyData } : {}),
      ...(early.ended ? { clientEnded: true } : {})
    })
    this.#relay = r
    const s = this.#socket
    this.#deps.sessions.add({
      id: this.#info.id,
      mode: 'socks5',
      src: formatRemote(s),
      dst: this.#dst,
      upstream: upstreamText,
      started: Date.now(),
      mptcp: this.#info.mptcp,
      progress: r.progress,
      buffered: r.buffered,
      abort: r.abort
    })
    r.done.then((res) => { this.#onRelayEnd(res) }, () => {}) // never rejects
  }

  #onRelayEnd (res: RelayResult): void {
    const m = this.#deps.metrics
    countRelayEnd(m, 'socks5', { reason: res.reason, durationMs: res.durationMs, bytesUp: res.bytesUp, bytesDown: res.bytesDown })
    const fields = { reason: res.reason, bytesUp: res.bytesUp, bytesDown: res.bytesDown, ms: res.durationMs }
    if (res.error !== undefined && this.#deps.errorLog.allow(this.#info.log)) {
      this.#info.log.debug({ ...fields, err: { code: errnoOf(res.error), message: res.error.message } }, 'close')
    } else {
      this.#info.log.debug(fields, 'close')
    }
    this.#done()
  }

  #reject (reason: RejectReason): void {
    this.#deps.metrics.connectionsRejected.inc({ mode: 'socks5', reason })
  }

  /** Answer (if there is an answer), count, flush and close within FAILURE_LINGER_MS. */
  #fail (reply: Buffer, reason: RejectReason | undefined, why: string | undefined): void {
    if (this.#failed) return
    this.#failed = true
    this.#abort.abort() // a dial in progress is abandoned
    this.#takeEarly()
    clearTimeout(this.#timer)
    this.#socket.off('data', this.#onData)
    if (reason !== undefined) this.#reject(reason)
    if (reply.length >= 10 && reply[0] === 5) this.#deps.metrics.socks5Replies.inc({ rep: repLabel(reply[1] ?? 1) })
    this.#info.log.debug({ reason: reason ?? 'upstream', why }, 'refused')
    disarmResetOnClose(this.#socket) // the reply and our FIN are delivered, not discarded by a reset
    this.#timer = setTimeout(() => { this.#socket.destroy() }, FAILURE_LINGER_MS)
    this.#socket.resume() // drain whatever the client still sends until it closes
    if (reply.length > 0) this.#socket.end(reply)
    else this.#socket.destroy()
  }

  #done (): void {
    if (this.#finished) return
    this.#finished = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#abort.abort()
    this.#socket.off('data', this.#onData)
    this.#deps.sessions.delete(this.#info.id)
    this.#info.onDone()
  }
}
