/**
 * One CONNECT-UDP flow: an answered HTTP/2 stream and one connected UDP socket (its local address
 * and port stay the same for the flow's life: one outside binding per flow). DATAGRAM capsules
 * (context 0) from the stream are sent on the socket; datagrams from the target go back as
 * DATAGRAM capsules. Never buffers without bound: the stream's data is parsed as it arrives
 * (HTTP/2 flow control holds the rest back), a datagram to the client is dropped while the stream
 * holds more than `streamBufferMaxBytes` unsent, one to the target while the socket has
 * `socketQueueMaxDatagrams` unsent. Exactly one end path (`end`), one idle timer.
 */
import type dgram from 'node:dgram'
import http2 from 'node:http2'
import { CapsuleReader, CapsuleType, decodeHttpDatagram, encodeDatagramCapsule, UdpPayloadContextId } from '../../../shared/src/codec/capsule.ts'
import type { Logger } from '../../../shared/src/log.ts'
import type { UdpDrop } from '../../../shared/src/metrics/udp-metrics.ts'
import { endLabel, type UdpFlowEndReason, type UdpProxyMetrics } from './udp-metrics.ts'

export interface UdpFlowOptions {
  readonly idleTimeoutMs: number
  readonly maxDatagramBytes: number
  readonly streamBufferMaxBytes: number
  readonly socketQueueMaxDatagrams: number
  readonly metrics: UdpProxyMetrics
  readonly log: Logger
  readonly now?: () => number
  /** Called exactly once, after the socket is closed. */
  readonly onEnd: (reason: UdpFlowEndReason) => void
}

const { NGHTTP2_NO_ERROR, NGHTTP2_PROTOCOL_ERROR } = http2.constants

export class UdpFlow {
  readonly #stream: http2.ServerHttp2Stream
  readonly #socket: dgram.Socket
  readonly #o: UdpFlowOptions
  readonly #reader = new CapsuleReader()
  readonly #now: () => number
  #last: number
  #timer: NodeJS.Timeout | undefined
  #ended: UdpFlowEndReason | undefined

  /** `socket` is connected to the target; `stream` has been answered 200. */
  constructor (stream: http2.ServerHttp2Stream, socket: dgram.Socket, options: UdpFlowOptions) {
    this.#stream = stream
    this.#socket = socket
    this.#o = options
    this.#now = options.now ?? Date.now
    this.#last = this.#now()
    options.metrics.udpFlowsCreated.inc()
    options.metrics.udpFlowsActive.inc()
    stream.on('data', this.#onStreamData)
    stream.on('end', this.#onStreamEnd)
    stream.on('close', () => { this.end(stream.rstCode === NGHTTP2_NO_ERROR ? 'client_closed' : 'stream_reset') })
    socket.on('message', this.#onTargetDatagram)
    socket.on('error', this.#onSocketError)
    this.#arm(options.idleTimeoutMs)
  }

  get ended (): UdpFlowEndReason | undefined { return this.#ended }

  /** The one end path: idempotent; closes the socket and the stream, counts, calls `onEnd`. */
  end (reason: UdpFlowEndReason): void {
    if (this.#ended !== undefined) return
    this.#ended = reason
    clearTimeout(this.#timer)
    this.#stream.off('data', this.#onStreamData)
    this.#socket.off('message', this.#onTargetDatagram)
    try { this.#socket.close() } catch { /* already closed */ }
    if (!this.#stream.closed && !this.#stream.destroyed) this.#stream.close(reason === 'capsule_fault' ? NGHTTP2_PROTOCOL_ERROR : NGHTTP2_NO_ERROR)
    this.#o.metrics.udpFlowsActive.dec()
    this.#o.metrics.udpFlowsEnded.inc({ reason: endLabel(reason) })
    this.#o.log.debug({ reason }, 'udp flow ended')
    this.#o.onEnd(reason)
  }

  /** ICMP port unreachable (ECONNREFUSED on a connected socket) is a lost datagram, not the flow's end. */
  readonly #onSocketError = (err: NodeJS.ErrnoException): void => {
    if (err.code === 'ECONNREFUSED') { this.#drop('send_error'); return }
    this.#o.log.debug({ err }, 'udp flow socket error')
    this.end('socket_error')
  }

  #arm (ms: number): void {
    this.#timer = setTimeout(this.#onIdleCheck, ms)
    this.#timer.unref()
  }

  readonly #onIdleCheck = (): void => {
    const idle = this.#now() - this.#last
    if (idle >= this.#o.idleTimeoutMs) this.end('idle_timeout')
    else this.#arm(this.#o.idleTimeoutMs - idle)
  }

  /** Counted by reason (the shared drop series has no direction label). */
  #drop (reason: UdpDrop): void {
    this.#o.metrics.udpDropped.inc({ reason })
  }

  readonly #onStreamData = (chunk: Buffer): void => {
    this.#reader.push(chunk)
    for (;;) {
      const next = this.#reader.next()
      if ('need' in next) return
      if ('fault' in next) { this.#fault(next.fault); return }
      if (next.capsule.type !== CapsuleType.Datagram) this.#drop('unknown_capsule')
      else this.#toTarget(next.capsule.value)
      if (this.#ended !== undefined) return
    }
  }

  readonly #onStreamEnd = (): void => {
    const fault = this.#reader.end()
    if (fault !== undefined) this.#fault(fault)
    else this.end('client_closed')
  }

  #fault (fault: string): void {
    this.#o.log.debug({ err: { code: 'HYBRID_ERR_UDP_CAPSULE_FAULT', message: fault } }, 'capsule stream fault: resetting the stream')
    this.end('capsule_fault')
  }

  #toTarget (value: Uint8Array): void {
    const d = decodeHttpDatagram(value)
    if (!d.ok) { this.#drop(d.fault === 'short' ? 'malformed' : 'oversized'); return }
    if (d.contextId !== UdpPayloadContextId) { this.#drop('unknown_context'); return }
    if (d.payload.length > this.#o.maxDatagramBytes) { this.#drop('oversized'); return }
    if (this.#socket.getSendQueueCount() >= this.#o.socketQueueMaxDatagrams) { this.#drop('backpressure'); return }
    this.#last = this.#now()
    const bytes = d.payload.length
    try {
      this.#socket.send(d.payload, (err) => {
        if (err !== null && err !== undefined) { this.#drop('send_error'); return }
        this.#o.metrics.udpDatagrams.inc({ direction: 'up' })
        this.#o.metrics.udpBytes.inc({ direction: 'up' }, bytes)
      })
    } catch {
      this.#drop('send_error')
    }
  }

  readonly #onTargetDatagram = (msg: Buffer): void => {
    if (msg.length > this.#o.maxDatagramBytes) { this.#drop('oversized'); return }
    if (this.#stream.writableLength > this.#o.streamBufferMaxBytes) { this.#drop('backpressure'); return }
    this.#last = this.#now()
    this.#stream.write(encodeDatagramCapsule(msg))
    this.#o.metrics.udpDatagrams.inc({ direction: 'down' })
    this.#o.metrics.udpBytes.inc({ direction: 'down' }, msg.length)
  }
}
