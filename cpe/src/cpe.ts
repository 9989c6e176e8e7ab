/**
 * Composition root of the CPE agent: uplinks → concentrator-facing checks → interception (listeners,
 * routing, nft table) → the mode's upstream per intercepted connection (modes/), plus path metrics
 * and the management API (mgmt/cpe-mgmt.ts). `createCpe(config, deps)` returns a service with
 * idempotent `start()` / `stop()` and `reload(config)` (cpe-reload.ts); main.ts owns the process.
 *
 * start(): the parts of cpe-parts.ts in order. stop(): readiness off → interceptor.stopAccepting()
 * (new LAN connections flow natively: fail-open) → drain ≤ limits.drainTimeoutMs → destroy the rest
 * (reason 'drain') → the parts in reverse (nft table and routing removed, uplinks, management).
 */
import type { Registry } from 'prom-client'
import { childFor } from '../../shared/src/log.ts'
import type { MgmtApp } from '../../shared/src/mgmt/mgmt-server.ts'
import { OverloadManager } from '../../shared/src/daemon/overload.ts'
import { Admission } from '../../shared/src/daemon/admission.ts'
import { StartStop } from '../../shared/src/daemon/start-stop.ts'
import type { Config, CpeConfig } from './config/config.ts'
import { cpeParts } from './cpe-parts.ts'
import { asConfig, cpeReloader } from './cpe-reload.ts'
import { initialState, type CpeDeps, type CpeServices, type CpeState, type LanUpstream } from './cpe-state.ts'
import { buildCpeMgmt } from './mgmt/cpe-mgmt.ts'
import { CpeSessionTable } from './mgmt/session-table.ts'
import { cpeReady, cpeStatus } from './mgmt/status.ts'
import type { CpeStatus } from './mgmt/status-schema.ts'
import { createCpeMetrics, createCpeRegistry, type CpeMetrics } from './metrics.ts'
import { notInterceptedHandler } from './modes/lan-admission.ts'
import { chooseModeStrategy } from './modes/mode-strategy.ts'
import { PathMonitor } from './paths/path-monitor.ts'
import { createPathHealth, type PathHealth } from './health/path-health.ts'
import { PipeliningMemory } from './modes/pipelining-memory.ts'
import { ConverterMemory } from './modes/convert-reply.ts'
import { PendingDials } from './modes/pending-dials.ts'
import { detectionMs } from './modes/redial-plan.ts'

export type { CpeDeps, InterceptorLike } from './cpe-state.ts'

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
  status: () => CpeStatus
  activeConnections: () => number
}

/** The uplink carrying the initial subflow: the first dsl, else the first. */
function primaryOf (config: Config): string {
  return (config.uplinks.find((u) => u.role === 'dsl') ?? config.uplinks[0])?.name ?? ''
}

function createRegistry (initial: Config, deps: CpeDeps): { registry: Registry, metrics: CpeMetrics } {
  const paths = initial.uplinks.map((u) => u.name)
  if (deps.registry === undefined) return createCpeRegistry(deps.version ?? '0.0.0', deps.commit ?? 'unknown', paths)
  return { registry: deps.registry, metrics: createCpeMetrics(deps.registry, { paths, kernelMib: deps.kernelMib ?? true }) }
}

/** The long-lived services; they read the state (failover, caps) through closures. */
function createServices (state: CpeState, deps: CpeDeps): CpeServices {
  const initial = state.initial
  const now = deps.clock ?? Date.now
  const { registry, metrics } = createRegistry(initial, deps)
  const sessions = new CpeSessionTable()
  const pathMonitor = new PathMonitor({
    metrics,
    paths: initial.uplinks.map((u) => u.name),
    primary: primaryOf(initial),
    countFailovers: !initial.failover.enabled,
    ...(deps.pathSampleMs === undefined ? {} : { sampleMs: deps.pathSampleMs })
  })
  // Pending upstream connects re-dialled once when failover moved off their dead access (docs/failover.md).
  const redials = new PendingDials({
    metrics,
    pathOf: (a) => pathMonitor.pathOf(a),
    steeredTo: () => state.failover?.view().steeredTo ?? undefined,
    boundMs: detectionMs(initial.health),
    sweepMs: initial.health.intervalMs
  })
  const log = childFor(deps.log, 'cpe')
  const overload = new OverloadManager(initial.overload, {
    log: childFor(deps.log, 'overload'),
    metrics,
    relays: () => sessions.relays(),
    sourceCounts: () => state.caps?.counts() ?? []
  })
  return {
    deps,
    log,
    now,
    startedAt: now(),
    registry,
    metrics,
    sessions,
    pathMonitor,
    health: createPathHealth(initial, metrics, childFor(deps.log, 'health')),
    pipelining: new PipeliningMemory(initial.socks5.stepwiseMemoryMs, now),
    converterMemory: new ConverterMemory(now),
    redials,
    overload,
    admission: new Admission<LanUpstream>({ overload, caps: () => state.caps, log })
  }
}

export function createCpe (frozen: CpeConfig, deps: CpeDeps): Cpe {
  const state = initialState(asConfig(frozen))
  const s = createServices(state, deps)
  const { log, admission } = s
  const reloader = cpeReloader(s, state)
  const mgmt = buildCpeMgmt(s, state, reloader)
  const parts = new StartStop(log)
  const ctx = { mgmt, onConnection: chooseModeStrategy(s, state), onNotIntercepted: notInterceptedHandler(s, () => state.config.mode) }
  let startPromise: Promise<void> | undefined
  let stopPromise: Promise<void> | undefined

  const doStart = async (): Promise<void> => {
    await parts.start(cpeParts(s, state, ctx))
    const { caps, upstream, initial } = state
    log.info({ maxConnections: caps?.limits.maxConnections, concentrator: upstream?.concentrator, intercept: initial.intercept.rules }, 'cpe agent ready')
  }
  const doStop = async (): Promise<void> => {
    admission.stopAdmitting() // synchronously: readiness is false from the moment stop() is called
    state.interceptor?.stopAccepting()
    if (startPromise !== undefined) await startPromise.catch(() => {})
    state.interceptor?.stopAccepting()
    log.info({ active: admission.size, drainTimeoutMs: state.config.limits.drainTimeoutMs }, 'draining')
    await admission.drain(state.config.limits.drainTimeoutMs)
    await parts.stop()
    log.info('cpe agent stopped')
  }

  return {
    start: async () => { startPromise ??= doStart(); await startPromise },
    stop: async () => { stopPromise ??= doStop(); await stopPromise },
    ...reloader,
    mgmt,
    registry: s.registry,
    metrics: s.metrics,
    sessions: s.sessions,
    health: s.health,
    ready: () => cpeReady(s, state),
    status: () => cpeStatus(s, state),
    activeConnections: () => admission.size
  }
}
