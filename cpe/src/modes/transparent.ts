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
 * resets the LAN connection (what the destination's refusal looks like). The lifecycle (LAN socket
 * handlers, the connect deadline, the reset, the relay, the single `done()`) is the shared
 * `ProxiedConnection` (cpe-connection.ts); this class dials and decides.
 */
import type net from 'node:net'
import type { Logger } from '../../../shared/src/log.ts'
import type { FallbackReason } from '../../../shared/src/metrics/labels.ts'
import { dial } from '../../../shared/src/net/dial.ts'
import type { DataPlane } from '../../../shared/src/net/data-plane.ts'
import { errnoOf, upstreamFailureReason } from '../../../shared/src/net/connect-error.ts'
import { formatEndpoint } from '../../../shared/src/net/endpoint.ts'
import type { RelayEndReason } from '../../../shared/src/net/relay.ts'
import type { CpeLimits } from '../config/limits.ts'
import type { OriginalDestination } from '../intercept/interceptor.ts'
import type { CpeSessionTable } from '../mgmt/session-table.ts'
import type { CpeMetrics } from '../metrics.ts'
import type { PathMonitor } from '../paths/path-monitor.ts'
import type { PendingDials } from './pending-dials.ts'
import { cpeConnectionOf, relayUpstream, type CpeConnection } from './cpe-connection.ts'
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
  /** Who moves the relayed bytes (docs/data-plane.md); absent: the stream relay. */
  readonly dataPlane?: DataPlane
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
  readonly #conn: CpeConnection
  readonly #info: TransparentConnInfo
  readonly #deps: TransparentDeps
  readonly #s: TransparentSettings
  readonly #acceptedAt = Date.now()
  readonly #started = performance.now()
  #socket: net.Socket | undefined
  #redialled = false
  #unwatch: (() => void) | undefined

  constructor (lan: net.Socket | CpeConnection, info: TransparentConnInfo, settings: TransparentSettings, deps: TransparentDeps) {
    this.#conn = cpeConnectionOf(lan, MODE, info, deps)
    this.#info = info
    this.#deps = deps
    this.#s = settings
    this.#conn.signal.addEventListener('abort', this.#onGone, { once: true })
    this.#dial()
  }

  get relaying (): boolean { return this.#conn.relaying }

  /** Shutdown: a relay ends with `reason` (after a last path sample); a connect is counted ECANCELED and reset. */
  abort (reason: RelayEndReason): void {
    if (this.#conn.relaying) this.#conn.abort(reason)
    else this.#fail('ECANCELED')
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
    socket.on('error', (err: Error) => { if (!this.#conn.relaying && this.#socket === socket) this.#fail(errnoOf(err) ?? 'EIO') })
    socket.once('connect', () => { if (this.#socket === socket) this.#onConnect(socket) })
    this.#conn.deadline(this.#s.limits.connectTimeoutMs, () => { this.#fail('ETIMEDOUT') })
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
    if (this.#conn.settled || this.#conn.relaying || this.#socket !== socket) return
    this.#redialled = true
    this.#unwatch = undefined
    this.#conn.clearDeadline()
    this.#socket = undefined
    socket.destroy()
    this.#dial()
  }

  #stopWatching (): void {
    this.#unwatch?.()
    this.#unwatch = undefined
  }

  #onConnect (socket: net.Socket): void {
    this.#conn.clearDeadline()
    this.#stopWatching()
    if (this.#conn.settled) { socket.destroy(); return }
    const m = this.#deps.metrics
    const facts = upstreamFacts(socket)
    const fallback = transparentFallbackReason(facts)
    if (fallback !== undefined) m.mptcpFallbacks.inc({ reason: fallback })
    const seconds = (performance.now() - this.#started) / 1000
    m.upstreamConnectDuration.observe({ mode: MODE }, seconds)
    m.handshakeDuration.observe({ mode: MODE }, seconds)
    const path = this.#deps.paths.pathOf(socket.localAddress)
    const dst = formatEndpoint(this.#info.destination)
    relayUpstream(this.#conn, socket, {
      limits: this.#s.limits,
      session: { dst, upstream: dst, pipelined: false, tfo: 'none', path },
      mptcp: facts.mptcp,
      track: true,
      started: this.#acceptedAt
    }, this.#deps)
    this.#info.log.debug({ mptcp: facts.mptcp, path }, 'relaying')
  }

  /** Count, reset the LAN connection; the upstream attempt closes on the abort. */
  #fail (errno: string): void {
    if (this.#conn.settled || this.#conn.relaying) return
    this.#deps.metrics.upstreamConnectFailures.inc({ reason: upstreamFailureReason(errno) })
    this.#conn.refuse({ close: 'reset', why: `destination connect failed (${errno}); resetting the LAN connection` })
  }

  /** Refused or gone (the connection's signal): drop the attempt. */
  readonly #onGone = (): void => {
    this.#stopWatching()
    if (!this.#conn.relaying) this.#socket?.destroy()
  }
}
