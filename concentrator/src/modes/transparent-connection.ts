/**
 * One intercepted connection: the accepted (TPROXY, IP_TRANSPARENT) MPTCP socket's local address
 * and port are the original destination. Vet it with the destination policy (literal only, no
 * DNS), re-originate plain TCP to it — from this host's address, or from the subscriber's with
 * IP_TRANSPARENT — and relay. A refusal or a failed connect resets the subscriber's connection
 * (what a refusing server would do), counted with mode 'transparent'.
 *
 * The accepted socket is paused (listener `pauseOnConnect`): nothing is read before the relay.
 * 'error'/'close' handlers are attached synchronously; every path ends in the single `#done()`.
 */
import type net from 'node:net'
import type { Logger } from '../../../shared/src/log.ts'
import { dial } from '../../../shared/src/net/dial.ts'
import { relay } from '../../../shared/src/net/relay.ts'
import { errnoOf, upstreamFailureReason } from '../../../shared/src/net/connect-error.ts'
import { formatEndpoint, formatLocal, formatRemote, localEndpoint, remoteEndpoint } from '../../../shared/src/net/endpoint.ts'
import type { RefusalCount } from '../policy/refusal.ts'
import { countRelayEnd, relayMetricHooks } from '../../../shared/src/metrics/relay-hooks.ts'
import { relayKeepalive } from '../../../shared/src/config/common-schema.ts'
import type { Relay, RelayEndReason, RelayResult } from '../../../shared/src/net/relay.ts'
import type { ConcentratorMetrics } from '../metrics.ts'
import type { Runtime } from '../runtime.ts'
import type { SessionTable } from '../mgmt/session-table.ts'

const MODE = 'transparent'
const MALFORMED: RefusalCount = { kind: 'rejected', reason: 'malformed' }

export interface TransparentConnectionDeps {
  readonly metrics: ConcentratorMetrics
  readonly sessions: SessionTable
  readonly runtime: () => Runtime
  readonly sourceAddress: 'concentrator' | 'subscriber'
  readonly connectTimeoutMs: number
}

export interface TransparentConnectionInfo {
  readonly id: number
  readonly mptcp: boolean
  readonly log: Logger
  /** Called exactly once when the connection is gone. */
  readonly onDone: () => void
}

export class TransparentConnection {
  readonly #socket: net.Socket
  readonly #info: TransparentConnectionInfo
  readonly #deps: TransparentConnectionDeps
  #upstream: net.Socket | undefined
  #relay: Relay | undefined
  #timer: NodeJS.Timeout | undefined
  #finished = false

  constructor (socket: net.Socket, info: TransparentConnectionInfo, deps: TransparentConnectionDeps) {
    this.#socket = socket
    this.#info = info
    this.#deps = deps
    socket.on('error', this.#onError)
    socket.on('close', this.#onClose)
    this.#start()
  }

  abort (reason: RelayEndReason): void {
    if (this.#relay !== undefined) this.#relay.abort(reason)
    else this.#reset()
  }

  readonly #onError = (err: Error): void => {
    if (this.#relay === undefined) this.#info.log.debug({ err: { code: errnoOf(err), message: err.message } }, 'subscriber socket error')
  }

  readonly #onClose = (): void => {
    if (this.#relay === undefined) {
      this.#upstream?.destroy()
      this.#done()
    }
  }

  #start (): void {
    const s = this.#socket
    const dst = localEndpoint(s)
    const m = this.#deps.metrics
    if (dst === undefined || dst.port === 0) { this.#refuse(MALFORMED, 'no original destination'); return }
    const { port } = dst
    const decision = this.#deps.runtime().policy.checkAddress(dst.address, port)
    if (!decision.allowed) {
      this.#refuse(decision.count, `${decision.reason}: ${decision.detail}`)
      return
    }
    const target = decision.addresses[0]
    if (target === undefined) { this.#refuse(MALFORMED, 'no vetted address'); return }
    const subscriber = this.#deps.sourceAddress === 'subscriber' ? remoteEndpoint(s)?.address : undefined
    const started = performance.now()
    let upstream: net.Socket
    try {
      upstream = dial({
        host: target.address,
        port,
        protocol: 'tcp',
        allowHalfOpen: true,
        noDelay: true,
        synCount: 3,
        highWaterMark: this.#deps.runtime().limits.highWaterMark,
        ...(subscriber === undefined ? {} : { transparent: true, localAddress: subscriber })
      })
    } catch (err) {
      this.#connectFailed(errnoOf(err) ?? 'EIO')
      return
    }
    this.#upstream = upstream
    upstream.on('error', this.#onUpstreamError)
    upstream.once('connect', () => {
      clearTimeout(this.#timer)
      this.#timer = undefined
      if (this.#finished) { upstream.destroy(); return }
      m.upstreamConnectDuration.observe({ mode: MODE }, (performance.now() - started) / 1000)
      this.#startRelay(upstream, formatEndpoint(dst))
    })
    this.#timer = setTimeout(() => { this.#connectFailed('ETIMEDOUT') }, this.#deps.connectTimeoutMs)
  }

  readonly #onUpstreamError = (err: Error): void => {
    if (this.#relay !== undefined) return // the relay records it
    this.#connectFailed(errnoOf(err) ?? 'EIO')
  }

  #connectFailed (errno: string): void {
    if (this.#finished || this.#relay !== undefined) return
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#upstream?.destroy()
    this.#deps.metrics.upstreamConnectFailures.inc({ reason: upstreamFailureReason(errno) })
    this.#info.log.debug({ code: errno }, 'upstream connect failed; resetting the subscriber')
    this.#reset()
  }

  /** Every refusal is answered with a reset; it is counted as the policy says (RefusalCount). */
  #refuse (count: RefusalCount, why: string): void {
    if (count.kind === 'rejected') this.#deps.metrics.connectionsRejected.inc({ mode: MODE, reason: count.reason })
    else this.#deps.metrics.upstreamConnectFailures.inc({ reason: count.reason }) // not reached: a literal needs no lookup
    this.#info.log.debug({ reason: count.reason, why }, 'refused')
    this.#reset()
  }

  #reset (): void {
    const s = this.#socket
    if (s.destroyed) { this.#done(); return }
    try { s.resetAndDestroy() } catch { s.destroy() }
  }

  #startRelay (upstream: net.Socket, dstText: string): void {
    const { limits } = this.#deps.runtime()
    const r = relay(this.#socket, upstream, {
      ...relayMetricHooks(this.#deps.metrics),
      idleTimeoutMs: limits.idleTimeoutMs,
      halfCloseTimeoutMs: limits.halfCloseTimeoutMs,
      keepalive: relayKeepalive(limits)
    })
    this.#relay = r
    const s = this.#socket
    this.#deps.sessions.add({
      id: this.#info.id,
      mode: MODE,
      src: formatRemote(s),
      dst: dstText,
      upstream: formatLocal(upstream),
      started: Date.now(),
      mptcp: this.#info.mptcp,
      progress: r.progress,
      buffered: r.buffered,
      abort: r.abort
    })
    this.#deps.metrics.handshakeDuration.observe({ mode: MODE }, 0)
    r.done.then((res) => { this.#onRelayEnd(res) }, () => {})
  }

  #onRelayEnd (res: RelayResult): void {
    const m = this.#deps.metrics
    countRelayEnd(m, MODE, { reason: res.reason, durationMs: res.durationMs, bytesUp: res.bytesUp, bytesDown: res.bytesDown })
    this.#info.log.debug({ reason: res.reason, bytesUp: res.bytesUp, bytesDown: res.bytesDown, ms: res.durationMs }, 'close')
    this.#done()
  }

  #done (): void {
    if (this.#finished) return
    this.#finished = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#deps.sessions.delete(this.#info.id)
    this.#info.onDone()
  }
}
