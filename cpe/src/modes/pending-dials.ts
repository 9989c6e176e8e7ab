/**
 * The upstream connects still in progress, of every mode (socks5, convert, transparent), and their
 * one internal re-dial when the access they left over dies (docs/failover.md, "Connects caught in
 * the detection window"). A connect whose SYN left over DSL inside the detection window keeps its
 * source address: without this it waits for SYN retransmissions into a dead path until the mode's
 * deadline resets the LAN connection.
 *
 * - `pathDone(path, 'down')` is called by the failover controller once it has steered new connects
 *   away and before it withdraws the path (`ip mptcp endpoint delete id 0 <address>` resets the
 *   path's SYN_SENT connects with EPIPE), so a re-dial takes the live access; the attempts to
 *   re-dial are chosen by redial-plan.ts from each socket's tcpi_state (SYN_SENT only) and path.
 * - While a path is down (as far as the failover controller has acted) and attempts are pending, a
 *   sweep every `sweepMs` re-dials attempts pending longer than `boundMs` on a down path.
 * An entry is removed before its `redial` runs; the connection registers no second entry (one
 * re-dial per LAN connection). Counted in hybrid_upstream_redials_total{mode,reason}, logged at info.
 */
import type net from 'node:net'
import { performance } from 'node:perf_hooks'
import type { Logger } from '../../../shared/src/log.ts'
import type { Mode } from '../../../shared/src/metrics/labels.ts'
import { tcpInfo } from '../../../shared/src/net/sockopt.ts'
import type { CpeMetrics } from '../metrics.ts'
import { attemptsToRedial, type PendingAttempt, type RedialReason, type RedialTrigger } from './redial-plan.ts'

export interface PendingDial {
  readonly mode: Mode
  readonly socket: net.Socket
  /** The connection's logger (the re-dial is logged there). */
  readonly log: Logger
  /** Abort this attempt and dial the same upstream again (at most once per connection). */
  readonly redial: (reason: RedialReason) => void
}

export interface PendingDialsOptions {
  readonly metrics: Pick<CpeMetrics, 'upstreamRedials'>
  /** Uplink name of a local address (PathMonitor.pathOf). */
  readonly pathOf: (address: string | undefined) => string | undefined
  /** Where new connects are steered now (failover view), for attempts without a local address yet. */
  readonly steeredTo: () => string | undefined
  /** Pending longer than this on a down path: re-dialled by the sweep (health detection time). */
  readonly boundMs: number
  readonly sweepMs: number
  /** Tests: tcpi_state of a socket (default TCP_INFO; undefined when unreadable). */
  readonly tcpState?: (socket: net.Socket) => number | undefined
  readonly now?: () => number
}

interface Entry { readonly dial: PendingDial, readonly at: number, readonly steered: string | undefined }

const tcpStateOf = (socket: net.Socket): number | undefined => {
  try { return tcpInfo(socket).state } catch { return undefined }
}

export class PendingDials {
  readonly #o: PendingDialsOptions
  readonly #now: () => number
  readonly #entries = new Map<number, Entry>()
  readonly #down = new Set<string>()
  #nextId = 0
  #timer: NodeJS.Timeout | undefined

  constructor (o: PendingDialsOptions) {
    this.#o = o
    this.#now = o.now ?? (() => performance.now())
  }

  get size (): number { return this.#entries.size }

  /** Register an attempt just dialled; returns its removal (call it once the handshake is over or the connection is gone). */
  add (dial: PendingDial): () => void {
    const id = ++this.#nextId
    this.#entries.set(id, { dial, at: this.#now(), steered: this.#o.steeredTo() })
    this.#schedule()
    return () => { if (this.#entries.delete(id)) this.#schedule() }
  }

  /** The failover controller has steered for a transition of `path` (new connects avoid a dead path). */
  pathDone (path: string, state: 'up' | 'down'): void {
    if (state === 'up') { this.#down.delete(path); this.#schedule(); return }
    this.#down.add(path)
    this.#run({ kind: 'path_down', path })
    this.#schedule()
  }

  /** One sweep (the timer's tick). */
  sweep (): void {
    this.#run({ kind: 'sweep', downPaths: this.#down, boundMs: this.#o.boundMs })
  }

  stop (): void {
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#entries.clear()
  }

  #run (trigger: RedialTrigger): void {
    if (this.#entries.size === 0) return
    const now = this.#now()
    const attempts: PendingAttempt[] = []
    const paths = new Map<number, string | undefined>()
    for (const [id, e] of this.#entries) {
      const path = this.#o.pathOf(e.dial.socket.localAddress) ?? e.steered
      paths.set(id, path)
      attempts.push({ id, tcpState: (this.#o.tcpState ?? tcpStateOf)(e.dial.socket), path, ageMs: now - e.at })
    }
    for (const d of attemptsToRedial(attempts, trigger)) {
      const e = this.#entries.get(d.id)
      if (e === undefined) continue
      this.#entries.delete(d.id)
      this.#o.metrics.upstreamRedials.inc({ mode: e.dial.mode, reason: d.reason })
      const path = paths.get(d.id) ?? null
      e.dial.log.info({ path, reason: d.reason, ms: Math.round(now - e.at) },
        `upstream connect on ${path ?? 'an unknown path'} still unanswered after the path went down; dialling again`)
      try { e.dial.redial(d.reason) } catch (err) { e.dial.log.warn({ err }, 'redial failed') }
    }
    this.#schedule()
  }

  /** The sweep timer runs only while a path is down and attempts are pending. */
  #schedule (): void {
    const want = this.#entries.size > 0 && this.#down.size > 0
    if (want && this.#timer === undefined) this.#timer = setInterval(() => { this.sweep() }, this.#o.sweepMs).unref()
    if (!want && this.#timer !== undefined) { clearInterval(this.#timer); this.#timer = undefined }
  }
}
