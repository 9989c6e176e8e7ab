/**
 * The CPE's CONNECT-UDP client (RFC 9298 over HTTP/2 extended CONNECT, RFC 8441): one HTTP/2
 * session on one MPTCP connection to the concentrator, one stream per UDP flow, each datagram a
 * DATAGRAM capsule (RFC 9297). The MPTCP connection is bonded and survives the loss of one access,
 * so every flow does too (docs/udp.md).
 *
 * The session is opened at the first flow and again after it closed; a connect that fails holds new
 * flows off for a back-off (0.5 s doubling to 10 s) instead of dialling per datagram. Datagrams
 * are held (bounded) until the session is up, then written at once, before the stream's 2xx
 * (RFC 9298 §5 allows it; the proxy reads them once the flow exists); a stream that holds more than
 * `maxBufferedBytes` unsent drops new datagrams rather than buffering them (UDP semantics).
 */
import http2 from 'node:http2'
import type net from 'node:net'
import type { Logger } from '../../../shared/src/log.ts'
import { CapsuleReader, CapsuleType, decodeHttpDatagram, encodeDatagramCapsule, UdpPayloadContextId } from '../../../shared/src/codec/capsule.ts'
import { connectUdpPath, ConnectUdpProtocol } from '../../../shared/src/codec/connect-udp.ts'
import type { UdpDrop, UdpRefusal } from '../../../shared/src/metrics/udp-metrics.ts'

export type TunnelEnd =
  | { readonly kind: 'refused', readonly reason: UdpRefusal, readonly status?: number, readonly detail?: string }
  | { readonly kind: 'closed' }

export interface TunnelHandlers {
  readonly onOpen: () => void
  readonly onDatagram: (payload: Uint8Array) => void
  readonly onDrop: (reason: UdpDrop) => void
  /** Exactly once. */
  readonly onEnd: (end: TunnelEnd) => void
}

export type SendResult = 'sent' | 'queued' | UdpDrop

export interface UdpTunnel {
  send: (payload: Uint8Array) => SendResult
  close: () => void
}

export interface ConnectUdpClientOptions {
  /** `:authority` of the requests (the concentrator as `host:port`). */
  readonly authority: string
  /** A connected (MPTCP) socket to the concentrator's CONNECT-UDP port. */
  readonly connect: () => Promise<net.Socket>
  readonly credentials?: { readonly username: string, readonly password: string } | undefined
  readonly openQueue: number
  readonly maxBufferedBytes: number
  readonly log: Logger
  readonly now?: () => number
  /** Longest a connect or a stream's response may take. Default 5000 ms. */
  readonly timeoutMs?: number
}

const BackoffMinMs = 500
/** What the concentrator may send before the CPE has read it: the CPE reads at once (into the TUN). */
const STREAM_WINDOW_BYTES = 1024 * 1024
const SESSION_WINDOW_BYTES = 4 * 1024 * 1024
const BackoffMaxMs = 10_000

function refusalOf (status: number): UdpRefusal {
  if (status === 403) return 'policy'
  if (status === 407) return 'auth'
  if (status === 429 || status === 503) return 'unavailable'
  if (status === 400 || status === 404 || status === 405) return 'malformed'
  return 'upstream_error'
}

export class ConnectUdpClient {
  readonly #o: ConnectUdpClientOptions
  readonly #now: () => number
  #session: http2.ClientHttp2Session | undefined
  #ready: Promise<http2.ClientHttp2Session> | undefined
  #holdUntil = 0
  #backoffMs = BackoffMinMs
  #closed = false

  constructor (o: ConnectUdpClientOptions) {
    this.#o = o
    this.#now = o.now ?? Date.now
  }

  /** Whether an HTTP/2 session to the concentrator is up. */
  get sessionUp (): boolean { return this.#session !== undefined && !this.#session.closed && !this.#session.destroyed }

  /** A tunnel to `host:port`; `handlers.onEnd` reports its end (at once when the client holds off). */
  open (target: { host: string, port: number }, handlers: TunnelHandlers): UdpTunnel {
    const t = new Tunnel(target, handlers, this.#o)
    if (this.#closed) { t.end({ kind: 'closed' }); return t }
    if (this.#now() < this.#holdUntil) { t.end({ kind: 'refused', reason: 'unavailable', detail: 'concentrator unreachable (back-off)' }); return t }
    this.#sessionReady().then((s) => { t.start(s) }, (err: unknown) => {
      t.end({ kind: 'refused', reason: 'unavailable', detail: (err as Error).message })
    })
    return t
  }

  async close (): Promise<void> {
    this.#closed = true
    const s = this.#session
    this.#session = undefined
    this.#ready = undefined
    if (s === undefined || s.destroyed) return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { s.destroy(); resolve() }, 1000)
      s.close(() => { clearTimeout(timer); resolve() })
    })
  }

  async #sessionReady (): Promise<http2.ClientHttp2Session> {
    if (this.sessionUp && this.#session !== undefined) return this.#session
    this.#ready ??= this.#connect().then((s) => {
      this.#backoffMs = BackoffMinMs
      return s
    }, (err: unknown) => {
      this.#ready = undefined
      this.#holdUntil = this.#now() + this.#backoffMs
      this.#o.log.warn({ err, retryInMs: this.#backoffMs }, 'CONNECT-UDP session to the concentrator failed')
      this.#backoffMs = Math.min(BackoffMaxMs, this.#backoffMs * 2)
      throw err
    })
    return this.#ready
  }

  async #connect (): Promise<http2.ClientHttp2Session> {
    const socket = await this.#o.connect()
    // Windows far above HTTP/2's 64 KiB default, which caps one flow at ~13 Mbit/s at 40 ms RTT;
    // what is buffered stays bounded by maxBufferedBytes (datagrams dropped), not by the window.
    const session = http2.connect(`http://${this.#o.authority}`, { createConnection: () => socket, settings: { initialWindowSize: STREAM_WINDOW_BYTES } })
    session.setLocalWindowSize(SESSION_WINDOW_BYTES)
    session.on('error', (err) => { this.#o.log.debug({ err }, 'CONNECT-UDP session error') })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { session.destroy(); reject(new Error('no HTTP/2 SETTINGS from the concentrator')) }, this.#o.timeoutMs ?? 5000)
      session.once('remoteSettings', (settings) => {
        clearTimeout(timer)
        if (settings.enableConnectProtocol === true) { resolve(); return }
        session.destroy()
        reject(new Error('the concentrator does not offer extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL)'))
      })
      session.once('close', () => { clearTimeout(timer); reject(new Error('HTTP/2 session closed during set-up')) })
    })
    session.once('close', () => {
      if (this.#session === session) { this.#session = undefined; this.#ready = undefined }
    })
    if (this.#closed) { session.destroy(); throw new Error('client closed') }
    this.#session = session
    this.#o.log.info({ authority: this.#o.authority }, 'CONNECT-UDP session to the concentrator up')
    return session
  }
}

/** One flow's stream: held datagrams, then capsules both ways; one end. */
class Tunnel implements UdpTunnel {
  readonly #target: { host: string, port: number }
  readonly #h: TunnelHandlers
  readonly #o: ConnectUdpClientOptions
  readonly #reader = new CapsuleReader()
  #stream: http2.ClientHttp2Stream | undefined
  #queue: Uint8Array[] = []
  #open = false
  #ended = false
  #closing = false

  constructor (target: { host: string, port: number }, h: TunnelHandlers, o: ConnectUdpClientOptions) {
    this.#target = target
    this.#h = h
    this.#o = o
  }

  send (payload: Uint8Array): SendResult {
    if (this.#ended) return 'flow_refused'
    if (!this.#open) {
      if (this.#queue.length >= this.#o.openQueue) return 'queue_full'
      this.#queue.push(Buffer.from(payload))
      return 'queued'
    }
    return this.#write(payload)
  }

  close (): void {
    this.#closing = true
    if (this.#stream !== undefined && !this.#stream.destroyed) this.#stream.close(http2.constants.NGHTTP2_NO_ERROR)
    this.end({ kind: 'closed' })
  }

  start (session: http2.ClientHttp2Session): void {
    if (this.#ended) return
    let stream: http2.ClientHttp2Stream
    try {
      stream = session.request(this.#headers(), { endStream: false })
    } catch (err) {
      this.end({ kind: 'refused', reason: 'unavailable', detail: (err as Error).message })
      return
    }
    this.#stream = stream
    this.#flushHeld()
    // end() (through #refuse) resets the stream.
    const timer = setTimeout(() => { this.#refuse('unavailable', undefined, 'no response to CONNECT-UDP') }, this.#o.timeoutMs ?? 5000)
    stream.on('response', (headers) => {
      clearTimeout(timer)
      const status = Number(headers[':status'])
      if (status >= 200 && status < 300) { this.#opened(); return }
      this.#refuse(refusalOf(status), status, String(headers['proxy-status'] ?? ''))
    })
    stream.on('data', (chunk: Buffer) => { this.#onData(chunk, stream) })
    stream.on('error', () => {})
    stream.on('close', () => { clearTimeout(timer); this.end({ kind: 'closed' }) })
  }

  end (e: TunnelEnd): void {
    if (this.#ended) return
    this.#ended = true
    this.#queue = []
    if (!this.#closing && this.#stream !== undefined && !this.#stream.destroyed) this.#stream.close(http2.constants.NGHTTP2_CANCEL)
    this.#h.onEnd(e)
  }

  #headers (): http2.OutgoingHttpHeaders {
    const h: http2.OutgoingHttpHeaders = {
      ':method': 'CONNECT',
      ':protocol': ConnectUdpProtocol,
      ':scheme': 'https',
      ':authority': this.#o.authority,
      ':path': connectUdpPath(this.#target.host, this.#target.port),
      'capsule-protocol': '?1'
    }
    const c = this.#o.credentials
    if (c !== undefined) h['proxy-authorization'] = `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`
    return h
  }

  #refuse (reason: UdpRefusal, status: number | undefined, detail: string): void {
    this.end({ kind: 'refused', reason, ...(status === undefined ? {} : { status }), detail })
  }

  #opened (): void {
    if (this.#ended) return
    this.#h.onOpen()
  }

  /**
   * RFC 9298 §5 lets a client send datagrams before the response: the proxy reads them once the
   * flow is set up (or drops them with a refusal). Held datagrams go out as soon as the stream
   * exists, and later ones at once, which saves a round trip on every new flow.
   */
  #flushHeld (): void {
    this.#open = true
    const held = this.#queue
    this.#queue = []
    for (const p of held) {
      const r = this.#write(p)
      if (r !== 'sent') this.#h.onDrop(r as UdpDrop)
    }
  }

  #write (payload: Uint8Array): SendResult {
    const s = this.#stream
    if (s === undefined || s.destroyed || s.writableEnded) return 'flow_refused'
    if (s.writableLength > this.#o.maxBufferedBytes) return 'backpressure'
    s.write(encodeDatagramCapsule(payload))
    return 'sent'
  }

  #onData (chunk: Buffer, stream: http2.ClientHttp2Stream): void {
    this.#reader.push(chunk)
    for (;;) {
      const n = this.#reader.next()
      if ('need' in n) return
      if ('fault' in n) {
        this.#o.log.warn({ fault: n.fault, target: this.#target }, 'malformed capsule stream from the concentrator: flow reset')
        stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR)
        return
      }
      if (n.capsule.type !== CapsuleType.Datagram) { this.#h.onDrop('unknown_capsule'); continue }
      const d = decodeHttpDatagram(n.capsule.value)
      if (!d.ok) { this.#h.onDrop(d.fault === 'oversized' ? 'oversized' : 'malformed'); continue }
      if (d.contextId !== UdpPayloadContextId) { this.#h.onDrop('unknown_context'); continue }
      this.#h.onDatagram(d.payload)
    }
  }
}
