/**
 * Transparent mode for one intercepted LAN connection (mode `transparent`, docs/transparent.md): no
 * signalling at all. The agent opens MPTCP straight to the ORIGINAL destination (SO_MARK =
 * intercept.socketMark so its own SYN is not intercepted again); the initial subflow leaves over DSL
 * by routing. An on-path concentrator (HAG) TPROXYes the MPTCP SYN, answers it and announces its
 * join address; the LTE endpoint (`subflow fullmesh`) joins there. Without a HAG on the path the
 * destination answers itself: plain TCP (MPTCP fallback, counted in hybrid_mptcp_fallbacks_total)
 * — the connection still works, single path — or, rarely, MPTCP end to end.
 *
 * The LAN socket is paused by the interceptor's listener until the relay starts. A failed connect
 * resets the LAN connection (what the destination's refusal looks like). Error discipline as in
 * socks5.ts: handlers attached synchronously, one `#done()`.
 */
import type net from 'node:net'
import type { Logger } from '../../../shared/src/log.ts'
import type { FallbackReason } from '../../../shared/src/metrics/labels.ts'
import { dial } from '../../../shared/src/net/dial.ts'
import { relay } from '../../../shared/src/net/relay.ts'
import { errnoOf, upstreamFailureReason } from '../../../shared/src/net/connect-error.ts'
import { formatEndpoint, formatRemote } from '../../../shared/src/net/endpoint.ts'
import { countRelayEnd, relayMetricHooks } from '../../../shared/src/metrics/relay-hooks.ts'
import { relayKeepalive } from '../../../shared/src/config/common-schema.ts'
import type { Relay, RelayEndReason, RelayResult } from '../../../shared/src/net/relay.ts'
import type { CpeLimits } from '../config/limits.ts'
import type { OriginalDestination } from '../intercept/interceptor.ts'
import type { CpeSessionTable } from '../mgmt/session-table.ts'
import type { CpeMetrics } from '../metrics.ts'
import type { PathMonitor } from '../paths/path-monitor.ts'
import type { PendingDials } from './pending-dials.ts'
import { upstreamFacts, type DialFn } from './upstream.ts'

const MODE = 'transparent'

export interface TransparentSettings {
  readonly socketMark: number
  readonly onMptcpUnavailable: 'fail' | 'fallback'
  readonly highWaterMark: number
  /** `connectTimeoutMs` bounds the connect to the destination. */
  readonly limits: CpeLimits
}

export interface TransparentDeps {
  readonly metrics: CpeMetrics
  readonly sessions: CpeSessionTable
  readonly paths: PathMonitor
  /** Re-dial once when the access of a still unanswered connect dies (pending-dials.ts). */
  readonly redials?: PendingDials
  readonly dial?: DialFn
}

export interface TransparentConnInfo {
  readonly id: number
  readonly destination: OriginalDestination
  readonly log: Logger
  readonly onDone: () => void
}

/** Why a transparent connection is not MPTCP: the far end (no HAG on the path) answered without MP_CAPABLE. */
export function transparentFallbackReason (facts: { mptcp: boolean, fallback: FallbackReason | undefined }): FallbackReason | undefined {
  if (facts.mptcp) return undefined
  return facts.fallback === 'tfo_data_not_acked' ? facts.fallback : 'no_mpc_synack'
}

export class TransparentUpstream {
  readonly #lan: net.Socket
  readonly #info: TransparentConnInfo
  readonly #deps: TransparentDeps
  readonly #s: TransparentSettings
  readonly #acceptedAt = Date.now()
  readonly #started = performance.now()
  #socket: net.Socket | undefined
  #timer: NodeJS.Timeout | undefined
  #relay: Relay | undefined
  #redialled = false
  #unwatch: (() => void) | undefined
  #mptcp = false
  #finished = false

  constructor (lan: net.Socket, info: TransparentConnInfo, settings: TransparentSettings, deps: TransparentDeps) {
    this.#lan = lan
    this.#info = info
    this.#deps = deps
    this.#s = settings
    lan.on('error', this.#onLanError)
    lan.on('close', this.#onLanClose)
    this.#dial()
  }

  get relaying (): boolean { return this.#relay !== undefined }

  abort (reason: RelayEndReason): void {
    if (this.#relay !== undefined) {
      this.#deps.paths.sampleOne(this.#info.id)
      this.#relay.abort(reason)
    } else {
      this.#fail('ECANCELED')
    }
  }

  #dial (): void {
    const d = this.#info.destination
    let socket: net.Socket
    try {
      socket = (this.#deps.dial ?? dial)({
        host: d.address,
        port: d.port,
        protocol: 'mptcp',
        onMptcpUnavailable: this.#s.onMptcpUnavailable,
        mark: this.#s.socketMark,
        allowHalfOpen: true,
        noDelay: true,
        highWaterMark: this.#s.highWaterMark
      })
    } catch (err) {
      queueMicrotask(() => { this.#fail(errnoOf(err) ?? 'EIO') })
      return
    }
    this.#socket = socket
    socket.on('error', (err: Error) => { if (this.#relay === undefined && this.#socket === socket) this.#fail(errnoOf(err) ?? 'EIO') })
    socket.once('connect', () => { if (this.#socket === socket) this.#onConnect(socket) })
    this.#timer = setTimeout(() => { this.#fail('ETIMEDOUT') }, this.#s.limits.connectTimeoutMs)
    this.#unwatch = this.#redialled
      ? undefined
      : this.#deps.redials?.add({
        mode: MODE,
        socket,
        log: this.#info.log,
        redial: () => { this.#redial(socket) }
      })
  }

  /** Drop the unanswered attempt (its MPTCP SYN left over a dead access) and dial again: the steering has moved. */
  #redial (socket: net.Socket): void {
    if (this.#finished || this.#relay !== undefined || this.#socket !== socket) return
    this.#redialled = true
    this.#unwatch = undefined
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#socket = undefined
    socket.destroy()
    this.#dial()
  }

  #stopWatching (): void {
    this.#unwatch?.()
    this.#unwatch = undefined
  }

  #onConnect (socket: net.Socket): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#stopWatching()
    if (this.#finished) { socket.destroy(); return }
    const m = this.#deps.metrics
    const facts = upstreamFacts(socket)
    const fallback = transparentFallbackReason(facts)
    if (fallback !== undefined) m.mptcpFallbacks.inc({ reason: fallback })
    this.#mptcp = facts.mptcp
    if (facts.mptcp) m.mptcpConnectionsActive.inc()
    const seconds = (performance.now() - this.#started) / 1000
    m.upstreamConnectDuration.observe({ mode: MODE }, seconds)
    m.handshakeDuration.observe({ mode: MODE }, seconds)
    this.#startRelay(socket)
  }

  #startRelay (socket: net.Socket): void {
    const { limits } = this.#s
    const r = relay(this.#lan, socket, {
      ...relayMetricHooks(this.#deps.metrics),
      idleTimeoutMs: limits.idleTimeoutMs,
      halfCloseTimeoutMs: limits.halfCloseTimeoutMs,
      keepalive: relayKeepalive(limits)
    })
    this.#relay = r
    const id = this.#info.id
    const paths = this.#deps.paths
    const path = paths.pathOf(socket.localAddress)
    paths.track(id, socket)
    socket.on('end', () => { paths.sampleOne(id) })
    socket.on('finish', () => { paths.sampleOne(id) })
    const dst = formatEndpoint(this.#info.destination)
    this.#deps.sessions.add({
      id,
      src: formatRemote(this.#lan),
      dst,
      upstream: dst,
      started: this.#acceptedAt,
      mptcp: this.#mptcp,
      pipelined: false,
      tfo: 'none',
      path,
      progress: r.progress,
      buffered: r.buffered,
      abort: r.abort
    })
    this.#info.log.debug({ mptcp: this.#mptcp, path }, 'relaying')
    r.done.then((res) => { this.#onRelayEnd(res) }, () => {})
  }

  #onRelayEnd (res: RelayResult): void {
    const m = this.#deps.metrics
    this.#deps.paths.untrack(this.#info.id)
    countRelayEnd(m, MODE, { reason: res.reason, durationMs: res.durationMs, bytesUp: res.bytesUp, bytesDown: res.bytesDown })
    this.#info.log.debug({ reason: res.reason, bytesUp: res.bytesUp, bytesDown: res.bytesDown, ms: res.durationMs }, 'close')
    this.#done()
  }

  /** Count, reset the LAN connection, close the upstream attempt. */
  #fail (errno: string): void {
    if (this.#finished || this.#relay !== undefined) return
    this.#deps.metrics.upstreamConnectFailures.inc({ reason: upstreamFailureReason(errno) })
    this.#info.log.debug({ errno }, 'destination connect failed; resetting the LAN connection')
    this.#socket?.destroy()
    if (!this.#lan.destroyed) this.#lan.resetAndDestroy()
    this.#done()
  }

  readonly #onLanError = (err: Error): void => {
    if (this.#relay === undefined) this.#info.log.debug({ err: { code: errnoOf(err), message: err.message } }, 'LAN socket error')
  }

  readonly #onLanClose = (): void => {
    if (this.#relay !== undefined) return
    this.#socket?.destroy()
    this.#done()
  }

  #done (): void {
    if (this.#finished) return
    this.#finished = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#stopWatching()
    if (this.#mptcp) this.#deps.metrics.mptcpConnectionsActive.dec()
    this.#deps.sessions.delete(this.#info.id)
    this.#info.onDone()
  }
}
