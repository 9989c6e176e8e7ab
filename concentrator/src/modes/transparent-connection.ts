/**
 * One intercepted connection: the accepted (TPROXY, IP_TRANSPARENT) MPTCP socket's local address
 * and port are the original destination. Vet it with the destination policy (literal only, no
 * DNS), re-originate plain TCP to it — from this host's address, or from the subscriber's with
 * IP_TRANSPARENT — and relay. A refusal or a failed connect resets the subscriber's connection
 * (what a refusing server would do), counted with mode 'transparent'.
 *
 * The accepted socket is paused (listener `pauseOnConnect`): nothing is read before the relay.
 * The lifecycle (socket handlers, refusals, relay, session entry, the single `done()`) is the
 * shared `ProxiedConnection`; the connect goes through the one egress dialer.
 */
import type net from 'node:net'
import type { Logger } from '../../../shared/src/log.ts'
import { formatEndpoint, formatLocal, localEndpoint, remoteEndpoint } from '../../../shared/src/net/endpoint.ts'
import { ProxiedConnection } from '../../../shared/src/net/proxied-connection.ts'
import { connectUpstream, type UpstreamResult } from '../egress/connect-upstream.ts'
import type { RefusalCount } from '../policy/refusal.ts'
import type { RelayEndReason } from '../../../shared/src/net/relay.ts'
import type { ConcentratorMetrics } from '../metrics.ts'
import type { Runtime } from '../runtime.ts'
import type { SessionEntry, SessionTable } from '../mgmt/session-table.ts'

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
  readonly #conn: ProxiedConnection<SessionEntry>
  readonly #deps: TransparentConnectionDeps

  constructor (socket: net.Socket, info: TransparentConnectionInfo, deps: TransparentConnectionDeps) {
    this.#deps = deps
    this.#conn = new ProxiedConnection<SessionEntry>(socket, {
      id: info.id, mode: MODE, mptcp: info.mptcp, log: info.log, onDone: info.onDone, metrics: deps.metrics, sessions: deps.sessions
    })
    this.#start().catch((err: unknown) => {
      info.log.error({ err }, 'connect path failed')
      socket.destroy()
    })
  }

  abort (reason: RelayEndReason): void {
    if (this.#conn.relaying) this.#conn.abort(reason)
    else this.#conn.refuse({ close: 'reset', why: `aborted (${reason})` })
  }

  async #start (): Promise<void> {
    const s = this.#conn.socket
    const dst = localEndpoint(s)
    if (dst === undefined || dst.port === 0) { this.#refuse(MALFORMED, 'no original destination'); return }
    const { port } = dst
    const runtime = this.#deps.runtime()
    const decision = runtime.policy.checkAddress(dst.address, port)
    if (!decision.allowed) {
      this.#refuse(decision.count, `${decision.reason}: ${decision.detail}`)
      return
    }
    const subscriber = this.#deps.sourceAddress === 'subscriber' ? remoteEndpoint(s)?.address : undefined
    const started = performance.now()
    const result = await connectUpstream(decision.addresses.slice(0, 1), {
      port,
      timeoutMs: this.#deps.connectTimeoutMs,
      highWaterMark: runtime.limits.highWaterMark,
      ...(subscriber === undefined ? {} : { localAddress: subscriber }),
      signal: this.#conn.signal
    })
    if (this.#conn.settled) {
      if (result.ok) result.socket.destroy()
      return
    }
    this.#onUpstream(result, (performance.now() - started) / 1000, formatEndpoint(dst))
  }

  #onUpstream (result: UpstreamResult, seconds: number, dstText: string): void {
    const m = this.#deps.metrics
    if (!result.ok) {
      m.upstreamConnectFailures.inc({ reason: result.reason })
      // what a refusing server would do; counted as the upstream failure above
      this.#conn.refuse({ close: 'reset', why: `upstream connect failed: ${result.errno}; resetting the subscriber` })
      return
    }
    m.upstreamConnectDuration.observe({ mode: MODE }, seconds)
    const upstream = result.socket
    this.#conn.relayTo(upstream, {
      limits: this.#deps.runtime().limits,
      session: { mode: MODE, dst: dstText, upstream: formatLocal(upstream) }
    })
    m.handshakeDuration.observe({ mode: MODE }, 0)
  }

  /** Every refusal is answered with a reset; it is counted as the policy says (RefusalCount). */
  #refuse (count: RefusalCount, why: string): void {
    if (count.kind === 'upstream') this.#deps.metrics.upstreamConnectFailures.inc({ reason: count.reason }) // not reached: a literal needs no lookup
    this.#conn.refuse({ close: 'reset', ...(count.kind === 'rejected' ? { count: count.reason } : {}), why })
  }
}
