/**
 * Transparent (on-path HAG) mode of the concentrator: the IP_TRANSPARENT MPTCP listeners on
 * `transparent.listenPort` (0.0.0.0 and ::), the system state (hag-setup.ts: nft TPROXY table,
 * fwmark routing, join endpoints, C-flag sysctl) and one TransparentConnection per intercepted
 * connection. Created by concentrator.ts when `transparent.enabled`.
 *
 * start(): listeners first, then the system state (a TPROXY rule without a listener would not
 * match anyway, but this way the first intercepted SYN already finds one).
 * Admission and drain are the daemon's (shared/src/daemon/admission.ts, one for every accept path):
 * the concentrator stops admitting and drains with the listeners and rules still in place (MP_JOINs
 * of draining connections), then stop() removes the system state (open: the table goes; closed: it
 * stays) and closes the listeners.
 */
import type { JournalRecorder } from '../../../shared/src/sys/crash-journal.ts'
import type net from 'node:net'
import { childFor } from '../../../shared/src/log.ts'
import type { Logger } from '../../../shared/src/log.ts'
import { listen } from '../../../shared/src/net/listen.ts'
import { formatLocal, formatRemote } from '../../../shared/src/net/endpoint.ts'
import { armResetOnClose, isMptcpFallback } from '../../../shared/src/net/sockopt.ts'
import { ConfigError } from '../../../shared/src/errors.ts'
import { formatCheckProblem } from '../../../shared/src/config/problem.ts'
import type { CommandRunner } from '../../../shared/src/sys/command.ts'
import { rejectedLabel, type Admitter } from '../../../shared/src/daemon/admission.ts'
import { sourceKey } from '../accept/source-address.ts'
import type { TransparentConfig } from '../config/transparent.ts'
import type { ConcentratorMetrics } from '../metrics.ts'
import type { Runtime } from '../runtime.ts'
import type { SessionTable } from '../mgmt/session-table.ts'
import { planProblems } from './hag-plan.ts'
import { HagSetup } from './hag-setup.ts'
import { TransparentConnection } from './transparent-connection.ts'
import type { DataPlane } from '../../../shared/src/net/data-plane.ts'

export interface TransparentModeDeps {
  readonly config: TransparentConfig
  readonly log: Logger
  readonly metrics: ConcentratorMetrics
  readonly sessions: SessionTable
  readonly runtime: () => Runtime
  /** The daemon's admission (caps, overload, ids and drain shared with the other listeners). */
  readonly admission: Admitter<TransparentConnection>
  /** The caps key of a source address (IPv6 by prefix). */
  readonly sourceKey: (source: string) => string
  readonly highWaterMark: number
  /** Who moves the relayed bytes (docs/data-plane.md); absent: the stream relay. */
  readonly dataPlane?: DataPlane
  readonly run?: CommandRunner
  readonly commandPrefix?: readonly string[]
  /** The daemon's crash journal (what the HAG setup changes is recorded before it is made). */
  readonly journal?: JournalRecorder
  /**
   * A worker of `workers` > 1 (docs/scale-out.md, "Many cores on one machine"): only the listeners,
   * bound with SO_REUSEPORT (TPROXY's listener lookup picks one socket of the group); the system
   * state (HagSetup) is the supervisor's, applied once. Default false.
   */
  readonly worker?: boolean
}

export interface TransparentMode {
  start: () => Promise<void>
  /** Remove the system state and close the listeners (after the daemon's drain). */
  stop: () => Promise<void>
  readonly ruleset: () => string
}

/** One intercepted connection: admission (caps, overload, drain), the MPTCP gauges, its TransparentConnection. */
function acceptTransparent (socket: net.Socket, deps: TransparentModeDeps, log: Logger): void {
  const m = deps.metrics
  const c = deps.config
  socket.on('error', () => {})
  m.connectionsAccepted.inc({ mode: 'transparent' })
  if (!deps.admission.admitting) { socket.resetAndDestroy(); return }
  const source = sourceKey(socket.remoteAddress)
  // No signalling handshake to wait for: intercepted subscriber traffic is not in the unauthenticated budget.
  const admitted = deps.admission.admit(deps.sourceKey(source), {
    authenticated: true,
    log: { base: log, fields: { mode: 'transparent', src: formatRemote(socket), dst: formatLocal(socket) } }
  })
  if (!admitted.ok) {
    m.connectionsRejected.inc({ mode: 'transparent', reason: rejectedLabel(admitted.reason) })
    socket.resetAndDestroy()
    return
  }
  const { ticket } = admitted
  armResetOnClose(socket) // a process death during the upstream dial resets the client (limits.md)
  let mptcp = false
  try { mptcp = !isMptcpFallback(socket) } catch { mptcp = false }
  if (!mptcp) m.mptcpFallbacks.inc({ reason: 'other' })
  m.connectionsActive.inc({ mode: 'transparent' })
  if (mptcp) m.mptcpConnectionsActive.inc()
  ticket.attach(new TransparentConnection(socket, {
    id: ticket.id,
    mptcp,
    log: ticket.log ?? log,
    onDone: () => {
      m.connectionsActive.dec({ mode: 'transparent' })
      if (mptcp) m.mptcpConnectionsActive.dec()
      ticket.release()
    }
  }, {
    metrics: m,
    sessions: deps.sessions,
    runtime: deps.runtime,
    sourceAddress: c.sourceAddress,
    connectTimeoutMs: c.connectTimeoutMs,
    dataPlane: deps.dataPlane
  }))
}

/** One IP_TRANSPARENT MPTCP listener on `transparent.listenPort` (SO_REUSEPORT in a worker). */
async function bindTransparent (host: string, deps: TransparentModeDeps, ownsSetup: boolean, onConnection: (s: net.Socket) => void,
  log: Logger): Promise<net.Server> {
  const port = deps.config.listenPort
  const server = await listen({
    host,
    port,
    protocol: 'mptcp',
    transparent: true,
    allowHalfOpen: true,
    pauseOnConnect: true,
    highWaterMark: deps.highWaterMark,
    ...(ownsSetup ? {} : { reusePort: true }),
    ...(host.includes(':') ? { v6Only: true } : {})
  }, onConnection)
  server.on('error', (err) => { log.error({ err, host, port }, 'transparent listener error') })
  return server
}

export function createTransparentMode (deps: TransparentModeDeps): TransparentMode {
  const c = deps.config
  const problems = planProblems(c)
  if (problems.length > 0) {
    throw new ConfigError('HYBRID_ERR_CONFIG_INVALID', problems.map(formatCheckProblem).join('; '),
      { detail: { key: 'transparent' } })
  }
  const log = childFor(deps.log, 'transparent')
  const servers: net.Server[] = []
  const setup = new HagSetup({
    config: c,
    log,
    ...(deps.run === undefined ? {} : { run: deps.run }),
    ...(deps.commandPrefix === undefined ? {} : { commandPrefix: deps.commandPrefix }),
    ...(deps.journal === undefined ? {} : { journal: deps.journal })
  })
  const ownsSetup = deps.worker !== true

  const onConnection = (socket: net.Socket): void => { acceptTransparent(socket, deps, log) }

  const bind = async (host: string): Promise<void> => { servers.push(await bindTransparent(host, deps, ownsSetup, onConnection, log)) }

  const closeServers = async (): Promise<void> => {
    for (const s of servers.splice(0)) s.close()
    await new Promise<void>((resolve) => { setImmediate(resolve) })
  }

  return {
    start: async () => {
      try {
        await bind('0.0.0.0')
        if (c.ipv6) await bind('::')
        if (ownsSetup) await setup.apply()
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
    stop: async () => {
      try {
        if (ownsSetup) await setup.remove()
      } finally {
        await closeServers()
      }
      log.info('transparent mode off')
    },
    ruleset: () => setup.ruleset
  }
}
