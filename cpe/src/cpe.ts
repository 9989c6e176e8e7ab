/**
 * Composition root of the CPE agent: uplinks → concentrator-facing checks → interception (listeners,
 * routing, nft table) → one `Socks5Upstream` per intercepted connection, plus path metrics and the
 * management API. `createCpe(config, deps)` returns a service with idempotent `start()` / `stop()` and
 * `reload(config)`; main.ts owns the process.
 *
 * stop(): readiness off → interceptor.stopAccepting() (new LAN connections flow natively: fail-open)
 * → drain ≤ limits.drainTimeoutMs → destroy the rest (reason 'drain') → interceptor.stop() (table and
 * routing removed) → uplinks.stop() → management server closed.
 * reload(config): checked by planReload (restart-only keys refuse the whole reload), then the new
 * settings are swapped in for later connections, the ruleset replaced atomically if bypass lists,
 * LAN interfaces or the concentrator changed, and the multipath mode switched. Established relays are
 * never touched.
 */
import type net from 'node:net'
import type { Registry } from 'prom-client'
import { ConfigError } from '../../shared/src/errors.ts'
import { formatCheckProblem } from '../../shared/src/config/problem.ts'
import { cpeConfigProblems } from './config-check.ts'
import { childFor } from '../../shared/src/log.ts'
import { createDataPlane } from '../../shared/src/net/data-plane.ts'
import type { Logger } from '../../shared/src/log.ts'
import { buildMgmtServer, listenMgmt } from '../../shared/src/mgmt/mgmt-server.ts'
import type { MgmtApp } from '../../shared/src/mgmt/mgmt-server.ts'
import { ConnectionCaps, effectiveMaxConnections } from '../../shared/src/net/connection-caps.ts'
import { armResetOnClose } from '../../shared/src/net/sockopt.ts'
import { formatRemote } from '../../shared/src/net/endpoint.ts'
import { OverloadManager } from '../../shared/src/daemon/overload.ts'
import { Admission, rejectedLabel } from '../../shared/src/daemon/admission.ts'
import { StartStop } from '../../shared/src/daemon/start-stop.ts'
import type { Config, CpeConfig } from './config.ts'
import { checkConcentratorPath, type EffectiveUpstream } from './concentrator-checks.ts'
import { openJournalAndRecover, type CrashJournal, type JournalRecorder } from '../../shared/src/sys/crash-journal.ts'
import { runCommand } from '../../shared/src/sys/command.ts'
import { RateLimitedLog } from '../../shared/src/rate-limited-log.ts'
import { Interceptor, type OriginalDestination, type RefusedHandler } from './intercept/interceptor.ts'
import { registerCpeRoutes, type UplinkChange } from './mgmt/cpe-routes.ts'
import { CpeSessionTable } from './mgmt/session-table.ts'
import { createCpeMetrics, createCpeRegistry, type CpeMetrics } from './metrics.ts'
import { PathMonitor } from './paths/path-monitor.ts'
import { createPathHealth, healthFields, type PathHealth } from './health/path-health.ts'
import { UplinkObserver, type UplinkSource } from './paths/uplink-observer.ts'
import { planReload } from './reload-plan.ts'
import { PipeliningMemory } from './signalling/pipelining-memory.ts'
import { Socks5Upstream, type Socks5ConnInfo, type Socks5Settings } from './signalling/socks5.ts'
import { ConvertUpstream } from './signalling/convert.ts'
import { ConverterMemory } from './signalling/convert-reply.ts'
import type { DialFn } from './signalling/upstream.ts'
import type { FirstBytes } from './signalling/first-bytes.ts'
import { PendingDials } from './signalling/pending-dials.ts'
import { detectionMs } from './signalling/redial-plan.ts'
import { TransparentUpstream } from './signalling/transparent.ts'
import { UplinkManager } from './uplink/uplink-manager.ts'
import { uplinkSpecs } from './uplink/uplink-plan.ts'
import { FailoverController } from './failover/failover-controller.ts'
import type { SteeringController } from './steering/steering-controller.ts'
import { startSteering } from './steering/steering-wiring.ts'

export interface CpeDeps {
  log: Logger
  /** The agent's registry; default a new one with default metrics and build info. */
  registry?: Registry
  version?: string
  commit?: string
  /** Bind the management server on `management.listen` (default true; tests use `mgmt.inject()`). */
  listenManagement?: boolean
  /** POST /api/v1/reload: re-read + validate the file, then `reload()` (runDaemonCli supplies it). */
  requestReload?: () => Promise<void>
  kernelMib?: boolean
  /** Tests: replace the uplink manager / interceptor / dial. */
  startUplinks?: (config: Config, log: Logger, journal: JournalRecorder) => Promise<UplinkSource>
  startInterceptor?: (config: Config, log: Logger, onConnection: (s: net.Socket, d: OriginalDestination) => void, onRefused: RefusedHandler,
    journal: JournalRecorder) => Promise<InterceptorLike>
  dial?: DialFn
  pathSampleMs?: number
  clock?: () => number
}

/** What the agent uses of an Interceptor. */
export interface InterceptorLike {
  readonly listening: boolean
  readonly tableInstalled: boolean
  updateRuleset: (config: { intercept: Config['intercept'], concentrator: { host: string } }) => Promise<void>
  stopAccepting: () => void
  stop: () => Promise<void>
  on: (event: 'holderExit', fn: () => void) => unknown
}

export interface Cpe {
  start: () => Promise<void>
  stop: () => Promise<void>
  reload: (config: CpeConfig) => Promise<void>
  reloadFailed: (err: unknown) => void
  readonly mgmt: MgmtApp
  readonly registry: Registry
  readonly metrics: CpeMetrics
  readonly sessions: CpeSessionTable
  /** Path health (health.enabled): subscribe to `change(path, state, transition)`. */
  readonly health: PathHealth | undefined
  ready: () => boolean
  status: () => object
  activeConnections: () => number
}

/** The uplink carrying the initial subflow: the first dsl, else the first. */
function primaryOf (config: Config): string {
  return (config.uplinks.find((u) => u.role === 'dsl') ?? config.uplinks[0])?.name ?? ''
}

function allowedHosts (host: string): string[] {
  return ['localhost', '127.0.0.1', '[::1]', host.includes(':') ? `[${host}]` : host]
}

/**
 * The loader already ran these checks (main.ts passes `check: cpeConfigProblems`); repeated here for
 * an agent built without the loader (tests, embedding). The same function, so the same answer.
 */
function checkMode (config: Config): void {
  const problems = cpeConfigProblems(config)
  if (problems.length > 0) {
    const key = problems[0]?.path.join('.') ?? ''
    throw new ConfigError('HYBRID_ERR_CONFIG_INVALID', problems.map(formatCheckProblem).join('; '), { detail: { key } })
  }
}

/** Start failover (failover.enabled) once uplinks and health run. */
async function startFailover (config: Config, uplinks: UplinkSource, health: PathHealth | undefined, metrics: CpeMetrics, log: Logger,
  redials: PendingDials, journal: JournalRecorder): Promise<FailoverController | undefined> {
  if (!config.failover.enabled || health === undefined) return undefined
  const specs = uplinkSpecs(config.uplinks, config.multipath).map((u) => ({ name: u.name, table: u.table, primary: !u.endpoints }))
  return FailoverController.start({
    config: config.failover,
    uplinks: specs,
    source: uplinks,
    managed: config.multipath.rules === 'managed',
    fullmesh: config.mode === 'transparent' || config.multipath.fullmesh === true,
    health,
    metrics,
    log: childFor(log, 'failover'),
    journal,
    onSteered: (path, state) => { redials.pathDone(path, state) }
  })
}

const defaultStartUplinks = async (config: Config, log: Logger, journal: JournalRecorder): Promise<UplinkSource> => {
  // Transparent mode: extra uplinks join the HAG's announced address (fullmesh; docs/transparent.md).
  const multipath = config.mode === 'transparent' ? { ...config.multipath, fullmesh: true } : config.multipath
  const opts = { uplinks: config.uplinks, multipath, log: childFor(log, 'uplinks') }
  return config.multipath.rules === 'managed' ? UplinkManager.start({ ...opts, journal }) : UplinkObserver.start(opts)
}

const defaultStartInterceptor = async (config: Config, log: Logger, onConnection: (s: net.Socket, d: OriginalDestination) => void,
  onRefused: RefusedHandler, journal: JournalRecorder): Promise<InterceptorLike> =>
  Interceptor.start({
    config: { intercept: config.intercept, concentrator: { host: config.concentrator.host } },
    log: childFor(log, 'intercept'),
    onConnection,
    onRefused,
    journal,
    highWaterMark: config.limits.highWaterMark
  })

/** The frozen configuration is never mutated; the components take the schema's (mutable) types. */
const asConfig = (c: CpeConfig): Config => c as Config

export function createCpe (frozen: CpeConfig, deps: CpeDeps): Cpe {
  const initial = asConfig(frozen)
  const log = childFor(deps.log, 'cpe')
  const connLog = childFor(deps.log, 'socks5')
  const now = deps.clock ?? Date.now
  const paths = initial.uplinks.map((u) => u.name)
  let registry: Registry
  let metrics: CpeMetrics
  if (deps.registry === undefined) {
    ({ registry, metrics } = createCpeRegistry(deps.version ?? '0.0.0', deps.commit ?? 'unknown', paths))
  } else {
    registry = deps.registry
    metrics = createCpeMetrics(registry, { paths, kernelMib: deps.kernelMib ?? true })
  }
  const sessions = new CpeSessionTable()
  const dataPlane = createDataPlane(initial.dataPlane, { log: childFor(deps.log, 'data-plane') })
  const pathMonitor = new PathMonitor({
    metrics,
    paths,
    primary: primaryOf(initial),
    countFailovers: !initial.failover.enabled,
    ...(deps.pathSampleMs === undefined ? {} : { sampleMs: deps.pathSampleMs })
  })
  const health = createPathHealth(initial, metrics, childFor(deps.log, 'health'))
  const pipelining = new PipeliningMemory(initial.socks5.stepwiseMemoryMs, now)
  const converterMemory = new ConverterMemory(now)
  // Pending upstream connects re-dialled once when failover moved off their dead access (docs/failover.md).
  const redials = new PendingDials({
    metrics,
    pathOf: (a) => pathMonitor.pathOf(a),
    steeredTo: () => failover?.view().steeredTo ?? undefined,
    boundMs: detectionMs(initial.health),
    sweepMs: initial.health.intervalMs
  })
  const startedAt = now()
  let config = initial
  let upstream: EffectiveUpstream | undefined
  let caps: ConnectionCaps | undefined
  let uplinks: UplinkSource | undefined
  let interceptor: InterceptorLike | undefined
  let failover: FailoverController | undefined
  let steering: SteeringController | undefined
  let started = false
  let startPromise: Promise<void> | undefined
  let stopPromise: Promise<void> | undefined

  const settings = (): Socks5Settings => ({
    concentrator: upstream?.concentrator ?? config.concentrator,
    socketMark: config.intercept.socketMark,
    onMptcpUnavailable: config.mptcp.onUnavailable,
    highWaterMark: config.limits.highWaterMark,
    sourceFor: (d, f) => steering?.pinnedSource(d, f),
    socks5: config.socks5,
    limits: config.limits
  })

  const refusalLog = new RateLimitedLog(20, now)
  /** A connection addressed to the CPE itself on the interception port: reset, never relayed (a loop). */
  const onNotIntercepted = (destination: OriginalDestination, source: string | undefined): void => {
    metrics.connectionsRejected.inc({ mode: config.mode, reason: 'not_intercepted' })
    if (refusalLog.allow(log)) {
      log.warn({ destination, source },
        'connection addressed to the CPE itself on the interception port: reset (would loop through the concentrator)')
    }
  }

  const overload = new OverloadManager(initial.overload, {
    log: childFor(deps.log, 'overload'),
    metrics,
    relays: () => sessions.relays(),
    sourceCounts: () => caps?.counts() ?? []
  })
  type Upstream = Socks5Upstream | TransparentUpstream | ConvertUpstream
  type ConnectionInfo = Socks5ConnInfo & { readonly attach: (conn: Upstream) => void }
  const admission = new Admission<Upstream>({ overload, caps: () => caps, log })
  /**
   * Admission, the same for every mode (shared/src/daemon/admission.ts): not while draining, not
   * under overload (docs/overload.md), then a caps slot. A refusal is counted and reset here (an
   * intercepted LAN connection has no signalling to answer in); undefined then.
   */
  const admit = (lan: net.Socket, mode: CpeConfig['mode'], destination: OriginalDestination): ConnectionInfo | undefined => {
    metrics.connectionsAccepted.inc({ mode })
    const source = lan.remoteAddress ?? '?'
    const admitted = admission.admit(source, { log: { base: connLog, fields: { mode, src: formatRemote(lan) } } })
    if (!admitted.ok) {
      lan.on('error', () => {})
      metrics.connectionsRejected.inc({ mode, reason: rejectedLabel(admitted.reason) })
      lan.resetAndDestroy()
      return undefined
    }
    metrics.connectionsActive.inc({ mode })
    // Admitted: a process death from here on (dial, SOCKS5/Convert exchange, relay) resets the LAN
    // client instead of a FIN it would take for the end of an empty response (docs/design/limits.md).
    // Every close of a LAN leg before the relay is a reset anyway; a socket without a fd (tests) is left alone.
    armResetOnClose(lan)
    const { ticket } = admitted
    return {
      id: ticket.id,
      destination,
      log: ticket.log ?? connLog,
      onDone: () => {
        metrics.connectionsActive.dec({ mode })
        ticket.release()
      },
      attach: ticket.attach
    }
  }

  const onConnection = (lan: net.Socket, destination: OriginalDestination): void => {
    if (config.mode === 'transparent') { onTransparent(lan, destination); return }
    if (config.mode === 'convert') { onConvert(lan, destination); return }
    const info = admit(lan, 'socks5', destination)
    if (info === undefined) return
    const dial = deps.dial === undefined ? {} : { dial: deps.dial }
    info.attach(new Socks5Upstream(lan, info, settings(), { metrics, sessions, paths: pathMonitor, pipelining, redials, dataPlane, ...dial }))
  }

  /** Mode convert: RFC 8803 towards the Transport Converter (signalling/convert.ts); fallback socks5 hands over. */
  const onConvert = (lan: net.Socket, destination: OriginalDestination): void => {
    const info = admit(lan, 'convert', destination)
    if (info === undefined) return
    const dialDep = deps.dial === undefined ? {} : { dial: deps.dial }
    const base = settings()
    const converter = {
      ...base.concentrator,
      host: config.convert.host ?? base.concentrator.host,
      port: config.convert.port ?? base.concentrator.port
    }
    const socks5 = (l: net.Socket,
      first: FirstBytes): Socks5Upstream => new Socks5Upstream(l, info, settings(),
      { metrics, sessions, paths: pathMonitor, pipelining, dataPlane, ...dialDep }, first)
    const convertDeps = { metrics, sessions, paths: pathMonitor, memory: converterMemory, fallbackSocks5: socks5, redials, dataPlane, ...dialDep }
    info.attach(new ConvertUpstream(lan, info, { ...base, concentrator: converter, convert: config.convert }, convertDeps))
  }

  /** Mode transparent: MPTCP straight to the original destination (signalling/transparent.ts). */
  const onTransparent = (lan: net.Socket, destination: OriginalDestination): void => {
    const info = admit(lan, 'transparent', destination)
    if (info === undefined) return
    const c = config
    info.attach(new TransparentUpstream(lan, info,
      { socketMark: c.intercept.socketMark, onMptcpUnavailable: c.mptcp.onUnavailable, highWaterMark: c.limits.highWaterMark, limits: c.limits },
      { metrics, sessions, paths: pathMonitor, redials, dataPlane, ...(deps.dial === undefined ? {} : { dial: deps.dial }) }))
  }

  const checks = (): Record<string, boolean> => {
    const intercepting = config.intercept.rules !== 'off'
    return {
      uplinks: uplinks !== undefined,
      listener: !intercepting || (interceptor?.listening ?? false),
      rules: config.intercept.rules !== 'managed' || (interceptor?.tableInstalled ?? false),
      accepting: started && admission.admitting
    }
  }
  const ready = (): boolean => Object.values(checks()).every((v) => v)

  const status = (): object => ({
    version: deps.version ?? '0.0.0',
    uptimeSeconds: Math.round((now() - startedAt) / 1000),
    ready: ready(),
    draining: !admission.admitting,
    checks: checks(),
    mode: config.mode,
    multipathMode: uplinks?.mode ?? config.multipath.mode,
    concentrator: { ...(upstream?.concentrator ?? config.concentrator), stepwise: pipelining.stepwiseKeys() },
    connections: {
      active: admission.size,
      relaying: sessions.size,
      handshaking: admission.size - sessions.size,
      max: caps?.limits.maxConnections ?? 0,
      perSourceMax: caps?.limits.perSourceMaxConnections ?? 0
    },
    ...(failover === undefined ? {} : { failover: failover.view() }),
    ...(steering === undefined ? {} : { steering: steering.view() }),
    overload: overload.status()
  })

  const setUplink = async (name: string, change: UplinkChange): Promise<void> => {
    if (uplinks === undefined) throw new ConfigError('HYBRID_ERR_INTERNAL', 'agent not started')
    if (change.admin !== undefined) await uplinks.setAdmin(name, change.admin)
    // With a steering mode the controller owns the flags: aggregate ≙ load-balancing, backup ≙ active-standby.
    if (change.mode !== undefined && steering?.mode !== undefined) await steering.setMode(change.mode === 'backup' ? 'active-standby' : 'load-balancing')
    else if (change.mode !== undefined && change.mode !== uplinks.mode) await uplinks.setMode(change.mode)
    log.info({ uplink: name, ...change }, 'uplink changed through the management API')
  }

  const reload = async (frozenNext: CpeConfig): Promise<void> => {
    const next = asConfig(frozenNext)
    try {
      checkMode(next)
      const plan = planReload(config, next)
      const nextUpstream = checkConcentratorPath(next, log)
      if (plan.rulesetChanged && interceptor !== undefined) {
        await interceptor.updateRuleset({
          intercept: next.intercept,
          concentrator: { host: next.concentrator.host }
        })
      }
      if (plan.modeChanged && uplinks !== undefined) await uplinks.setMode(next.multipath.mode)
      config = next
      upstream = nextUpstream
      caps?.setLimits({
        maxConnections: effectiveMaxConnections(next.limits.maxConnections),
        perSourceMaxConnections: next.limits.perSourceMaxConnections
      })
      overload.update(next.overload)
      deps.log.level = next.log.level
    } catch (err) {
      reloadFailed(err)
      throw err
    }
    metrics.configReloads.inc({ result: 'success' })
    metrics.configLastReloadSuccess.setToCurrentTime()
    log.info('configuration reloaded')
  }
  const reloadFailed = (err: unknown): void => {
    metrics.configReloads.inc({ result: 'failure' })
    log.error({ err }, 'reload refused; keeping the previous configuration')
  }

  const mgmt = buildMgmtServer({
    log: childFor(deps.log, 'mgmt'),
    registry,
    token: initial.management.token,
    allowedHosts: allowedHosts(initial.management.listen.host),
    limits: initial.management.limits,
    onRefused: (reason) => { metrics.mgmtConnectionsRefused.inc({ reason }) },
    readiness: () => ({ ready: ready(), checks: checks() }),
    status,
    info: { title: 'hybrid-cpe management API', version: deps.version ?? '0' },
    routes: (app) => {
      registerCpeRoutes(app, {
        status,
        uplinks: () => pathMonitor.view().map((p) => ({ ...p, ...uplinkDetail(p.name), ...healthFields(health, p.name, p.up) })),
        setUplink,
        sessions: (offset, limit) => sessions.page(offset, limit, now()),
        reload: deps.requestReload ?? (async () => { await reload(config) }),
        steering: () => steering
      })
    }
  })
  const uplinkDetail = (name: string): {
    access: string,
    interface: string,
    addresses: string[],
    mode: string,
    steering: string | null,
    backup: boolean | null
  } => {
    const s = uplinks?.uplinks().find((u) => u.name === name)
    const c = config.uplinks.find((u) => u.name === name)
    const backup = (steering?.view().backup ?? {})[name] ?? null
    return {
      access: c?.role ?? 'dsl',
      interface: c?.interface ?? '',
      addresses: s?.addresses ?? [],
      mode: uplinks?.mode ?? config.multipath.mode,
      steering: steering?.mode ?? null,
      backup
    }
  }

  let journal: CrashJournal | undefined // what start changes in the namespace, on disk (crash-journal.ts)
  const journalled: JournalRecorder = { record: (e) => journal?.record(e), forget: (e) => journal?.forget(e) }
  /** Stop a part held in `take()`'s variable once, logging (not throwing) a failure. */
  const stopOnce = async <T extends { stop: () => Promise<void> }>(what: string, take: () => T | undefined): Promise<void> => {
    const p = take()
    if (p !== undefined) await p.stop().catch((err: unknown) => { log.warn({ err }, `${what} cleanup failed`) })
  }
  /**
   * The parts in start order; stopped in reverse after the drain, or after a failed start
   * (shared/src/daemon/start-stop.ts). Every change to the namespace is journalled first.
   */
  const parts = new StartStop(log)
  const doStart = async (): Promise<void> => {
    await parts.start([
      {
        name: 'crash journal',
        start: async () => {
          checkMode(initial)
          const l = initial.limits
          caps = new ConnectionCaps({ maxConnections: effectiveMaxConnections(l.maxConnections), perSourceMaxConnections: l.perSourceMaxConnections })
          journal = await openJournalAndRecover({ dir: initial.stateDir, name: 'cpe', log, run: runCommand })
        }
      },
      // The server object exists from construction; it is closed next to last (as the hand-written
      // teardown did) and starts listening near the end, in 'management listener'.
      {
        name: 'management API',
        start: () => {},
        stop: async () => { await mgmt.close() }
      },
      {
        name: 'uplinks',
        start: async () => {
          const u = uplinks = await (deps.startUplinks ?? defaultStartUplinks)(initial, log, journalled)
          u.on('change', (states) => { pathMonitor.updateUplinks(states); health?.updateUplinks(states) })
        },
        stop: async () => { await stopOnce('uplink', () => { const u = uplinks; uplinks = undefined; return u }) }
      },
      { name: 'redials', start: () => {}, stop: () => { redials.stop() } },
      { name: 'data plane', start: dataPlane.start, stop: dataPlane.stop },
      {
        name: 'path monitor and health',
        start: () => {
          const states = uplinks?.uplinks() ?? []
          pathMonitor.updateUplinks(states)
          health?.updateUplinks(states)
          pathMonitor.start()
          health?.start()
        },
        stop: () => { pathMonitor.stop(); health?.stop() }
      },
      {
        name: 'steering and failover',
        start: async () => {
          const u = uplinks
          if (u === undefined) return
          steering = await startSteering(initial, u, health, metrics, deps.log)
          failover = await startFailover(initial, u, health, metrics, deps.log, redials, journalled)
          failover?.useFailbackPulse(async (ms) => steering?.holdBackup(ms))
        },
        stop: async () => {
          await stopOnce('failover', () => { const f = failover; failover = undefined; return f })
          await stopOnce('steering', () => { const st = steering; steering = undefined; return st })
        }
      },
      {
        name: 'interception',
        start: async () => {
          upstream = checkConcentratorPath(initial, log)
          if (initial.intercept.rules === 'off') return
          interceptor = await (deps.startInterceptor ?? defaultStartInterceptor)(initial, log, onConnection, onNotIntercepted, journalled)
          interceptor.on('holderExit', () => { metrics.nftTableInstalled.set(0) })
          metrics.nftTableInstalled.set(interceptor.tableInstalled ? 1 : 0)
        },
        stop: async () => {
          await stopOnce('interception', () => { const i = interceptor; interceptor = undefined; return i })
          metrics.nftTableInstalled.set(0)
        }
      },
      { name: 'management listener', start: async () => { if (deps.listenManagement !== false) await listenMgmt(mgmt, initial.management.listen) } },
      {
        name: 'overload manager',
        start: () => { metrics.configLastReloadSuccess.setToCurrentTime(); overload.start(); started = true },
        stop: () => { overload.stop() }
      }
    ])
    log.info({ maxConnections: caps?.limits.maxConnections, concentrator: upstream?.concentrator, intercept: initial.intercept.rules }, 'cpe agent ready')
  }

  const doStop = async (): Promise<void> => {
    admission.stopAdmitting() // synchronously: readiness is false from the moment stop() is called
    interceptor?.stopAccepting()
    if (startPromise !== undefined) await startPromise.catch(() => {})
    interceptor?.stopAccepting()
    log.info({ active: admission.size, drainTimeoutMs: config.limits.drainTimeoutMs }, 'draining')
    await admission.drain(config.limits.drainTimeoutMs)
    await parts.stop()
    log.info('cpe agent stopped')
  }

  return {
    start: async () => { startPromise ??= doStart(); await startPromise },
    stop: async () => { stopPromise ??= doStop(); await stopPromise },
    reload,
    reloadFailed,
    mgmt,
    registry,
    metrics,
    sessions,
    health,
    ready,
    status,
    activeConnections: () => admission.size
  }
}
