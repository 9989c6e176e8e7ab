/**
 * RFC 8803 Convert towards the Transport Converter for one intercepted LAN connection (mode
 * `convert`). Like `Socks5Upstream`, a strategy on the shared lifecycle object (cpe-connection.ts:
 * the LAN socket's handlers, the reply deadline, the reset, the relay, the single `done()`).
 *
 *   accept ─┬─ dial the converter (MPTCP, TFO, SO_MARK: nothing is sent yet)
 *           └─ collect the LAN client's first bytes for ≤ convert.coalesceMs
 *   then ONE write: `[Hdr][Connect][Cookie?]` + first bytes (the TFO SYN payload). The reply is read
 *   with the client-side ConvertReader under convert.replyTimeoutMs before anything reaches the LAN:
 *   success → relay (bytes after the reply header go to the LAN client first); Error 96/97/32 and
 *   the rest → LAN reset; Error 3 → cache the cookie, retry once; Error 64/65 → back off this
 *   converter for convert.backoffMs and fall back. Converter unreachable (connect error, or no reply
 *   byte by the deadline) → `convert.fallback`: socks5 (`fallbackSocks5`, run on this same
 *   connection and counted as socks5 from then on), direct (direct.ts: dialled marked so it is not
 *   intercepted) or none (reset).
 */
import type net from 'node:net'
import { createClientSideReader } from '../../../shared/src/codec/convert-reader.ts'
import type { ConvertReader } from '../../../shared/src/codec/convert-reader.ts'
import type { ConvertMessage } from '../../../shared/src/codec/convert.ts'
import { convertErrorLabel, type UpstreamFailureReason } from '../../../shared/src/metrics/labels.ts'
import type { DataPlane } from '../../../shared/src/net/data-plane.ts'
import { errnoOf, upstreamFailureReason } from '../../../shared/src/net/connect-error.ts'
import { formatEndpoint } from '../../../shared/src/net/endpoint.ts'
import type { RelayEndReason } from '../../../shared/src/net/relay.ts'
import type { CpeLimits } from '../config/limits.ts'
import type { ConvertClientConfig } from '../config/convert.ts'
import type { CpeSessionTable } from '../mgmt/session-table.ts'
import type { CpeMetrics } from '../metrics.ts'
import type { PathMonitor } from '../paths/path-monitor.ts'
import { buildFirstWrite, convertReplyAction, replyErrorCode } from './convert-reply.ts'
import type { ConverterMemory, ConvertReplyAction } from './convert-reply.ts'
import { cpeConnectionOf, relayUpstream, type CpeConnection } from './cpe-connection.ts'
import { relayDirect } from './direct.ts'
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
   * fallback `socks5`: run SOCKS5 on this connection with the first bytes already collected (handed
   * over, not pushed back: after the client's FIN was read a stream refuses `unshift`).
   */
  readonly fallbackSocks5?: (conn: CpeConnection, first: FirstBytes) => void
  /** Re-dial once when the access of a still unanswered connect dies (pending-dials.ts). */
  readonly redials?: PendingDials
  readonly dial?: DialFn
  /** Who moves the relayed bytes (docs/data-plane.md); absent: the stream relay. */
  readonly dataPlane?: DataPlane
}

export class ConvertUpstream {
  readonly #conn: CpeConnection
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
  /** Handed to the SOCKS5 or direct fallback: the converter attempt is over. */
  #fellBack = false
  #gotReplyByte = false
  /** Fallback decided before the first bytes were collected. */
  #wantFallback: string | undefined
  #retried = false
  #redialled = false
  #unwatch: (() => void) | undefined

  constructor (lan: net.Socket | CpeConnection, info: Socks5ConnInfo, settings: ConvertSettings, deps: ConvertDeps) {
    this.#conn = cpeConnectionOf(lan, 'convert', info, deps)
    this.#info = info
    this.#deps = deps
    this.#s = settings
    this.#key = concentratorKey(settings.concentrator.host, settings.concentrator.port)
    this.#conn.signal.addEventListener('abort', () => { this.#dropSocket() }, { once: true }) // refused or gone
    const backedOff = deps.memory.backedOff(this.#key)
    if (!backedOff) this.#dial()
    collectFirstBytes(this.#conn.socket, { windowMs: settings.convert.coalesceMs, maxBytes: settings.limits.earlyDataMaxBytes })
      .then(({ data, ended }) => {
        this.#first = data
        this.#lanEnded = ended
        if (backedOff || this.#wantFallback !== undefined) this.#fallback(this.#wantFallback ?? 'backed off')
        else this.#begin()
      }, () => {})
  }

  /** The converter's, a fallback's or the direct relay: all run on the one connection. */
  get relaying (): boolean { return this.#conn.relaying }

  /** Shutdown: a relay ends with `reason` (after a last path sample); a handshake is reset, not counted. */
  abort (reason: RelayEndReason): void {
    if (this.#conn.relaying) this.#conn.abort(reason)
    else this.#conn.refuse({ close: 'reset', why: `aborted (${reason})` })
  }

  #dial (): void {
    const r = dialConcentrator(this.#s, this.#deps.dial, this.#info.destination)
    if (!r.ok) { queueMicrotask(() => { this.#unreachable(r.errno) }); return }
    const socket = r.socket
    this.#socket = socket
    const mine = (): boolean => this.#socket === socket && !this.#conn.relaying
    socket.on('error', (err: Error) => { if (mine() && !this.#gotReplyByte) this.#unreachable(errnoOf(err)) })
    socket.on('close', () => { if (mine()) this.#onUpClose() })
    socket.on('end', () => { if (mine()) this.#onUpEnd() })
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
    if (this.#conn.settled || this.#conn.relaying || this.#fellBack || this.#socket !== socket) return
    this.#redialled = true
    this.#unwatch = undefined
    this.#dropSocket()
    this.#dial()
  }

  #begin (): void {
    const socket = this.#socket
    if (this.#conn.settled || socket === undefined || this.#first === undefined || this.#reader !== undefined) return
    const reader = createClientSideReader()
    this.#reader = reader
    socket.on('data', (chunk: Buffer) => { if (this.#reader === reader) this.#onUpData(reader, chunk) })
    this.#conn.deadline(this.#s.convert.replyTimeoutMs, () => { this.#onDeadline() })
    socket.write(buildFirstWrite(this.#info.destination, this.#first, this.#deps.memory.cookie(this.#key)))
  }

  #onUpData (reader: ConvertReader, chunk: Buffer): void {
    this.#gotReplyByte = true
    const r = reader.feed(chunk)
    if (r.status === 'need-more' || r.status === 'closed') return
    this.#conn.clearDeadline()
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
    m.handshakeDuration.observe({ mode: 'convert' }, (performance.now() - this.#accepted) / 1000)
    const sent = this.#first?.length ?? 0 // the first bytes went in the first write
    this.#first = undefined
    relayUpstream(this.#conn, socket, {
      limits: this.#s.limits,
      // the session lists a converter on an unknown path as `direct` (as it always has)
      session: { dst: formatEndpoint(this.#info.destination), upstream: path === undefined ? 'direct' : this.#key, pipelined: true, tfo: 'none', path },
      mptcp: facts.mptcp,
      track: path !== undefined,
      sentInHandshake: sent
    }, this.#deps)
  }

  #onDeadline (): void {
    if (this.#conn.settled || this.#conn.relaying) return
    if (this.#gotReplyByte) this.#reset({ kind: 'upstream', reason: 'timeout' }, 'incomplete reply at the deadline')
    else this.#unreachable('ETIMEDOUT')
  }

  #onUpClose (): void {
    if (this.#conn.settled || this.#fellBack) return
    if (this.#gotReplyByte) this.#reset({ kind: 'upstream', reason: 'reset' }, 'converter closed mid-reply')
    else this.#unreachable(undefined)
  }

  /**
   * FIN before the reply is complete (the upstream runs allowHalfOpen: no 'close' follows, so without
   * this the deadline would notice): mid-reply → reset; before any reply byte → like unreachable.
   */
  #onUpEnd (): void {
    if (this.#conn.settled || this.#fellBack) return
    if (this.#gotReplyByte) this.#reset({ kind: 'upstream', reason: 'closed' }, 'converter sent FIN mid-reply')
    else this.#unreachable(undefined, 'closed')
  }

  /** The converter cannot be reached (no reply byte): count and fall back. */
  #unreachable (errno: string | undefined, reason: UpstreamFailureReason = upstreamFailureReason(errno)): void {
    if (this.#conn.settled || this.#fellBack || this.#conn.relaying) return
    this.#conn.clearDeadline()
    this.#deps.metrics.upstreamConnectFailures.inc({ reason })
    this.#dropSocket()
    this.#fallback(`converter unreachable (${errno ?? reason})`)
  }

  #fallback (why: string): void {
    if (this.#conn.settled) return
    const kind = this.#s.convert.fallback
    this.#info.log.debug({ why, fallback: kind }, 'falling back')
    if (this.#first === undefined) { this.#wantFallback = why; return } // resumed once the first bytes are in
    const first = this.#first
    if (kind === 'socks5' && this.#deps.fallbackSocks5 !== undefined) {
      this.#first = undefined
      this.#fellBack = true
      this.#conn.countAs('socks5') // counted as SOCKS5 from here, as a SOCKS5 connection would be
      this.#deps.fallbackSocks5(this.#conn, { data: first, ended: this.#lanEnded })
      return
    }
    if (kind === 'direct') {
      this.#first = undefined
      this.#fellBack = true
      relayDirect(this.#conn, this.#info.destination, first, this.#s, this.#deps)
      return
    }
    this.#reset({ kind: 'upstream', reason: 'other' }, 'no fallback')
  }

  #reset (count: Extract<ConvertReplyAction, { type: 'reset' }>['count'], why: string): void {
    if (this.#conn.settled || this.#conn.relaying) return
    if (count.kind !== 'rejected') this.#deps.metrics.upstreamConnectFailures.inc({ reason: count.reason })
    this.#dropSocket()
    this.#conn.refuse({ close: 'reset', ...(count.kind === 'rejected' ? { count: count.reason } : {}), why: `${why}; resetting the LAN connection` })
  }

  #stopWatching (): void {
    this.#unwatch?.()
    this.#unwatch = undefined
  }

  #dropSocket (): void {
    this.#stopWatching()
    this.#conn.clearDeadline()
    this.#reader = undefined
    const s = this.#socket
    this.#socket = undefined
    s?.destroy()
  }
}
