/**
 * Composition root of the concentrator: listeners → caps → SOCKS5 connections → policy → egress →
 * relay, plus metrics and the management API. `createConcentrator(config, deps)` returns a
 * service with idempotent `start()` / `stop()` and `reload(config)`; main.ts owns the process.
 *
 * start(): the kernel profile (`kernel.*`, sysctls saved and set) first, then runtime, listeners,
 * transparent mode, probe responder, management; a failing start undoes all of it (profile restored).
 * stop(): readiness off → stop accepting (MPTCP listeners stay open so draining connections keep
 * their MP_JOINs) → drain ≤ limits.drainTimeoutMs → destroy the rest (reason 'drain') → close
 * listeners, management server and resolver → restore the kernel profile.
 * reload(config): refused when a start-only key changed (reload-plan.ts); else build the new
 * runtime first (policy, credentials, prefixes; failure keeps the old one), swap it, apply caps,
 * re-bind only the listeners that changed. Established relays are never touched; handshakes in
 * progress finish with the runtime they started with.
 */
import type net from 'node:net'
import { readFileSync } from 'node:fs'
import type { Registry } from 'prom-client'
import { ConfigError } from '../../shared/src/errors.ts'
import { formatCheckProblem } from '../../shared/src/config/problem.ts'
import { concentratorConfigProblems } from './config/check.ts'
import { childFor } from '../../shared/src/log.ts'
import { createDataPlane } from '../../shared/src/net/data-plane.ts'
import type { Logger } from '../../shared/src/log.ts'
import { buildMgmtServer, listenMgmt } from '../../shared/src/mgmt/mgmt-server.ts'
import type { MgmtApp } from '../../shared/src/mgmt/mgmt-server.ts'
import { armResetOnClose, isMptcpFallback } from '../../shared/src/net/sockopt.ts'
import type { CommandRunner } from '../../shared/src/sys/command.ts'
import { runCommand } from '../../shared/src/sys/command.ts'
import { ConnectionCaps } from '../../shared/src/net/connection-caps.ts'
import { OverloadManager } from '../../shared/src/daemon/overload.ts'
import { Admission, rejectedLabel } from '../../shared/src/daemon/admission.ts'
import { StartStop } from '../../shared/src/daemon/start-stop.ts'
import { TransparentConnection } from './modes/transparent-connection.ts'
import { createMachineSetup } from './machine-setup.ts'
import { ConcentratorStatusSchema, type ConcentratorStatus } from './mgmt/status-schema.ts'
import { HostAddresses, type AddressMembership } from '../../shared/src/net/host-addresses.ts'
import type { CapLimits } from '../../shared/src/net/connection-caps.ts'
import { ListenerSet } from './accept/listener-set.ts'
import type { BoundListener } from './accept/listener-set.ts'
import { sourceKey } from './accept/source-address.ts'
import { capSourceKey } from '../../shared/src/net/source-prefix.ts'
import { formatRemote } from '../../shared/src/net/endpoint.ts'
import { buildRuntime } from './build-runtime.ts'
import type { BuildRuntimeDeps } from './build-runtime.ts'
import type { ConcentratorConfig } from './config/config.ts'
import { createConcentratorMetrics, createConcentratorRegistry } from './metrics.ts'
import type { ConcentratorMetrics } from './metrics.ts'
import { mgmtAllowedHosts, registerConcentratorRoutes } from './mgmt/routes.ts'
import { RateLimitedLog } from '../../shared/src/rate-limited-log.ts'
import { checkReload } from './config/reload-plan.ts'
import type { Runtime } from './runtime.ts'
import { SessionTable } from './mgmt/session-table.ts'
import { Socks5Connection } from './modes/socks5.ts'
import { ConvertConnection, refuseConvertAtAccept } from './modes/convert.ts'
import { ConverterState } from './modes/convert-state.ts'
import { createTransparentMode } from './modes/transparent-mode.ts'
import { startProbeResponder, type ProbeResponder } from './probe/probe-responder.ts'
import type { TransparentMode } from './modes/transparent-mode.ts'

export interface ConcentratorDeps {
  log: Logger
  /** The daemon's registry; metrics are registered on it. Default: a new one with default metrics. */
  registry?: Registry
  clock?: () => number
  version?: string
  commit?: string
  /** Bind the management server on `management.listen` (default true; tests use `mgmt.inject()`). */
  listenManagement?: boolean
  /** POST /api/v1/reload: re-read + validate the file, then `reload()` (runDaemonCli supplies it). */
  requestReload?: () => Promise<void>
  /** Export the kernel MPTCP MIB (default true). */
  kernelMib?: boolean
  resolver?: BuildRuntimeDeps['resolver']
  openFilesLimit?: () => number
  /** Runner of the `sysctl` commands of the kernel profile (`kernel.*`). Default runCommand. */
  run?: CommandRunner
  /** Tests: the host's addresses; default HostAddresses (read and watched) when `policy.hostAddresses.refuse`. */
  hostAddresses?: AddressMembership
  /**
   * Set in a worker of a supervisor (`workers` > 1, workers/worker.ts): the listeners are bound with
   * SO_REUSEPORT, and the machine-wide parts (crash journal, kernel profile, join endpoints) are left
   * to the supervisor; the probe responder runs in worker 0 only (one UDP socket per address).
   */
  worker?: { index: number }
}

export interface ListenerStatus { host: string, port: number, mode: string, protocol: 'mptcp' | 'tcp' }

export interface Concentrator {
  start: () => Promise<void>
  stop: () => Promise<void>
  reload: (config: ConcentratorConfig) => Promise<void>
  /** A reload refused before reaching `reload()` (file did not validate): counted as a failure. */
  reloadFailed: (err: unknown) => void
  readonly mgmt: MgmtApp
  readonly registry: Registry
  readonly metrics: ConcentratorMetrics
  readonly sessions: SessionTable
  listeners: () => ListenerStatus[]
  ready: () => boolean
  status: () => object
  /** Connections open (handshake or relay). */
  activeConnections: () => number
}

const SWEEP_MS = 5000

/**
 * The loader already ran these checks (main.ts passes `check: concentratorConfigProblems`); repeated
 * at start for a concentrator built without the loader (tests, embedding). The same function.
 */
function checkConfig (config: ConcentratorConfig): void {
  const problems = concentratorConfigProblems(config)
  if (problems.length > 0) {
    const key = problems[0]?.path.join('.') ?? ''
    throw new ConfigError(problems.some((p) => p.message.startsWith('cannot read')) ? 'HYBRID_ERR_CONFIG_READ' : 'HYBRID_ERR_CONFIG_INVALID',
      problems.map(formatCheckProblem).join('; '), { detail: { key } })
  }
}

function capLimits (r: Runtime): CapLimits {
  const l = r.limits
  return {
    maxConnections: l.maxConnections,
    perSourceMaxConnections: l.perSourceMaxConnections,
    unauthenticatedMaxConnections: l.unauthenticatedMaxConnections
  }
}

function capsStatus (caps: ConnectionCaps | undefined): Pick<ConcentratorStatus['connections'], 'max' | 'perSourceMax' | 'unauthenticated' | 'unauthenticatedMax' | 'sources'> {
  return {
    max: caps?.limits.maxConnections ?? 0,
    perSourceMax: caps?.limits.perSourceMaxConnections ?? 0,
    unauthenticated: caps?.unauthenticated ?? 0,
    unauthenticatedMax: caps?.limits.unauthenticatedMaxConnections ?? 0,
    sources: caps?.sources ?? 0
  }
}

function tfoSysctl (): number | undefined {
  try { return Number(readFileSync('/proc/sys/net/ipv4/tcp_fastopen', 'utf8').trim()) } catch { return undefined }
}

export function createConcentrator (initial: ConcentratorConfig, deps: ConcentratorDeps): Concentrator {
  const log = childFor(deps.log, 'concentrator')
  const connLog = childFor(deps.log, 'socks5')
  const now = deps.clock ?? Date.now
  let registry: Registry
  let metrics: ConcentratorMetrics
  if (deps.registry === undefined) {
    ({ registry, metrics } = createConcentratorRegistry(deps.version ?? '0.0.0', deps.commit ?? 'unknown'))
  } else {
    registry = deps.registry
    metrics = createConcentratorMetrics(registry, { kernelMib: deps.kernelMib ?? true })
  }
  const sessions = new SessionTable()
  const dataPlane = createDataPlane(initial.dataPlane, { log: childFor(deps.log, 'data-plane') })
  const errorLog = new RateLimitedLog(20, now)
  const converter = new ConverterState(initial.convert, { now })
  const startedAt = now()
  let config = initial
  let runtime: Runtime | undefined
  let caps: ConnectionCaps | undefined
  let transparent: TransparentMode | undefined // transparent mode (docs/transparent.md), when enabled
  let probe: ProbeResponder | undefined // UDP path-health responder (docs/path-health.md), read at start only
  let startPromise: Promise<void> | undefined
  let stopPromise: Promise<void> | undefined
  let sweepTimer: NodeJS.Timeout | undefined
  let hostAddresses: HostAddresses | undefined // own addresses of the namespace (policy.hostAddresses)
  // Crash journal, kernel profile, join endpoints (machine-setup.ts): a worker leaves them to its supervisor.
  const machine = createMachineSetup(initial, { log, run: deps.run ?? runCommand, check: () => { checkConfig(initial) } })
  const { journalled } = machine
  const inWorker = deps.worker !== undefined
  const runtimeDeps: BuildRuntimeDeps = {
    metrics,
    now,
    ...(deps.resolver === undefined ? {} : { resolver: deps.resolver }),
    ...(deps.openFilesLimit === undefined ? {} : { openFilesLimit: deps.openFilesLimit })
  }
  const current = (): Runtime => {
    if (runtime === undefined) throw new ConfigError('HYBRID_ERR_INTERNAL', 'concentrator not started')
    return runtime
  }
  const connDeps = { metrics, sessions, errorLog, runtime: current, dataPlane }
  const overload = new OverloadManager(initial.overload, {
    log: childFor(deps.log, 'overload'),
    metrics,
    relays: () => sessions.relays(),
    sourceCounts: () => caps?.counts() ?? []
  })
  /**
   * Admission and drain of every accept path, transparent mode's too (shared/src/daemon/admission.ts).
   * A connection still in its SOCKS5/Convert handshake has no transfer to finish: drain closes it at
   * once (waiting for it held every stop until the handshake deadline, ≈ 10 s, with nothing relayed).
   */
  const admission = new Admission<Socks5Connection | ConvertConnection | TransparentConnection>({
    overload,
    caps: () => caps,
    log,
    abortAtDrainStart: (c) => !(c instanceof TransparentConnection) && !c.relaying
  })

  const onConnection = (socket: net.Socket, listener: BoundListener): void => {
    const mode = listener.config.mode === 'socks5' ? 'socks5' : 'convert'
    metrics.connectionsAccepted.inc({ mode })
    const source = sourceKey(socket.remoteAddress)
    const mptcp = listener.config.protocol === 'mptcp' && isMptcp(socket, listener)
    if (listener.config.protocol === 'mptcp' && !mptcp) metrics.mptcpFallbacks.inc({ reason: 'other' })
    const rt = current()
    // A source in auth.trustedPrefixes is authenticated by its address; any other waits in the
    // unauthenticated budget until its request (SOCKS5) or TLVs (Convert) are accepted.
    // Overload: SOCKS5 still takes a slot and gets REP 01 after its request; Convert gets Error 64 now.
    const admitted = admission.admit(capSourceKey(source, rt.limits.perSourceIpv6PrefixLength), {
      authenticated: rt.trusted.has(source),
      refuseOverloaded: mode === 'convert',
      log: { base: connLog, fields: { mode, src: formatRemote(socket) } }
    })
    if (!admitted.ok) {
      metrics.connectionsRejected.inc({ mode, reason: rejectedLabel(admitted.reason) })
      if (mode === 'convert') {
        refuseConvertAtAccept(socket, source, { ...connDeps, converter })
      } else {
        socket.on('error', () => {})
        socket.destroy()
      }
      return
    }
    const { ticket } = admitted
    metrics.connectionsActive.inc({ mode })
    if (mptcp) metrics.mptcpConnectionsActive.inc()
    // Admitted: from here a process death resets the client leg, also during the handshake
    // (docs/design/limits.md); a refusal with an answer switches it back (disarmResetOnClose).
    const lingerError = armResetOnClose(socket)
    const info = {
      id: ticket.id,
      source,
      mptcp,
      accepted: now(),
      overloaded: ticket.overloaded,
      authenticated: ticket.authenticated,
      log: ticket.log ?? connLog,
      onDone: () => {
        metrics.connectionsActive.dec({ mode })
        if (mptcp) metrics.mptcpConnectionsActive.dec()
        ticket.release()
      }
    }
    if (lingerError !== undefined) info.log.debug({ err: { message: lingerError.message } }, 'SO_LINGER {1, 0} refused: a crash during the handshake closes with FIN')
    ticket.attach(mode === 'convert' ? new ConvertConnection(socket, info, { ...connDeps, converter }) : new Socks5Connection(socket, info, connDeps))
  }

  const listeners = new ListenerSet({
    log,
    onUnavailable: initial.mptcp.onUnavailable,
    highWaterMark: initial.limits.highWaterMark,
    ...(inWorker ? { reusePort: true } : {}),
    onConnection
  })

  const status = (): ConcentratorStatus => ({
    version: deps.version ?? '0.0.0',
    uptimeSeconds: Math.round((now() - startedAt) / 1000),
    ready: ready(),
    draining: !admission.admitting,
    listeners: listenerStatus(),
    connections: {
      active: admission.size,
      relaying: sessions.size,
      handshaking: admission.size - sessions.size,
      ...capsStatus(caps)
    },
    auth: {
      trustedPrefixes: config.auth.trustedPrefixes.length,
      users: runtime?.verifier?.size ?? 0,
      throttledSources: runtime?.backoff.throttledCount() ?? 0
    },
    policy: { hostAddresses: [...(hostAddresses?.addresses ?? [])] },
    overload: overload.status(),
    kernel: machine.kernelStatus()
  })
  const ready = (): boolean => admission.admitting && startPromise !== undefined && listeners.allBound
  const listenerStatus = (): ListenerStatus[] =>
    listeners.listeners.map((l) => ({ host: l.address.host, port: l.address.port, mode: l.config.mode, protocol: l.protocol }))

  const reload = async (next: ConcentratorConfig): Promise<void> => {
    try {
      checkReload(config, next)
      checkConfig(next)
      const built = await buildRuntime(next, runtimeDeps, runtime)
      const old = runtime
      runtime = built
      config = next
      converter.update(next.convert)
      overload.update(next.overload)
      caps?.setLimits(capLimits(built))
      metrics.connectionsMax.set(built.limits.maxConnections)
      deps.log.level = next.log.level
      if (old !== undefined) retire(old, next)
      await listeners.reconcile(next.listeners)
      updateListenerGauge()
    } catch (err) {
      reloadFailed(err)
      throw err
    }
    metrics.configReloads.inc({ result: 'success' })
    metrics.configLastReloadSuccess.setToCurrentTime()
    log.info({ maxConnections: runtime.limits.maxConnections, listeners: listenerStatus() }, 'configuration reloaded')
  }
  const reloadFailed = (err: unknown): void => {
    metrics.configReloads.inc({ result: 'failure' })
    log.error({ err }, 'reload refused; keeping the previous configuration')
  }
  /** The old policy's lookups may still be answering requests in flight: close it later. */
  const retire = (old: Runtime, next: ConcentratorConfig): void => {
    if (old.policy !== runtime?.policy) setTimeout(() => { old.policy.close() }, next.policy.dns.deadlineMs + 1000).unref()
  }
  const updateListenerGauge = (): void => {
    for (const protocol of ['mptcp', 'tcp'] as const) {
      metrics.listenersBound.set({ protocol },
        listeners.listeners.filter((l) => l.protocol === protocol).length)
    }
  }

  const mgmt = buildMgmtServer({
    log: childFor(deps.log, 'mgmt'),
    registry,
    token: initial.management.token,
    allowedHosts: mgmtAllowedHosts(initial.management.listen.host),
    limits: initial.management.limits,
    onRefused: (reason) => { metrics.mgmtConnectionsRefused.inc({ reason }) },
    readiness: () => ({ ready: ready(), checks: { listeners: listeners.allBound, accepting: admission.admitting } }),
    status,
    statusSchema: ConcentratorStatusSchema,
    info: { title: 'hybrid-concentrator management API', version: deps.version ?? '0' },
    routes: (app) => {
      registerConcentratorRoutes(app, {
        status,
        sessions: (offset, limit) => sessions.page(offset, limit, now()),
        reload: deps.requestReload ?? (async () => { await reload(config) })
      })
    }
  })

  /** Before the first runtime: the policy refuses what this namespace has configured, from the start. */
  const watchHostAddresses = async (): Promise<void> => {
    if (deps.hostAddresses !== undefined) { runtimeDeps.hostAddresses = deps.hostAddresses; return }
    if (!initial.policy.hostAddresses.refuse) return
    hostAddresses = await HostAddresses.start({ log: childFor(deps.log, 'host-addresses') })
    runtimeDeps.hostAddresses = hostAddresses
  }

  /**
   * The parts in start order; stopped in reverse after the drain, or after a failed start
   * (shared/src/daemon/start-stop.ts). Every change to the namespace is journalled first.
   */
  const parts = new StartStop(log)
  const doStart = async (): Promise<void> => {
    await parts.start([
      ...(inWorker ? [{ name: 'config check', start: () => { checkConfig(initial) } }] : [...machine.journalParts, ...machine.kernelParts]),
      { name: 'host addresses', start: watchHostAddresses, stop: () => { hostAddresses?.close() } },
      { name: 'data plane', start: dataPlane.start, stop: dataPlane.stop },
      {
        name: 'runtime',
        start: async () => {
          runtime = await buildRuntime(initial, runtimeDeps)
          caps = new ConnectionCaps(capLimits(runtime))
          metrics.connectionsMax.set(runtime.limits.maxConnections)
          warnTfo(initial)
        },
        stop: () => { runtime?.policy.close() }
      },
      ...(inWorker ? [] : machine.joinParts),
      {
        name: 'listeners',
        start: async () => { await listeners.reconcile(initial.listeners); updateListenerGauge() },
        stop: async () => { await listeners.closeAll(); updateListenerGauge() }
      },
      {
        name: 'transparent mode',
        start: async () => { if (initial.transparent.enabled) await startTransparent() },
        // After a drain nothing is left; after a failed start, what it took in before the failure.
        stop: async () => { await admission.drain(0); await transparent?.stop() }
      },
      {
        name: 'probe responder',
        start: async () => { if (initial.probe.enabled && (deps.worker?.index ?? 0) === 0) probe = await startProbeResponder(initial, { log: childFor(deps.log, 'probe'), metrics }) },
        stop: async () => { await probe?.stop() }
      },
      {
        name: 'management API',
        start: async () => { if (deps.listenManagement !== false) await listenMgmt(mgmt, initial.management.listen) },
        stop: async () => { await mgmt.close() }
      },
      {
        name: 'timers',
        start: () => { metrics.configLastReloadSuccess.setToCurrentTime(); startSweep(); overload.start() },
        stop: () => { clearInterval(sweepTimer); overload.stop() }
      }
    ])
    log.info({ maxConnections: current().limits.maxConnections, listeners: listenerStatus() }, 'concentrator ready')
  }
  const startTransparent = async (): Promise<void> => {
    transparent = createTransparentMode({
      config: initial.transparent,
      log: deps.log,
      metrics,
      sessions,
      runtime: current,
      admission,
      sourceKey: (source) => capSourceKey(source, current().limits.perSourceIpv6PrefixLength),
      highWaterMark: initial.limits.highWaterMark,
      dataPlane,
      journal: journalled,
      worker: inWorker
    })
    await transparent.start()
  }
  const startSweep = (): void => {
    sweepTimer = setInterval(() => {
      runtime?.backoff.sweep()
      converter.sweep()
      metrics.sourcesThrottled.set(runtime?.backoff.throttledCount() ?? 0)
    }, SWEEP_MS).unref()
  }
  const warnTfo = (c: ConcentratorConfig): void => {
    const value = tfoSysctl()
    if (value !== undefined && (value & 0x2) === 0 && c.listeners.some((l) => l.fastOpenQueue > 0)) {
      log.warn({ tcp_fastopen: value },
        'server TCP Fast Open is off in this network namespace (sysctl net.ipv4.tcp_fastopen lacks bit 0x2): TFO queues have no effect')
    }
  }

  const doStop = async (): Promise<void> => {
    admission.stopAdmitting() // synchronously: readiness is false from the moment stop() is called
    listeners.setAccepting(false)
    if (startPromise !== undefined) await startPromise.catch(() => {})
    log.info({ active: admission.size, drainTimeoutMs: config.limits.drainTimeoutMs }, 'draining')
    // Transparent mode's listeners and nft rules stay until its connections are gone (their MP_JOINs).
    await admission.drain(config.limits.drainTimeoutMs)
    await parts.stop()
    log.info('concentrator stopped')
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
    listeners: listenerStatus,
    ready,
    status,
    activeConnections: () => admission.size
  }
}

function isMptcp (socket: net.Socket, listener: BoundListener): boolean {
  if (listener.protocol !== 'mptcp') return false
  try {
    return !isMptcpFallback(socket)
  } catch {
    return false
  }
}
