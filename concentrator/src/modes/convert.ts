/**
 * RFC 8803 Transport Converter strategy: one `ConvertConnection` per socket accepted on a `mode: convert`
 * listener. Reads the Convert message from the first bytes (normally the TFO SYN payload) with the
 * incremental reader under `limits.convertTimeoutMs` from accept, authorises the source
 * (`auth.trustedPrefixes`, optional Cookie TLV), vets the Connect address with the destination
 * policy, dials the destination, and ONLY THEN answers: success is the bare header `01 01 22 63`
 * (no Extended TCP Header: Linux cannot read the server's SYN-ACK options), followed by the relay;
 * the bytes that followed the message in the SYN go downstream right after the connect.
 *
 * Failures answer `[Hdr][Error]`, half-close and destroy after ≤ 1 s (the RFC's "reset" is
 * approximated: an immediate RST would discard the queued Error, docs/convert.md); a refusal at
 * accept (caps) closes the fd as soon as its Error is flushed (`refuseConvertAtAccept`).
 * Error replies are rate-limited per source (over the limit: a plain close). Decoder verdicts
 * "reset" (bad magic, Total Length 0, repeated TLV) are answered with a real RST.
 *
 * The lifecycle (socket handlers, the deadline, refusals, relay, session entry, the single
 * `done()`) is the shared `ProxiedConnection`, as in socks5.ts.
 */
import type net from 'node:net'
import {
  buildConvertError, buildConvertMissingCookie, buildConvertSuccess, buildConvertSupported, encodeConvertMessage,
  findConvertTlv
} from '../../../shared/src/codec/convert.ts'
import type { ConvertMessage } from '../../../shared/src/codec/convert.ts'
import { buildEchoValue, ConvertErrorCode } from '../../../shared/src/codec/convert-error.ts'
import type { ConvertFailure } from '../../../shared/src/codec/convert-error.ts'
import { createConverterSideReader } from '../../../shared/src/codec/convert-reader.ts'
import type { ConvertReader } from '../../../shared/src/codec/convert-reader.ts'
import { ConvertTlvType } from '../../../shared/src/codec/convert-tlv.ts'
import type { ConvertConnectTlv } from '../../../shared/src/codec/convert-tlv.ts'
import { TcpOptionKind } from '../../../shared/src/codec/convert-tcp-options.ts'
import { convertErrorLabel } from '../../../shared/src/metrics/labels.ts'
import type { RejectReason } from '../../../shared/src/metrics/labels.ts'
import { formatEndpoint } from '../../../shared/src/net/endpoint.ts'
import type { RelayEndReason } from '../../../shared/src/net/relay.ts'
import type { ProxiedConnection } from '../../../shared/src/net/proxied-connection.ts'
import { connectUpstream, type UpstreamResult } from '../egress/connect-upstream.ts'
import type { SessionEntry } from '../mgmt/session-table.ts'
import { downstreamPlan } from './convert-downstream.ts'
import type { Runtime } from '../runtime.ts'
import { errnoToConvertError } from './convert-errno.ts'
import type { ConverterState } from './convert-state.ts'
import { concentratorConnection, type ConnectionDeps, type ConnectionInfo } from './socks5.ts'
import { EarlyData } from './early-data.ts'
import type { EarlyBytes } from './early-data.ts'

/** Supported TCP Extensions answered to Info: MPTCP only (TFO 34 is not listed: docs/design/rfc8803-notes.md §2). */
const SUPPORTED_KINDS = [TcpOptionKind.Mptcp]

export interface ConvertConnectionDeps extends ConnectionDeps {
  readonly converter: ConverterState
}

function asBuffer (u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength)
}

/** Fallback only: a refused socket whose Error could not be flushed is destroyed after this. */
const REFUSAL_FLUSH_MS = 50

/**
 * A connection refused at accept (caps; counted by the caller): Error 64 Resource Exceeded when the
 * source's Error budget allows, then the fd is closed as soon as the Error and our FIN are handed to
 * the kernel, without waiting for the peer (a refused socket must not hold an fd: it holds no caps
 * slot). Reading is resumed first so that the SYN payload is consumed and the close does not turn
 * into an RST that discards the Error. No Error budget: an RST at once.
 */
export function refuseConvertAtAccept (socket: net.Socket, source: string, deps: ConvertConnectionDeps): void {
  socket.on('error', () => {})
  if (!deps.converter.errorLimiter.take(source)) {
    socket.resetAndDestroy()
    return
  }
  deps.metrics.convertErrors.inc({ direction: 'sent', code: convertErrorLabel(ConvertErrorCode.ResourceExceeded) })
  const timer = setTimeout(() => { socket.destroy() }, REFUSAL_FLUSH_MS)
  socket.on('close', () => { clearTimeout(timer) })
  socket.resume()
  socket.end(buildConvertError(ConvertErrorCode.ResourceExceeded), () => { socket.destroy() })
}

export class ConvertConnection {
  readonly #conn: ProxiedConnection<SessionEntry>
  readonly #socket: net.Socket
  readonly #info: ConnectionInfo
  readonly #deps: ConvertConnectionDeps
  readonly #runtime: Runtime
  readonly #reader: ConvertReader
  /** Between the message and the downstream connect: the early bytes read meanwhile. */
  #early: EarlyData | undefined
  #dst = ''

  constructor (socket: net.Socket, info: ConnectionInfo, deps: ConvertConnectionDeps) {
    this.#conn = concentratorConnection(socket, 'convert', info, deps)
    this.#socket = socket
    this.#info = info
    this.#deps = deps
    this.#runtime = deps.runtime()
    this.#conn.closeOnEarlyEnd(() => this.#early !== undefined)
    this.#reader = createConverterSideReader(deps.converter.privateTypes)
    this.#conn.deadline(this.#runtime.limits.convertTimeoutMs, () => {
      // a deliberate close: FIN, as before (docs/convert.md)
      this.#conn.refuse({ close: 'fin', count: 'handshake_timeout', why: 'Convert message deadline passed' })
    })
    socket.on('data', this.#onData)
    info.log.debug('open')
  }

  /** Shutdown: a relay ends with reason 'drain'; a handshake in progress is destroyed. */
  abort (reason: RelayEndReason): void { this.#conn.abort(reason) }

  get relaying (): boolean { return this.#conn.relaying }

  readonly #onData = (chunk: Buffer): void => {
    const r = this.#reader.feed(chunk)
    if (r.status === 'need-more' || r.status === 'closed') return
    this.#socket.pause()
    this.#socket.off('data', this.#onData)
    this.#conn.clearDeadline()
    if (r.status === 'failed') this.#onDecodeFailure(r.failure)
    else this.#onMessage(r.message, asBuffer(r.rest))
  }

  #onDecodeFailure (f: ConvertFailure): void {
    if (f.action === 'reply') {
      this.#fail(f.reply.code, f.reply.value, 'malformed', `${f.code}: ${f.detail}`)
      return
    }
    this.#conn.refuse({ close: 'reset', count: 'malformed', why: `${f.code}: ${f.detail}` })
  }

  #onMessage (message: ConvertMessage, earlyData: Buffer): void {
    const source = this.#info.source
    if (!this.#runtime.trusted.has(source)) {
      this.#fail(ConvertErrorCode.NotAuthorized, undefined, 'auth_failed', 'source outside auth.trustedPrefixes')
      return
    }
    const connect = findConvertTlv(message, ConvertTlvType.Connect)
    if (connect === undefined) { // Info (the decoder guarantees exactly one of Info and Connect)
      this.#info.log.debug('Info answered')
      this.#conn.answerAndClose(buildConvertSupported(SUPPORTED_KINDS))
      return
    }
    if (!this.#cookieOk(message)) return
    this.#dst = formatEndpoint({ ...connect.destination, port: connect.port })
    const cap = this.#runtime.limits.earlyDataMaxBytes
    const early = new EarlyData(this.#socket, earlyData, cap, (bytes) => {
      this.#fail(ConvertErrorCode.ResourceExceeded, undefined, 'malformed', `early data over ${cap} bytes (${bytes} before the downstream connected)`)
    })
    if (this.#conn.settled) return
    this.#early = early
    this.#connect(message, connect, earlyData).catch((err: unknown) => {
      this.#info.log.error({ err }, 'connect path failed')
      this.#socket.destroy()
    })
  }

  /** Cookie TLV check when required: missing → Error 3 with the cookie; invalid → Error 32. */
  #cookieOk (message: ConvertMessage): boolean {
    const keys = this.#deps.converter.cookies
    if (keys === undefined) return true
    const m = this.#deps.metrics
    const tlv = findConvertTlv(message, ConvertTlvType.Cookie)
    if (tlv === undefined) {
      const cookie = keys.issue(this.#info.source)
      this.#fail(ConvertErrorCode.MissingCookie, undefined, undefined, 'no Cookie TLV', buildConvertMissingCookie(cookie))
      return false
    }
    const ok = keys.verify(this.#info.source, tlv.cookie)
    m.authAttempts.inc({ method: 'cookie', result: ok ? 'success' : 'failure' })
    if (!ok) this.#fail(ConvertErrorCode.NotAuthorized, undefined, 'auth_failed', 'invalid cookie')
    return ok
  }

  async #connect (message: ConvertMessage, connect: ConvertConnectTlv, earlyData: Buffer): Promise<void> {
    const { policy, limits } = this.#runtime
    const decision = policy.checkAddress(connect.destination.address, connect.port)
    if (!decision.allowed) {
      const code = decision.convertError.code
      const value = code === ConvertErrorCode.MalformedMessage ? buildEchoValue(encodeConvertMessage(message)) : undefined
      const { count } = decision
      if (count.kind === 'upstream') this.#deps.metrics.upstreamConnectFailures.inc({ reason: count.reason }) // not reached: a literal needs no lookup
      this.#fail(code, value, count.kind === 'rejected' ? count.reason : undefined, `${decision.reason}: ${decision.detail}`)
      return
    }
    this.#info.authenticated() // source, cookie and TLVs accepted: out of the unauthenticated budget
    const plan = downstreamPlan({ options: connect.options, earlyData, allowMptcp: this.#deps.converter.config.downstreamMptcp })
    const started = performance.now()
    const result = await connectUpstream(decision.addresses.slice(0, 1), {
      port: decision.port,
      timeoutMs: limits.connectTimeoutMs,
      mptcp: plan.mptcp,
      ...(plan.fastOpen ? { fastOpenData: earlyData } : {}),
      highWaterMark: limits.highWaterMark,
      signal: this.#conn.signal
    })
    if (this.#conn.settled) {
      if (result.ok) result.socket.destroy()
      return
    }
    this.#onDownstream(result, (performance.now() - started) / 1000)
  }

  #onDownstream (result: UpstreamResult, seconds: number): void {
    const m = this.#deps.metrics
    if (!result.ok) {
      m.upstreamConnectFailures.inc({ reason: result.reason })
      const e = errnoToConvertError(result.errno)
      this.#fail(e.code, Uint8Array.of(e.value), undefined, `downstream connect failed: ${result.errno}`)
      return
    }
    m.upstreamConnectDuration.observe({ mode: 'convert' }, seconds)
    const early = this.#takeEarly()
    this.#socket.write(buildConvertSuccess())
    m.handshakeDuration.observe({ mode: 'convert' }, (Date.now() - this.#info.accepted) / 1000)
    // The bytes of the message's own read already left in the downstream SYN with TFO.
    const first = result.earlyDataSent ? Buffer.alloc(0) : early.first
    this.#conn.relayTo(result.socket, {
      limits: this.#runtime.limits,
      session: { mode: 'convert', dst: this.#dst, upstream: formatEndpoint(result.endpoint) },
      earlyData: early.later.length === 0 ? first : Buffer.concat([first, early.later]),
      clientEnded: early.ended
    })
  }

  #takeEarly (): EarlyBytes {
    const early = this.#early?.take() ?? { first: Buffer.alloc(0), later: Buffer.alloc(0), ended: false }
    this.#early = undefined
    return early
  }

  /**
   * Answer `[Hdr][Error code value]` (or `bytes`, a prebuilt Error message) if the source's Error
   * budget allows, else close without it; count; half-close; destroy within the refusal linger.
   */
  #fail (code: number, value: Uint8Array | undefined, reason: RejectReason | undefined, why: string, bytes?: Buffer): void {
    if (this.#conn.settled) return
    this.#takeEarly()
    const allowed = this.#deps.converter.errorLimiter.take(this.#info.source)
    if (allowed) this.#deps.metrics.convertErrors.inc({ direction: 'sent', code: convertErrorLabel(code) })
    this.#conn.refuse({
      ...(allowed ? { reply: bytes ?? buildConvertError(code, value) } : {}),
      close: 'linger',
      ...(reason === undefined ? {} : { count: reason }),
      why: `${why} (Error ${code}${allowed ? '' : ', not sent: over the source\'s Error budget'})`
    })
  }
}
