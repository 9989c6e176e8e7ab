/**
 * The CPE agent's long-lived services (cpe-state.ts `CpeServices`), built once by `createCpe`:
 * registry and metrics, session table, path monitor and health, pipelining and converter
 * memories, pending redials, data plane, overload manager and admission.
 */
import type { Registry } from 'prom-client'
import { childFor } from '../../shared/src/log.ts'
import { OverloadManager } from '../../shared/src/daemon/overload.ts'
import { Admission } from '../../shared/src/daemon/admission.ts'
import { createDataPlane } from '../../shared/src/net/data-plane.ts'
import type { Config } from './config/config.ts'
import type { CpeDeps, CpeServices, CpeState, LanUpstream } from './cpe-state.ts'
import { CpeSessionTable } from './mgmt/session-table.ts'
import { createCpeMetrics, createCpeRegistry, type CpeMetrics } from './metrics.ts'
import { PathMonitor } from './paths/path-monitor.ts'
import { createPathHealth } from './health/path-health.ts'
import { PipeliningMemory } from './modes/pipelining-memory.ts'
import { ConverterMemory } from './modes/convert-reply.ts'
import { PendingDials } from './modes/pending-dials.ts'
import { detectionMs } from './modes/redial-plan.ts'

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
export function createServices (state: CpeState, deps: CpeDeps): CpeServices {
  const initial = state.initial
  const now = deps.clock ?? Date.now
  const { registry, metrics } = createRegistry(initial, deps)
  const sessions = new CpeSessionTable()
  const dataPlane = createDataPlane(initial.dataPlane, { log: childFor(deps.log, 'data-plane'), maxConnections: initial.limits.maxConnections })
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
    dataPlane,
    overload,
    admission: new Admission<LanUpstream>({ overload, caps: () => state.caps, log })
  }
}
