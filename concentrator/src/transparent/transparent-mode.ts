/**
 * Transparent (on-path HAG) mode of the concentrator: the IP_TRANSPARENT MPTCP listeners on
 * `transparent.listenPort` (0.0.0.0 and ::), the system state (hag-setup.ts: nft TPROXY table,
 * fwmark routing, join endpoints, C-flag sysctl) and one TransparentConnection per intercepted
 * connection. Created by concentrator.ts when `transparent.enabled`.
 *
 * start(): listeners first, then the system state (a TPROXY rule without a listener would not
 * match anyway, but this way the first intercepted SYN already finds one).
 * stop(): stop accepting → drain (listeners stay open: MP_JOINs of draining connections) → abort
 * the rest → remove the system state (open: the table goes; closed: it stays) → close listeners.
 */
import type { JournalRecorder } from '../../../shared/src/sys/crash-journal.ts'
import type net from 'node:net'
import { connLogger, childFor } from '../../../shared/src/log.ts'
import type { Logger } from '../../../shared/src/log.ts'
import { listen } from '../../../shared/src/net/listen.ts'
import { armResetOnClose, isMptcpFallback } from '../../../shared/src/net/sockopt.ts'
import { ConfigError } from '../../../shared/src/errors.ts'
import { formatCheckProblem } from '../../../shared/src/config/problem.ts'
import type { CommandRunner } from '../../../shared/src/sys/command.ts'
import type { Acquired } from '../../../shared/src/net/connection-caps.ts'
import { sourceKey } from '../accept/source-address.ts'
import type { TransparentConfig } from '../config-transparent.ts'
import type { ConcentratorMetrics } from '../metrics.ts'
import type { Runtime } from '../runtime.ts'
import type { SessionTable } from '../session-table.ts'
import { planProblems } from './hag-plan.ts'
import { HagSetup } from './hag-setup.ts'
import { plainAddress, TransparentConnection } from './transparent-connection.ts'

export interface TransparentModeDeps {
  readonly config: TransparentConfig
  readonly log: Logger
  readonly metrics: ConcentratorMetrics
  readonly sessions: SessionTable
  readonly runtime: () => Runtime
  /** The daemon's connection caps (shared with the other listeners). */
  /** A caps slot, or why not (`overload`: the overload manager refuses new connections). */
  readonly acquire: (source: string) => Acquired | { ok: false, reason: 'overload' }
  /** Session ids shared with the other modes. */
  readonly nextId: () => number
  readonly highWaterMark: number
  readonly run?: CommandRunner
  readonly commandPrefix?: readonly string[]
  /** The daemon's crash journal (what the HAG setup changes is recorded before it is made). */
  readonly journal?: JournalRecorder
}

export interface TransparentMode {
  start: () => Promise<void>
  /** Stop accepting new intercepted connections (listeners stay open). */
  stopAccepting: () => void
  /** Wait ≤ timeoutMs for the live connections, abort the rest, remove the system state, close. */
  stop: (drainTimeoutMs: number) => Promise<void>
  readonly active: () => number
  readonly ruleset: () => string
}

export function createTransparentMode (deps: TransparentModeDeps): TransparentMode {
  const c = deps.config
  const problems = planProblems(c)
  if (problems.length > 0) {
    throw new ConfigError('HYBRID_ERR_CONFIG_INVALID', problems.map(formatCheckProblem).join('; '),
      { detail: { key: 'transparent' } })
  }
  const log = childFor(deps.log, 'transparent')
  const live = new Set<TransparentConnection>()
  const servers: net.Server[] = []
  let accepting = true
  let onIdle: (() => void) | undefined
  const setup = new HagSetup({
    config: c,
    log,
    ...(deps.run === undefined ? {} : { run: deps.run }),
    ...(deps.commandPrefix === undefined ? {} : { commandPrefix: deps.commandPrefix }),
    ...(deps.journal === undefined ? {} : { journal: deps.journal })
  })
  const m = deps.metrics

  const onConnection = (socket: net.Socket): void => {
    socket.on('error', () => {})
    m.connectionsAccepted.inc({ mode: 'transparent' })
    if (!accepting) { socket.resetAndDestroy(); return }
    const source = sourceKey(socket.remoteAddress)
    const slot = deps.acquire(source)
    if (!slot.ok) {
      m.connectionsRejected.inc({ mode: 'transparent', reason: slot.reason })
      socket.resetAndDestroy()
      return
    }
    armResetOnClose(socket) // a process death during the upstream dial resets the client (limits.md)
    let mptcp = false
    try { mptcp = !isMptcpFallback(socket) } catch { mptcp = false }
    if (!mptcp) m.mptcpFallbacks.inc({ reason: 'other' })
    m.connectionsActive.inc({ mode: 'transparent' })
    if (mptcp) m.mptcpConnectionsActive.inc()
    const id = deps.nextId()
    const dst = `${plainAddress(socket.localAddress) ?? '?'}:${socket.localPort ?? 0}`
    const conn = new TransparentConnection(socket, {
      id,
      mptcp,
      log: connLogger(log, id, { mode: 'transparent', src: `${plainAddress(socket.remoteAddress) ?? '?'}:${socket.remotePort ?? 0}`, dst }),
      onDone: () => {
        slot.release()
        m.connectionsActive.dec({ mode: 'transparent' })
        if (mptcp) m.mptcpConnectionsActive.dec()
        live.delete(conn)
        if (live.size === 0) onIdle?.()
      }
    }, { metrics: m, sessions: deps.sessions, runtime: deps.runtime, sourceAddress: c.sourceAddress, connectTimeoutMs: c.connectTimeoutMs })
    live.add(conn)
  }

  const bind = async (host: string): Promise<void> => {
    const server = await listen({
      host,
      port: c.listenPort,
      protocol: 'mptcp',
      transparent: true,
      allowHalfOpen: true,
      pauseOnConnect: true,
      highWaterMark: deps.highWaterMark,
      ...(host.includes(':') ? { v6Only: true } : {})
    }, onConnection)
    server.on('error', (err) => { log.error({ err, host, port: c.listenPort }, 'transparent listener error') })
    servers.push(server)
  }

  const closeServers = async (): Promise<void> => {
    for (const s of servers.splice(0)) s.close()
    await new Promise<void>((resolve) => { setImmediate(resolve) })
  }

  const waitIdle = async (ms: number): Promise<void> => {
    if (live.size === 0) return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms)
      onIdle = () => { clearTimeout(timer); resolve() }
    })
    onIdle = undefined
  }

  return {
    start: async () => {
      try {
        await bind('0.0.0.0')
        if (c.ipv6) await bind('::')
        await setup.apply()
      } catch (err) {
        await closeServers()
        throw err
      }
      log.info({
        listenPort: c.listenPort,
        accessInterfaces: c.accessInterfaces,
        joinEndpoints: c.joinEndpoints,
        failMode: c.failMode,
        sourceAddress: c.sourceAddress
      }, 'transparent mode on')
    },
    stopAccepting: () => { accepting = false },
    stop: async (drainTimeoutMs) => {
      accepting = false
      await waitIdle(drainTimeoutMs)
      for (const conn of [...live]) conn.abort('drain')
      await waitIdle(1000)
      try {
        await setup.remove()
      } finally {
        await closeServers()
      }
      log.info('transparent mode off')
    },
    active: () => live.size,
    ruleset: () => setup.ruleset
  }
}
