/**
 * RFC 8803 Transport Converter glue: one `ConvertConnection` per socket accepted on a `mode: convert`
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
 * Error discipline as in socks5.ts: handlers attached synchronously, nothing from the network
 * throws, every path ends in the single `#done()`.
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
import { relay } from '../../../shared/src/net/relay.ts'
import { errnoOf, upstreamFailureReason } from '../../../shared/src/net/connect-error.ts'
import { formatEndpoint, formatRemote } from '../../../shared/src/net/endpoint.ts'
import { disarmResetOnClose } from '../../../shared/src/net/sockopt.ts'
import { countRelayEnd, relayMetricHooks } from '../../../shared/src/metrics/relay-hooks.ts'
import { relayKeepalive } from '../../../shared/src/config/common-schema.ts'
import type { Relay, RelayEndReason, RelayResult } from '../../../shared/src/net/relay.ts'
import type { Runtime } from '../runtime.ts'
import { connectDownstream } from './convert-downstream.ts'
import type { DownstreamResult } from './convert-downstream.ts'
import { errnoToConvertError } from './convert-errno.ts'
import type { ConverterState } from './convert-state.ts'
import type { ConnectionDeps, ConnectionInfo } from './socks5.ts'
import { EarlyData } from './early-data.ts'
import type { EarlyBytes } from './early-data.ts'

/** After a failure reply, the socket is destroyed if the peer has not closed within this. */
const FAILURE_LINGER_MS = 1000
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
  readonly #socket: net.Socket
  readonly #info: ConnectionInfo
  readonly #deps: ConvertConnectionDeps
  readonly #runtime: Runtime
  readonly #reader: ConvertReader
  readonly #abort = new AbortController()
  #timer: NodeJS.Timeout | undefined
  #relay: Relay | undefined
  /** Between the message and the downstream connect: the early bytes read meanwhile. */
  #early: EarlyData | undefined
  #finished = false
  #failed = false
  #dst = ''

  constructor (socket: net.Socket, info: ConnectionInfo, deps: ConvertConnectionDeps) {
    this.#socket = socket
    this.#info = info
    this.#deps = deps
    this.#runtime = deps.runtime()
    socket.on('error', this.#onError)
    socket.on('close', this.#onClose)
    socket.on('end', this.#onEnd)
    this.#reader = createConverterSideReader(deps.converter.privateTypes)
    this.#timer = setTimeout(this.#onDeadline, this.#runtime.limits.convertTimeoutMs)
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
    if (this.#relay !== undefined) return
    if (this.#deps.errorLog.allow(this.#info.log)) this.#info.log.debug({ err: { code: errnoOf(err), message: err.message } }, 'client socket error')
  }

  readonly #onClose = (): void => {
    if (this.#relay === undefined) this.#done()
  }

  readonly #onEnd = (): void => {
    if (this.#relay !== undefined || this.#early !== undefined) return
    disarmResetOnClose(this.#socket) // the client's own close: answered with FIN
    this.#socket.destroy()
  }

  readonly #onDeadline = (): void => {
    this.#timer = undefined
    this.#reject('handshake_timeout')
    this.#info.log.debug('Convert message deadline passed')
    disarmResetOnClose(this.#socket) // a deliberate close: FIN, as before (docs/convert.md)
    this.#socket.destroy()
  }

  readonly #onData = (chunk: Buffer): void => {
    const r = this.#reader.feed(chunk)
    if (r.status === 'need-more' || r.status === 'closed') return
    this.#socket.pause()
    this.#socket.off('data', this.#onData)
    clearTimeout(this.#timer)
    this.#timer = undefined
    if (r.status === 'failed') this.#onDecodeFailure(r.failure)
    else this.#onMessage(r.message, asBuffer(r.rest))
  }

  #onDecodeFailure (f: ConvertFailure): void {
    if (f.action === 'reply') {
      this.#fail(f.reply.code, f.reply.value, 'malformed', `${f.code}: ${f.detail}`)
      return
    }
    this.#reject('malformed')
    this.#info.log.debug({ why: `${f.code}: ${f.detail}` }, 'reset')
    this.#socket.resetAndDestroy()
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
      this.#closeAfter(buildConvertSupported(SUPPORTED_KINDS))
      return
    }
    if (!this.#cookieOk(message)) return
    this.#dst = formatEndpoint({ ...connect.destination, port: connect.port })
    const cap = this.#runtime.limits.earlyDataMaxBytes
    const early = new EarlyData(this.#socket, earlyData, cap, (bytes) => {
      this.#fail(ConvertErrorCode.ResourceExceeded, undefined, 'malformed', `early data over ${cap} bytes (${bytes} before the downstream connected)`)
    })
    if (this.#failed) return
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
    const target = decision.addresses[0]
    if (target === undefined) return // never: an allowed decision has at least one address
    this.#info.authenticated() // source, cookie and TLVs accepted: out of the unauthenticated budget
    const destination = { ...target, port: decision.port }
    const started = performance.now()
    const result = await connectDownstream({
      destination,
      options: connect.options,
      earlyData,
      timeoutMs: limits.connectTimeoutMs,
      allowMptcp: this.#deps.converter.config.downstreamMptcp,
      highWaterMark: limits.highWaterMark,
      signal: this.#abort.signal
    })
    if (this.#finished || this.#failed) {
      if (result.ok) result.socket.destroy()
      return
    }
    this.#onDownstream(result, (performance.now() - started) / 1000, formatEndpoint(destination))
  }

  #onDownstream (result: DownstreamResult, seconds: number, upstreamText: string): void {
    const m = this.#deps.metrics
    if (!result.ok) {
      m.upstreamConnectFailures.inc({ reason: upstreamFailureReason(result.errno) })
      const e = errnoToConvertError(result.errno)
      this.#fail(e.code, Uint8Array.of(e.value), undefined, `downstream connect failed: ${result.errno}`)
      return
    }
    m.upstreamConnectDuration.observe({ mode: 'convert' }, seconds)
    const early = this.#takeEarly()
    this.#socket.write(buildConvertSuccess())
    m.handshakeDuration.observe({ mode: 'convert' }, (Date.now() - this.#info.accepted) / 1000)
    this.#startRelay(result.socket, upstreamText, early, result.earlyDataSent)
  }

  #takeEarly (): EarlyBytes {
    const early = this.#early?.take() ?? { first: Buffer.alloc(0), later: Buffer.alloc(0), ended: false }
    this.#early = undefined
    return early
  }

  /** `firstSent`: the bytes of the message's own read already left in the downstream SYN (TFO). */
  #startRelay (upstream: net.Socket, upstreamText: string, early: EarlyBytes, firstSent: boolean): void {
    const { limits } = this.#runtime
    const earlyData = firstSent || early.first.length === 0
      ? early.later
      : early.later.length === 0
        ? early.first
        : Buffer.concat([early.first,
          early.later])
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
      mode: 'convert',
      src: formatRemote(s),
      dst: this.#dst,
      upstream: upstreamText,
      started: Date.now(),
      mptcp: this.#info.mptcp,
      progress: r.progress,
      buffered: r.buffered,
      abort: r.abort
    })
    r.done.then((res) => { this.#onRelayEnd(res) }, () => {})
  }

  #onRelayEnd (res: RelayResult): void {
    const m = this.#deps.metrics
    countRelayEnd(m, 'convert', { reason: res.reason, durationMs: res.durationMs, bytesUp: res.bytesUp, bytesDown: res.bytesDown })
    this.#info.log.debug({ reason: res.reason, bytesUp: res.bytesUp, bytesDown: res.bytesDown, ms: res.durationMs }, 'close')
    this.#done()
  }

  #reject (reason: RejectReason): void {
    this.#deps.metrics.connectionsRejected.inc({ mode: 'convert', reason })
  }

  /**
   * Answer `[Hdr][Error code value]` (or `bytes`, a prebuilt Error message) if the source's Error
   * budget allows, else close without it; count; half-close; destroy within FAILURE_LINGER_MS.
   */
  #fail (code: number, value: Uint8Array | undefined, reason: RejectReason | undefined, why: string, bytes?: Buffer): void {
    if (this.#failed) return
    this.#failed = true
    this.#abort.abort() // a dial in progress is abandoned
    this.#takeEarly()
    if (reason !== undefined) this.#reject(reason)
    const allowed = this.#deps.converter.errorLimiter.take(this.#info.source)
    if (allowed) this.#deps.metrics.convertErrors.inc({ direction: 'sent', code: convertErrorLabel(code) })
    this.#info.log.debug({ reason: reason ?? 'upstream', code, why, suppressed: !allowed }, 'refused')
    this.#closeAfter(allowed ? (bytes ?? buildConvertError(code, value)) : undefined)
  }

  /** Write `reply` (if any), FIN, drain what the client still sends, destroy within the linger. */
  #closeAfter (reply: Buffer | undefined): void {
    disarmResetOnClose(this.#socket) // the TLVs and our FIN are delivered, not discarded by a reset
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => { this.#socket.destroy() }, FAILURE_LINGER_MS)
    this.#socket.resume()
    if (reply === undefined) this.#socket.end()
    else this.#socket.end(reply)
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
