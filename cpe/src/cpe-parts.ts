/**
 * The CPE agent's parts in start order (shared/src/daemon/start-stop.ts stops them in reverse after
 * the drain, or after a failed start). Every change to the namespace is journalled first
 * (crash-journal.ts). Each part fills in its field of the agent's state (cpe-state.ts) and empties
 * it again at stop.
 */
import { ConfigError } from '../../shared/src/errors.ts'
import { formatCheckProblem } from '../../shared/src/config/problem.ts'
import { childFor, type Logger } from '../../shared/src/log.ts'
import { listenMgmt, type MgmtApp } from '../../shared/src/mgmt/mgmt-server.ts'
import { ConnectionCaps, effectiveMaxConnections } from '../../shared/src/net/connection-caps.ts'
import type { Startable } from '../../shared/src/daemon/start-stop.ts'
import { warmUp } from '../../shared/src/daemon/warm-up.ts'
import { openJournalAndRecover, type JournalRecorder } from '../../shared/src/sys/crash-journal.ts'
import { runCommand } from '../../shared/src/sys/command.ts'
import type { Config } from './config/config.ts'
import { cpeConfigProblems } from './config/check.ts'
import { checkConcentratorPath } from './concentrator-checks.ts'
import { cpeWarmUpSteps } from './cpe-warm-up.ts'
import type { CpeServices, CpeState, InterceptorLike, OnLanConnection } from './cpe-state.ts'
import { Interceptor, type RefusedHandler } from './intercept/interceptor.ts'
import type { UplinkSource } from './paths/uplink-observer.ts'
import { UplinkObserver } from './paths/uplink-observer.ts'
import { UplinkManager } from './uplink/uplink-manager.ts'
import { uplinkSpecs } from './uplink/uplink-plan.ts'
import { FailoverController } from './failover/failover-controller.ts'
import { startSteering } from './steering/steering-wiring.ts'
import { startUdpAgent } from './udp/udp-wiring.ts'

/**
 * The loader already ran these checks (main.ts passes `check: cpeConfigProblems`); repeated here for
 * an agent built without the loader (tests, embedding). The same function, so the same answer.
 */
export function checkMode (config: Config): void {
  const problems = cpeConfigProblems(config)
  if (problems.length > 0) {
    const key = problems[0]?.path.join('.') ?? ''
    throw new ConfigError('HYBRID_ERR_CONFIG_INVALID', problems.map(formatCheckProblem).join('; '), { detail: { key } })
  }
}

const defaultStartUplinks = async (config: Config, log: Logger, journal: JournalRecorder): Promise<UplinkSource> => {
  // Transparent mode: extra uplinks join the HAG's announced address (fullmesh; docs/transparent.md).
  const multipath = config.mode === 'transparent' ? { ...config.multipath, fullmesh: true } : config.multipath
  const opts = { uplinks: config.uplinks, multipath, log: childFor(log, 'uplinks') }
  return config.multipath.rules === 'managed' ? UplinkManager.start({ ...opts, journal }) : UplinkObserver.start(opts)
}

const defaultStartInterceptor = async (config: Config, log: Logger, onConnection: OnLanConnection, onRefused: RefusedHandler,
  journal: JournalRecorder): Promise<InterceptorLike> =>
  Interceptor.start({
    config: { intercept: config.intercept, concentrator: { host: config.concentrator.host }, udp: config.udp },
    log: childFor(log, 'intercept'),
    onConnection,
    onRefused,
    journal,
    highWaterMark: config.limits.highWaterMark
  })

/** Start failover (failover.enabled) once uplinks and health run. */
async function startFailover (s: CpeServices, config: Config, uplinks: UplinkSource,
  journal: JournalRecorder): Promise<FailoverController | undefined> {
  if (!config.failover.enabled || s.health === undefined) return undefined
  const specs = uplinkSpecs(config.uplinks, config.multipath).map((u) => ({ name: u.name, table: u.table, primary: !u.endpoints }))
  return FailoverController.start({
    config: config.failover,
    uplinks: specs,
    source: uplinks,
    managed: config.multipath.rules === 'managed',
    fullmesh: config.mode === 'transparent' || config.multipath.fullmesh === true,
    health: s.health,
    metrics: s.metrics,
    log: childFor(s.deps.log, 'failover'),
    journal,
    onSteered: (path, state) => { s.redials.pathDone(path, state) }
  })
}

/** What the parts need beyond the services and the state. */
export interface PartsContext {
  readonly mgmt: MgmtApp
  readonly onConnection: OnLanConnection
  readonly onNotIntercepted: RefusedHandler
}

type Held = 'uplinks' | 'interceptor' | 'failover' | 'steering' | 'udp'

/** What every part factory gets. */
interface Kit {
  readonly s: CpeServices
  readonly state: CpeState
  readonly ctx: PartsContext
  readonly journal: JournalRecorder
  /** Empty the state's field and stop what it held, once, logging (not throwing) a failure. */
  readonly stopHeld: (what: string, key: Held) => Promise<void>
}

const journalPart = ({ s, state }: Kit): Startable => ({
  name: 'crash journal',
  start: async () => {
    const { initial } = state
    checkMode(initial)
    state.journal = await openJournalAndRecover({ dir: initial.stateDir, name: 'cpe', log: s.log, run: runCommand })
  }
})

// The server object exists from construction; it is closed next to last and starts listening near
// the end, in 'management listener'.
const mgmtPart = ({ ctx }: Kit): Startable => ({ name: 'management API', start: () => {}, stop: async () => { await ctx.mgmt.close() } })

const uplinksPart = ({ s, state, journal, stopHeld }: Kit): Startable => ({
  name: 'uplinks',
  start: async () => {
    const u = state.uplinks = await (s.deps.startUplinks ?? defaultStartUplinks)(state.initial, s.log, journal)
    u.on('change', (states) => { s.pathMonitor.updateUplinks(states); s.health?.updateUplinks(states) })
  },
  stop: async () => { await stopHeld('uplink', 'uplinks') }
})

const redialsPart = ({ s }: Kit): Startable => ({ name: 'redials', start: () => {}, stop: () => { s.redials.stop() } })

// The caps are made once the data plane has started: with its splice pipes reserved, the derived
// connection cap leaves room for them. No connection is admitted before (interception comes later).
const dataPlanePart = ({ s, state }: Kit): Startable => ({
  name: 'data plane',
  start: async () => {
    await s.dataPlane.start()
    const l = state.initial.limits
    const maxConnections = effectiveMaxConnections(l.maxConnections, undefined, s.dataPlane.reservedFds())
    state.caps = new ConnectionCaps({ maxConnections, perSourceMaxConnections: l.perSourceMaxConnections })
  },
  stop: s.dataPlane.stop
})

const pathsPart = ({ s, state }: Kit): Startable => ({
  name: 'path monitor and health',
  start: () => {
    const states = state.uplinks?.uplinks() ?? []
    s.pathMonitor.updateUplinks(states)
    s.health?.updateUplinks(states)
    s.pathMonitor.start()
    s.health?.start()
  },
  stop: () => { s.pathMonitor.stop(); s.health?.stop() }
})

const steeringPart = ({ s, state, journal, stopHeld }: Kit): Startable => ({
  name: 'steering and failover',
  start: async () => {
    const u = state.uplinks
    if (u === undefined) return
    const steering = state.steering = await startSteering(state.initial, u, s.health, s.metrics, s.deps.log)
    state.failover = await startFailover(s, state.initial, u, journal)
    state.failover?.useFailbackPulse(async (ms) => steering?.holdBackup(ms))
  },
  stop: async () => {
    await stopHeld('failover', 'failover')
    await stopHeld('steering', 'steering')
  }
})

/**
 * Before the interception: the LAN connection path runs once on loopback (cpe-warm-up.ts), so the
 * first subscriber's connection does not pay for its first run (≈ 3 ms here). Bounded, never fails.
 */
const warmUpPart = ({ s, state }: Kit): Startable => ({
  name: 'warm-up',
  start: async () => { await warmUp(cpeWarmUpSteps(s, state), { log: s.log }) }
})

const interceptionPart = ({ s, state, ctx, journal, stopHeld }: Kit): Startable => ({
  name: 'interception',
  start: async () => {
    const { initial } = state
    state.upstream = checkConcentratorPath(initial, s.log)
    if (initial.intercept.rules === 'off') return
    const start = s.deps.startInterceptor ?? defaultStartInterceptor
    const i = state.interceptor = await start(initial, s.log, ctx.onConnection, ctx.onNotIntercepted, journal)
    i.on('holderExit', () => { s.metrics.nftTableInstalled.set(0) })
    s.metrics.nftTableInstalled.set(i.tableInstalled ? 1 : 0)
  },
  stop: async () => {
    await stopHeld('interception', 'interceptor')
    s.metrics.nftTableInstalled.set(0)
  }
})

const udpPart = ({ s, state, journal, stopHeld }: Kit): Startable => ({
  name: 'LAN UDP',
  start: async () => { state.udp = await startUdpAgent(s, state.initial, journal) },
  stop: async () => { await stopHeld('UDP', 'udp') }
})

const mgmtListenerPart = ({ s, state, ctx }: Kit): Startable => ({
  name: 'management listener',
  start: async () => { if (s.deps.listenManagement !== false) await listenMgmt(ctx.mgmt, state.initial.management.listen) }
})

const overloadPart = ({ s, state }: Kit): Startable => ({
  name: 'overload manager',
  start: () => { s.metrics.configLastReloadSuccess.setToCurrentTime(); s.overload.start(); state.started = true },
  stop: () => { s.overload.stop() }
})

const PARTS = [
  journalPart, mgmtPart, uplinksPart, redialsPart, dataPlanePart, pathsPart, steeringPart, warmUpPart, interceptionPart, udpPart,
  mgmtListenerPart, overloadPart
]

export function cpeParts (s: CpeServices, state: CpeState, ctx: PartsContext): Startable[] {
  const journal: JournalRecorder = { record: (e) => state.journal?.record(e), forget: (e) => state.journal?.forget(e) }
  const stopHeld = async (what: string, key: Held): Promise<void> => {
    const part = state[key]
    state[key] = undefined
    if (part !== undefined) await part.stop().catch((err: unknown) => { s.log.warn({ err }, `${what} cleanup failed`) })
  }
  const kit: Kit = { s, state, ctx, journal, stopHeld }
  return PARTS.map((part) => part(kit))
}
