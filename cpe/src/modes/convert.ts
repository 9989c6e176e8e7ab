/**
 * RFC 8803 Convert towards the Transport Converter for one intercepted LAN connection (mode
 * `convert`). Same shape as `Socks5Upstream` (abort, relaying, one onDone).
 *
 *   accept ─┬─ dial the converter (MPTCP, TFO, SO_MARK: nothing is sent yet)
 *           └─ collect the LAN client's first bytes for ≤ convert.coalesceMs
 *   then ONE write: `[Hdr][Connect][Cookie?]` + first bytes (the TFO SYN payload). The reply is read
 *   with the client-side ConvertReader under convert.replyTimeoutMs before anything reaches the LAN:
 *   success → relay (bytes after the reply header go to the LAN client first); Error 96/97/32 and
 *   the rest → LAN reset; Error 3 → cache the cookie, retry once; Error 64/65 → back off this
 *   converter for convert.backoffMs and fall back. Converter unreachable (connect error, or no reply
 *   byte by the deadline) → `convert.fallback`: socks5 (handed to the caller), direct (dialled here,
 *   marked so it is not intercepted) or none (reset).
 */
import type net from 'node:net'
import { createClientSideReader } from '../../../shared/src/codec/convert-reader.ts'
import type { ConvertReader } from '../../../shared/src/codec/convert-reader.ts'
import type { ConvertMessage } from '../../../shared/src/codec/convert.ts'
import { convertErrorLabel, type UpstreamFailureReason } from '../../../shared/src/metrics/labels.ts'
import { dial } from '../../../shared/src/net/dial.ts'
import { relay } from '../../../shared/src/net/relay.ts'
import { errnoOf, upstreamFailureReason } from '../../../shared/src/net/connect-error.ts'
import { formatEndpoint, formatRemote } from '../../../shared/src/net/endpoint.ts'
import { countRelayEnd, relayMetricHooks } from '../../../shared/src/metrics/relay-hooks.ts'
import { relayKeepalive } from '../../../shared/src/config/common-schema.ts'
import type { Relay, RelayEndReason, RelayResult } from '../../../shared/src/net/relay.ts'
import type { CpeLimits } from '../config/limits.ts'
import type { ConvertClientConfig } from '../config/convert.ts'
import type { CpeSessionTable } from '../mgmt/session-table.ts'
import type { CpeMetrics } from '../metrics.ts'
import type { PathMonitor } from '../paths/path-monitor.ts'
import { buildFirstWrite, convertReplyAction, replyErrorCode } from './convert-reply.ts'
import type { ConverterMemory, ConvertReplyAction } from './convert-reply.ts'
import { collectFirstBytes, type FirstBytes } from './first-bytes.ts'
import type { PendingDials } from './pending-dials.ts'
import type { Socks5ConnInfo } from './socks5.ts'
import { concentratorKey } from './pipelining-memory.ts'
import { dialConcentrator, upstreamFacts } from './upstream.ts'
import type { DialFn, UpstreamDialSettings } from './upstream.ts'

export interface ConvertSettings extends UpstreamDialSettings {
  /** `concentrator` above is the converter endpoint (convert.host/port, TFO flags of `concentrator`). */
  convert: ConvertClientConfig
  limits: CpeLimits
}

export interface ConvertDeps {
  readonly metrics: CpeMetrics
  readonly sessions: CpeSessionTable
  readonly paths: PathMonitor
  readonly memory: ConverterMemory
  /**
   * fallback `socks5`: take over the LAN connection with the first bytes already collected (handed
   * over, not pushed back: after the client's FIN was read a stream refuses `unshift`).
   */
  readonly fallbackSocks5?: (lan: net.Socket, first: FirstBytes) => { abort: (reason: RelayEndReason) => void, readonly relaying: boolean }
  /** Re-dial once when the access of a still unanswered connect dies (pending-dials.ts). */
  readonly redials?: PendingDials
  readonly dial?: DialFn
}

export class ConvertUpstream {
  readonly #lan: net.Socket
  readonly #info: Socks5ConnInfo
  readonly #deps: ConvertDeps
  readonly #s: ConvertSettings
  readonly #key: string
  readonly #accepted = performance.now()
  #socket: net.Socket | undefined
  #reader: ConvertReader | undefined
  #first: Buffer | undefined
  /** The LAN client half-closed while its first bytes were collected (the relay passes the FIN on). */
  #lanEnded = false
  #timer: NodeJS.Timeout | undefined
  #relay: Relay | undefined
  #delegate: { abort: (reason: RelayEndReason) => void, readonly relaying: boolean } | undefined
  #gotReplyByte = false
  /** Fallback decided before the first bytes were collected. */
  #wantFallback: string | undefined
  #retried = false
  #redialled = false
  #unwatch: (() => void) | undefined
  #mptcp = false
  #finished = false

  constructor (lan: net.Socket, info: Socks5ConnInfo, settings: ConvertSettings, deps: ConvertDeps) {
    this.#lan = lan
    this.#info = info
    this.#deps = deps
    this.#s = settings
    this.#key = concentratorKey(settings.concentrator.host, settings.concentrator.port)
    lan.on('error', () => {})
    lan.on('close', this.#onLanClose)
    const backedOff = deps.memory.backedOff(this.#key)
    if (!backedOff) this.#dial()
    collectFirstBytes(lan, { windowMs: settings.convert.coalesceMs, maxBytes: settings.limits.earlyDataMaxBytes })
      .then(({ data, ended }) => {
        this.#first = data
        this.#lanEnded = ended
        if (backedOff || this.#wantFallback !== undefined) this.#fallback(this.#wantFallback ?? 'backed off')
        else this.#begin()
      }, () => {})
  }

  get relaying (): boolean { return this.#relay !== undefined || (this.#delegate?.relaying ?? false) }

  abort (reason: RelayEndReason): void {
    if (this.#delegate !== undefined) { this.#delegate.abort(reason); return }
    if (this.#relay !== undefined) {
      this.#deps.paths.sampleOne(this.#info.id) // last path sample while the fd is open
      this.#relay.abort(reason)
      return
    }
    this.#lan.resetAndDestroy()
    this.#socket?.destroy()
  }

  #dial (): void {
    const r = dialConcentrator(this.#s, this.#deps.dial, this.#info.destination)
    if (!r.ok) { queueMicrotask(() => { this.#unreachable(r.errno) }); return }
    const socket = r.socket
    this.#socket = socket
    socket.on('error', (err: Error) => { if (this.#socket === socket && this.#relay === undefined && !this.#gotReplyByte) this.#unreachable(errnoOf(err)) })
    socket.on('close', () => { if (this.#socket === socket && this.#relay === undefined) this.#onUpClose() })
    socket.on('end', () => { if (this.#socket === socket && this.#relay === undefined) this.#onUpEnd() })
    this.#unwatch = this.#redialled
      ? undefined
      : this.#deps.redials?.add({
        mode: 'convert',
        socket,
        log: this.#info.log,
        redial: () => { this.#redial(socket) }
      })
    if (this.#first !== undefined) this.#begin()
  }

  /** Drop the unanswered attempt (its SYN left over a dead access) and dial again: the steering has moved. */
  #redial (socket: net.Socket): void {
    if (this.#finished || this.#relay !== undefined || this.#delegate !== undefined || this.#socket !== socket) return
    this.#redialled = true
    this.#unwatch = undefined
    this.#dropSocket()
    this.#dial()
  }

  #begin (): void {
    const socket = this.#socket
    if (this.#finished || socket === undefined || this.#first === undefined || this.#reader !== undefined) return
    const reader = createClientSideReader()
    this.#reader = reader
    socket.on('data', (chunk: Buffer) => { if (this.#reader === reader) this.#onUpData(reader, chunk) })
    this.#timer = setTimeout(() => { this.#onDeadline() }, this.#s.convert.replyTimeoutMs)
    socket.write(buildFirstWrite(this.#info.destination, this.#first, this.#deps.memory.cookie(this.#key)))
  }

  #onUpData (reader: ConvertReader, chunk: Buffer): void {
    this.#gotReplyByte = true
    const r = reader.feed(chunk)
    if (r.status === 'need-more' || r.status === 'closed') return
    clearTimeout(this.#timer)
    this.#reader = undefined
    if (r.status === 'failed') { this.#reset({ kind: 'upstream', reason: 'other' }, `bad reply: ${r.failure.detail}`); return }
    this.#onReply(r.message, Buffer.from(r.rest.buffer, r.rest.byteOffset, r.rest.byteLength))
  }

  #onReply (message: ConvertMessage, rest: Buffer): void {
    const code = replyErrorCode(message)
    if (code !== undefined) this.#deps.metrics.convertErrors.inc({ direction: 'received', code: convertErrorLabel(code) })
    const action: ConvertReplyAction = convertReplyAction(message)
    switch (action.type) {
      case 'relay': this.#startRelay(rest); return
      case 'reset': this.#reset(action.count, `Error ${code ?? '?'}`); return
      case 'backoff-and-fallback':
        this.#deps.memory.backOff(this.#key, this.#s.convert.backoffMs)
        this.#info.log.warn({ converter: this.#key, code, backoffMs: this.#s.convert.backoffMs }, 'converter overloaded or failing; backing off')
        this.#dropSocket()
        this.#fallback(`Error ${code ?? '?'}`)
        return
      case 'retry-with-cookie':
        this.#deps.memory.setCookie(this.#key, action.cookie)
        if (this.#retried) { this.#reset({ kind: 'rejected', reason: 'auth_failed' }, 'Error 3 again after a cookie retry'); return }
        this.#retried = true
        this.#dropSocket()
        this.#dial()
    }
  }

  #startRelay (rest: Buffer): void {
    const socket = this.#socket
    if (socket === undefined) return
    this.#stopWatching()
    socket.removeAllListeners('data')
    socket.pause()
    if (rest.length > 0) socket.unshift(rest)
    const m = this.#deps.metrics
    const facts = upstreamFacts(socket)
    const path = this.#deps.paths.pathOf(socket.localAddress)
    if (facts.tfo !== undefined && path !== undefined) m.tfoOutcomes.inc({ path, result: facts.tfo })
    if (facts.fallback !== undefined) m.mptcpFallbacks.inc({ reason: facts.fallback })
    this.#mptcp = facts.mptcp
    if (facts.mptcp) m.mptcpConnectionsActive.inc()
    m.handshakeDuration.observe({ mode: 'convert' }, (performance.now() - this.#accepted) / 1000)
    this.#relayTo(socket, Buffer.alloc(0), path)
  }

  #relayTo (socket: net.Socket, earlyData: Buffer, path: string | undefined): void {
    const { limits } = this.#s
    const sentFirst = earlyData.length === 0 ? this.#first?.length ?? 0 : 0
    const r = relay(this.#lan, socket, {
      ...relayMetricHooks(this.#deps.metrics),
      idleTimeoutMs: limits.idleTimeoutMs,
      halfCloseTimeoutMs: limits.halfCloseTimeoutMs,
      keepalive: relayKeepalive(limits),
      ...(earlyData.length > 0 ? { earlyData } : {})
    })
    this.#relay = r
    this.#first = undefined
    const id = this.#info.id
    if (path !== undefined) {
      // Sample on FIN in either direction while the fd is open: at relay end (untrack) it is closed,
      // so the bytes since the last periodic sample would be lost (as socks5.ts does).
      const paths = this.#deps.paths
      paths.track(id, socket)
      socket.on('end', () => { paths.sampleOne(id) })
      socket.on('finish', () => { paths.sampleOne(id) })
    }
    const dst = this.#info.destination
    this.#deps.sessions.add({
      id,
      src: formatRemote(this.#lan),
      dst: formatEndpoint(dst),
      upstream: path === undefined ? 'direct' : this.#key,
      started: Date.now(),
      mptcp: this.#mptcp,
      pipelined: true,
      tfo: 'none',
      path,
      progress: () => { const p = r.progress(); return { up: p.up + sentFirst, down: p.down } },
      buffered: r.buffered,
      abort: r.abort
    })
    r.done.then((res) => { this.#onRelayEnd(res, sentFirst) }, () => {})
  }

  #onRelayEnd (res: RelayResult, sentFirst: number): void {
    const m = this.#deps.metrics
    this.#deps.paths.untrack(this.#info.id)
    const up = res.bytesUp + sentFirst
    countRelayEnd(m, 'convert', { reason: res.reason, durationMs: res.durationMs, bytesUp: up, bytesDown: res.bytesDown })
    this.#done()
  }

  #onDeadline (): void {
    if (this.#finished || this.#relay !== undefined) return
    if (this.#gotReplyByte) this.#reset({ kind: 'upstream', reason: 'timeout' }, 'incomplete reply at the deadline')
    else this.#unreachable('ETIMEDOUT')
  }

  #onUpClose (): void {
    if (this.#finished || this.#delegate !== undefined) return
    if (this.#gotReplyByte) this.#reset({ kind: 'upstream', reason: 'reset' }, 'converter closed mid-reply')
    else this.#unreachable(undefined)
  }

  /**
   * FIN before the reply is complete (the upstream runs allowHalfOpen: no 'close' follows, so without
   * this the deadline would notice): mid-reply → reset; before any reply byte → like unreachable.
   */
  #onUpEnd (): void {
    if (this.#finished || this.#delegate !== undefined) return
    if (this.#gotReplyByte) this.#reset({ kind: 'upstream', reason: 'closed' }, 'converter sent FIN mid-reply')
    else this.#unreachable(undefined, 'closed')
  }

  /** The converter cannot be reached (no reply byte): count and fall back. */
  #unreachable (errno: string | undefined, reason: UpstreamFailureReason = upstreamFailureReason(errno)): void {
    if (this.#finished || this.#delegate !== undefined || this.#relay !== undefined) return
    clearTimeout(this.#timer)
    this.#deps.metrics.upstreamConnectFailures.inc({ reason })
    this.#dropSocket()
    this.#fallback(`converter unreachable (${errno ?? reason})`)
  }

  #fallback (why: string): void {
    if (this.#finished) return
    const kind = this.#s.convert.fallback
    this.#info.log.debug({ why, fallback: kind }, 'falling back')
    if (this.#first === undefined) { this.#wantFallback = why; return } // resumed once the first bytes are in
    if (kind === 'socks5' && this.#deps.fallbackSocks5 !== undefined) {
      const first = { data: this.#first, ended: this.#lanEnded }
      this.#first = undefined
      this.#finished = true // the delegate owns onDone from here
      this.#delegate = this.#deps.fallbackSocks5(this.#lan, first)
      return
    }
    if (kind === 'direct') { this.#direct(); return }
    this.#reset({ kind: 'upstream', reason: 'other' }, 'no fallback')
  }

  /** Dial the destination directly, marked so the interceptor leaves it alone; no bonding. */
  #direct (): void {
    const d = this.#info.destination
    let socket: net.Socket
    try {
      socket = (this.#deps.dial ?? dial)({
        host: d.address,
        port: d.port,
        protocol: 'tcp',
        mark: this.#s.socketMark,
        allowHalfOpen: true,
        noDelay: true,
        highWaterMark: this.#s.highWaterMark
      })
    } catch (err) {
      this.#reset({ kind: 'upstream', reason: upstreamFailureReason(errnoOf(err)) }, 'direct dial refused')
      return
    }
    this.#socket = socket
    socket.on('error', (err: Error) => { if (this.#relay === undefined) this.#reset({ kind: 'upstream', reason: upstreamFailureReason(errnoOf(err)) }, 'direct connect failed') })
    socket.once('connect', () => { if (!this.#finished) this.#relayTo(socket, this.#first ?? Buffer.alloc(0), undefined) })
  }

  #reset (count: Extract<ConvertReplyAction, { type: 'reset' }>['count'], why: string): void {
    if (this.#finished || this.#relay !== undefined) return
    const m = this.#deps.metrics
    if (count.kind === 'rejected') m.connectionsRejected.inc({ mode: 'convert', reason: count.reason })
    else m.upstreamConnectFailures.inc({ reason: count.reason })
    this.#info.log.debug({ why, count }, 'resetting the LAN connection')
    this.#dropSocket()
    if (!this.#lan.destroyed) this.#lan.resetAndDestroy()
    this.#done()
  }

  #stopWatching (): void {
    this.#unwatch?.()
    this.#unwatch = undefined
  }

  #dropSocket (): void {
    this.#stopWatching()
    clearTimeout(this.#timer)
    this.#reader = undefined
    const s = this.#socket
    this.#socket = undefined
    s?.destroy()
  }

  readonly #onLanClose = (): void => {
    if (this.#relay !== undefined || this.#delegate !== undefined) return
    this.#dropSocket()
    this.#done()
  }

  #done (): void {
    if (this.#finished) return
    this.#finished = true
    clearTimeout(this.#timer)
    this.#stopWatching()
    if (this.#mptcp) this.#deps.metrics.mptcpConnectionsActive.dec()
    this.#deps.sessions.delete(this.#info.id)
    this.#info.onDone()
  }
}
