/**
 * SOCKS5 towards the concentrator for one intercepted LAN connection (mode `socks5`).
 *
 *   accept ─┬─ dial the concentrator (MPTCP, TFO: nothing is sent yet)
 *           └─ collect the LAN client's first bytes for ≤ socks5.coalesceMs
 *   then ONE write: greeting + [auth] + CONNECT <original destination literal> + first bytes (the TFO
 *   SYN), or stepwise (greeting, then each message as the server answers) for a concentrator known not
 *   to accept pipelining. Replies are parsed by `Socks5ClientParser` under socks5.replyTimeoutMs.
 *   success → relay (leftover reply bytes go to the LAN client first); failure → LAN reset.
 *
 * Pipelining refused (`auto`), judged on evidence about the concentrator, not about one destination
 * (pipelining-evidence.ts): the credentials probe is conclusive (remembered as stepwise, this
 * connection retried stepwise); a wrong-shaped reply, a FIN/reset before any method reply, or only the
 * greeting answered before a FIN, close or the deadline is a suspicion: retried stepwise once, and
 * remembered only if that retry gets a CONNECT reply.
 * A FIN from the concentrator before its reply ends the attempt at once (the upstream runs
 * allowHalfOpen, so no 'close' follows): counted `closed`, LAN reset (docs/cpe.md).
 *
 * The lifecycle (LAN socket handlers, the reply deadline, the reset, the relay with its session entry
 * and path accounting, the single `done()`) is the shared `ProxiedConnection` (cpe-connection.ts);
 * this class is the strategy: dial, handshake, judge, retry. A Convert fallback runs it on the
 * Convert connection's own lifecycle object. Nothing is thrown out of a handler.
 */
import type net from 'node:net'
import { Socks5ClientParser } from '../../../shared/src/codec/socks5-client-parser.ts'
import type { Socks5ClientEvent } from '../../../shared/src/codec/socks5-client-parser.ts'
import type { Logger } from '../../../shared/src/log.ts'
import type { DataPlane } from '../../../shared/src/net/data-plane.ts'
import { errnoOf } from '../../../shared/src/net/connect-error.ts'
import { formatEndpoint } from '../../../shared/src/net/endpoint.ts'
import type { RelayEndReason } from '../../../shared/src/net/relay.ts'
import type { CpeLimits } from '../config/limits.ts'
import type { Socks5Config } from '../config/socks5.ts'
import type { OriginalDestination } from '../intercept/interceptor.ts'
import type { CpeSessionTable } from '../mgmt/session-table.ts'
import type { CpeMetrics } from '../metrics.ts'
import type { PathMonitor } from '../paths/path-monitor.ts'
import { cpeConnectionOf, relayUpstream, type CpeConnection } from './cpe-connection.ts'
import { collectFirstBytes, type FirstBytes } from './first-bytes.ts'
import type { PendingDials } from './pending-dials.ts'
import { concentratorKey, type PipeliningMemory } from './pipelining-memory.ts'
import { pipeliningEvidence, type PipelinedFailure } from './pipelining-evidence.ts'
import { attemptFailure, outcomeFor, type AttemptFailure } from './reply-action.ts'
import { dialConcentrator, upstreamFacts, type DialFn, type UpstreamDialSettings } from './upstream.ts'

/** What a connection reads from the configuration at accept (a reload affects later connections). */
export interface Socks5Settings extends UpstreamDialSettings {
  socks5: Socks5Config
  limits: CpeLimits
}

export interface Socks5Deps {
  readonly metrics: CpeMetrics
  readonly sessions: CpeSessionTable
  readonly paths: PathMonitor
  readonly pipelining: PipeliningMemory
  /** Re-dial once when the access of a still unanswered connect dies (pending-dials.ts). */
  readonly redials?: PendingDials
  readonly dial?: DialFn
  /** Who moves the relayed bytes (docs/data-plane.md); absent: the stream relay. */
  readonly dataPlane?: DataPlane
}

export interface Socks5ConnInfo {
  readonly id: number
  readonly destination: OriginalDestination
  readonly log: Logger
  /** Called exactly once when the connection is gone. */
  readonly onDone: () => void
}

interface Attempt {
  readonly socket: net.Socket
  readonly parser: Socks5ClientParser
  readonly pipelined: boolean
  readonly started: number
  firstByteAt: number | undefined
  errno: string | undefined
}

export class Socks5Upstream {
  readonly #conn: CpeConnection
  readonly #info: Socks5ConnInfo
  readonly #deps: Socks5Deps
  readonly #s: Socks5Settings
  readonly #key: string
  readonly #accepted = performance.now()
  readonly #acceptedAt = Date.now()
  #socket: net.Socket | undefined
  #attempt: Attempt | undefined
  #first: Buffer | undefined
  #probe: NodeJS.Timeout | undefined
  #retried = false
  /** Why the pipelined attempt looked like a refusal that the stepwise retry must confirm. */
  #suspect: string | undefined
  #redialled = false
  #unwatch: (() => void) | undefined

  /**
   * `lan`: the LAN socket, or the lifecycle object of a Convert connection falling back (`collected`:
   * the LAN client's first bytes it already read — they cannot be pushed back once the client's FIN
   * was read — so no second collection window).
   */
  constructor (lan: net.Socket | CpeConnection, info: Socks5ConnInfo, settings: Socks5Settings, deps: Socks5Deps, collected?: FirstBytes) {
    this.#conn = cpeConnectionOf(lan, 'socks5', info, deps)
    this.#info = info
    this.#deps = deps
    this.#s = settings
    this.#key = concentratorKey(settings.concentrator.host, settings.concentrator.port)
    this.#conn.signal.addEventListener('abort', this.#onGone, { once: true })
    this.#dial()
    const first = collected === undefined
      ? collectFirstBytes(this.#conn.socket,
        { windowMs: settings.socks5.coalesceMs, maxBytes: settings.limits.earlyDataMaxBytes })
      : Promise.resolve(collected)
    first.then(({ data }) => { this.#first = data; this.#begin() }, () => {})
    info.log.debug({ dst: formatEndpoint(info.destination) }, 'open')
  }

  get relaying (): boolean { return this.#conn.relaying }

  /** Shutdown: a relay ends with `reason` (after a last path sample); a handshake is reset, not counted. */
  abort (reason: RelayEndReason): void {
    if (this.#conn.relaying) this.#conn.abort(reason)
    else this.#conn.refuse({ close: 'reset', why: `aborted (${reason})` })
  }

  #dial (): void {
    const r = dialConcentrator(this.#s, this.#deps.dial, this.#info.destination)
    if (!r.ok) {
      this.#info.log.debug({ err: r.error }, 'concentrator dial refused')
      queueMicrotask(() => { this.#fail({ type: 'connect', errno: r.errno }) })
      return
    }
    const socket = r.socket
    this.#socket = socket
    socket.on('error',
      (err: Error & { code?: string }) => { if (this.#attempt?.socket === socket || this.#socket === socket) this.#onUpError(socket, err) })
    socket.on('close', () => { if (this.#socket === socket) this.#onUpClose() })
    socket.on('end', () => { if (this.#socket === socket) this.#onUpEnd() })
    this.#watch(socket)
    if (this.#first !== undefined) this.#begin()
  }

  /** Register the attempt for one re-dial if its access dies before the concentrator answers. */
  #watch (socket: net.Socket): void {
    this.#unwatch?.()
    this.#unwatch = this.#redialled
      ? undefined
      : this.#deps.redials?.add({
        mode: 'socks5',
        socket,
        log: this.#info.log,
        redial: () => { this.#redial(socket) }
      })
  }

  #stopWatching (): void {
    this.#unwatch?.()
    this.#unwatch = undefined
  }

  /** Drop the unanswered attempt (its SYN left over a dead access) and dial again: the steering has moved. */
  #redial (socket: net.Socket): void {
    if (this.#conn.settled || this.#conn.relaying || this.#socket !== socket) return
    this.#redialled = true
    this.#unwatch = undefined
    this.#dropAttempt(socket)
    this.#dial()
  }

  #dropAttempt (socket: net.Socket): void {
    this.#clearTimers()
    this.#attempt = undefined
    this.#socket = undefined
    socket.destroy()
  }

  /** Both the socket and the first bytes are there: write the handshake. */
  #begin (): void {
    const socket = this.#socket
    if (this.#conn.settled || socket === undefined || this.#first === undefined || this.#attempt !== undefined) return
    const pipelined = this.#suspect === undefined && this.#deps.pipelining.shouldPipeline(this.#s.socks5.pipelining, this.#key)
    const { username, password } = this.#s.socks5
    const auth = username !== undefined && password !== undefined ? { username, password } : undefined
    let parser: Socks5ClientParser
    try {
      const d = this.#info.destination
      parser = new Socks5ClientParser({
        address: { type: d.family === 6 ? 'ipv6' : 'ipv4', host: d.address, port: d.port },
        ...(auth === undefined ? {} : { auth }),
        ...(pipelined && this.#first.length > 0 ? { earlyData: this.#first } : {}),
        pipelined
      })
    } catch (err) {
      this.#info.log.debug({ err }, 'cannot encode the SOCKS5 request')
      this.#fail({ type: 'protocol' })
      return
    }
    const attempt: Attempt = { socket, parser, pipelined, started: performance.now(), firstByteAt: undefined, errno: undefined }
    this.#attempt = attempt
    socket.on('data', (chunk: Buffer) => { if (this.#attempt === attempt) this.#onUpData(attempt, chunk) })
    this.#conn.deadline(this.#s.socks5.replyTimeoutMs, () => { this.#onDeadline(attempt) })
    socket.write(parser.initial)
  }

  #onUpData (a: Attempt, chunk: Buffer): void {
    a.firstByteAt ??= performance.now()
    for (const ev of a.parser.feed(chunk)) {
      if (this.#conn.settled || this.#attempt !== a) return
      this.#handle(a, ev)
    }
  }

  #handle (a: Attempt, ev: Socks5ClientEvent): void {
    switch (ev.type) {
      case 'send': a.socket.write(ev.data); return
      case 'method-selected':
        if (a.pipelined && this.#s.socks5.pipelining === 'auto' && this.#s.socks5.username !== undefined) {
          this.#probe = setTimeout(() => { if (a.parser.greetingOnly) this.#judge(a, 'probe', { type: 'protocol' }) }, this.#s.socks5.probeMs)
        }
        return
      case 'connected': this.#onConnected(a, ev.leftover); return
      case 'failure': this.#onFailure(a, attemptFailure(ev.code, ev.rep)); break
      default: // authenticated, data: nothing to do
    }
  }

  #onUpError (socket: net.Socket, err: Error): void {
    const errno = errnoOf(err)
    if (this.#attempt !== undefined && this.#attempt.socket === socket) this.#attempt.errno = errno
    if (!this.#conn.relaying && this.#attempt === undefined) this.#fail({ type: 'connect', errno })
  }

  /** A failure reply: a wrong-shaped one to a pipelined handshake may mean the server misread it. */
  #onFailure (a: Attempt, f: AttemptFailure): void {
    if (f.type === 'rep') this.#confirmSuspect(a)
    if (f.type === 'protocol') this.#judge(a, 'bad-reply', f)
    else this.#fail(f)
  }

  /** The concentrator closed before the relay started. */
  #onUpClose (): void {
    if (this.#conn.relaying || this.#conn.settled) return
    const a = this.#attempt
    if (a === undefined) { this.#fail({ type: 'connect', errno: undefined }); return }
    this.#judge(a, 'close', a.firstByteAt === undefined && a.errno !== undefined ? { type: 'connect', errno: a.errno } : { type: 'closed' })
  }

  /** FIN from the concentrator before its reply: nothing more will come, fail now (not at the deadline). */
  #onUpEnd (): void {
    if (!this.#conn.relaying && !this.#conn.settled) this.#judge(this.#attempt, 'fin', { type: 'fin' })
  }

  #onDeadline (a: Attempt): void {
    if (this.#attempt === a && !this.#conn.settled) this.#judge(a, 'deadline', { type: 'timeout' })
  }

  /** A pipelined attempt (`auto`) that may have failed for want of pipelining is retried stepwise; else `failure`. */
  #judge (a: Attempt | undefined, event: PipelinedFailure['event'], failure: AttemptFailure): void {
    const j = a !== undefined && a.pipelined && this.#s.socks5.pipelining === 'auto'
      ? pipeliningEvidence({ event, greetingOnly: a.parser.greetingOnly, silent: a.firstByteAt === undefined, errno: a.errno })
      : undefined
    if (a === undefined || j === undefined || j.evidence === 'none') this.#fail(failure)
    else this.#pipeliningRefused(a, j.why, failure, j.evidence === 'conclusive')
  }

  /**
   * Retry this connection once, stepwise. `conclusive`: remember the concentrator as stepwise now;
   * otherwise only if the stepwise retry gets a CONNECT reply (`#confirmSuspect`). Without a retry
   * left, the attempt fails as `failure`.
   */
  #pipeliningRefused (a: Attempt, why: string, failure: AttemptFailure, conclusive: boolean): void {
    if (this.#attempt !== a || this.#conn.settled) return
    if (conclusive) this.#deps.pipelining.recordRefused(this.#key)
    this.#info.log[conclusive ? 'info' : 'debug']({ concentrator: this.#key, why, conclusive },
      'pipelined SOCKS5 handshake not answered; retrying stepwise')
    if (this.#retried) { this.#fail(failure); return }
    this.#dropAttempt(a.socket)
    this.#retried = true
    this.#suspect = conclusive ? undefined : why
    this.#dial()
  }

  /** A stepwise retry got a CONNECT reply where the pipelined attempt got none: the concentrator is the cause. */
  #confirmSuspect (a: Attempt): void {
    if (a.pipelined || this.#suspect === undefined) return
    this.#deps.pipelining.recordRefused(this.#key)
    this.#info.log.info({ concentrator: this.#key, why: this.#suspect },
      'concentrator answers a stepwise SOCKS5 handshake but not a pipelined one; going stepwise')
    this.#suspect = undefined
  }

  #onConnected (a: Attempt, leftover: Buffer): void {
    this.#clearTimers()
    this.#stopWatching()
    const m = this.#deps.metrics
    const socket = a.socket
    if (a.pipelined) this.#deps.pipelining.recordAccepted(this.#key)
    else this.#confirmSuspect(a)
    socket.removeAllListeners('data')
    socket.pause()
    if (leftover.length > 0) socket.unshift(leftover)
    const facts = upstreamFacts(socket)
    const path = this.#deps.paths.pathOf(socket.localAddress)
    if (facts.tfo !== undefined && path !== undefined) m.tfoOutcomes.inc({ path, result: facts.tfo })
    if (facts.fallback !== undefined) m.mptcpFallbacks.inc({ reason: facts.fallback })
    m.upstreamConnectDuration.observe({ mode: 'socks5' }, ((a.firstByteAt ?? performance.now()) - a.started) / 1000)
    m.handshakeDuration.observe({ mode: 'socks5' }, (performance.now() - this.#accepted) / 1000)
    this.#startRelay(a, path, facts.tfo ?? 'none', facts.mptcp)
  }

  /** Stepwise, the first bytes are the relay's early data; pipelined, they went inside the handshake. */
  #startRelay (a: Attempt, path: string | undefined, tfo: string, mptcp: boolean): void {
    const first = this.#first ?? Buffer.alloc(0)
    this.#first = undefined
    relayUpstream(this.#conn, a.socket, {
      limits: this.#s.limits,
      session: { dst: formatEndpoint(this.#info.destination), upstream: this.#key, pipelined: a.pipelined, tfo, path },
      mptcp,
      track: true,
      ...(a.pipelined ? { sentInHandshake: first.length } : { earlyData: first }),
      started: this.#acceptedAt
    }, this.#deps)
    this.#info.log.debug({ pipelined: a.pipelined, mptcp, tfo, path }, 'relaying')
  }

  /** Count, reset the LAN connection (the application sees a failed connect); the upstream closes on the abort. */
  #fail (f: AttemptFailure): void {
    if (this.#conn.settled || this.#conn.relaying) return
    const { count } = outcomeFor(f)
    if (count.kind !== 'rejected') this.#deps.metrics.upstreamConnectFailures.inc({ reason: count.reason })
    this.#conn.refuse({
      close: 'reset',
      ...(count.kind === 'rejected' ? { count: count.reason } : {}),
      why: `concentrator refused or failed: ${JSON.stringify(f)}; resetting the LAN connection`
    })
  }

  /** Refused or gone (the connection's signal): drop the attempt and the timers. */
  readonly #onGone = (): void => {
    clearTimeout(this.#probe)
    this.#stopWatching()
    if (!this.#conn.relaying) this.#socket?.destroy()
  }

  #clearTimers (): void {
    this.#conn.clearDeadline()
    clearTimeout(this.#probe)
  }
}
