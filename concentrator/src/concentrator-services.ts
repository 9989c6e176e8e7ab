/**
 * The concentrator's long-lived services (concentrator-state.ts `ConcentratorServices`), built once
 * by `createConcentrator`: registry and metrics, sessions, data plane, converter state, the
 * machine-wide setup, overload manager, admission and the listener set.
 */
import { ConfigError } from '../../shared/src/errors.ts'
import { formatCheckProblem } from '../../shared/src/config/problem.ts'
import { childFor } from '../../shared/src/log.ts'
import { createDataPlane, type DataPlane } from '../../shared/src/net/data-plane.ts'
import type { CapLimits } from '../../shared/src/net/connection-caps.ts'
import { runCommand } from '../../shared/src/sys/command.ts'
import { OverloadManager } from '../../shared/src/daemon/overload.ts'
import { Admission } from '../../shared/src/daemon/admission.ts'
import { RateLimitedLog } from '../../shared/src/rate-limited-log.ts'
import { acceptConnection } from './accept/accept-connection.ts'
import { ListenerSet } from './accept/listener-set.ts'
import type { BuildRuntimeDeps } from './build-runtime.ts'
import { concentratorConfigProblems } from './config/check.ts'
import type { ConcentratorConfig } from './config/config.ts'
import type { ConcentratorConnection, ConcentratorDeps, ConcentratorServices, ConcentratorState } from './concentrator-state.ts'
import { createMachineSetup } from './machine-setup.ts'
import { createConcentratorMetrics, createConcentratorRegistry } from './metrics.ts'
import { SessionTable } from './mgmt/session-table.ts'
import { ConverterState } from './modes/convert-state.ts'
import { TransparentConnection } from './modes/transparent-connection.ts'
import type { Runtime } from './runtime.ts'
import { createSupervisorMetrics } from './workers/supervisor-metrics.ts'

/**
 * The loader already ran these checks (main.ts passes `check: concentratorConfigProblems`); repeated
 * at start for a concentrator built without the loader (tests, embedding). The same function.
 */
export function checkConfig (config: ConcentratorConfig): void {
  const problems = concentratorConfigProblems(config)
  if (problems.length > 0) {
    const key = problems[0]?.path.join('.') ?? ''
    throw new ConfigError(problems.some((p) => p.message.startsWith('cannot read')) ? 'HYBRID_ERR_CONFIG_READ' : 'HYBRID_ERR_CONFIG_INVALID',
      problems.map(formatCheckProblem).join('; '), { detail: { key } })
  }
}

export function capLimits (r: Runtime): CapLimits {
  const l = r.limits
  return {
    maxConnections: l.maxConnections,
    perSourceMaxConnections: l.perSourceMaxConnections,
    unauthenticatedMaxConnections: l.unauthenticatedMaxConnections
  }
}

function createRegistry (deps: ConcentratorDeps): Pick<ConcentratorServices, 'registry' | 'metrics'> {
  if (deps.registry === undefined) return createConcentratorRegistry(deps.version ?? '0.0.0', deps.commit ?? 'unknown')
  return { registry: deps.registry, metrics: createConcentratorMetrics(deps.registry, { kernelMib: deps.kernelMib ?? true }) }
}

export function createServices (state: ConcentratorState, deps: ConcentratorDeps): ConcentratorServices {
  const { initial } = state
  const log = childFor(deps.log, 'concentrator')
  const now = deps.clock ?? Date.now
  const { registry, metrics } = createRegistry(deps)
  const sessions = new SessionTable()
  const current = (): Runtime => {
    if (state.runtime === undefined) throw new ConfigError('HYBRID_ERR_INTERNAL', 'concentrator not started')
    return state.runtime
  }
  const overload = new OverloadManager(initial.overload, {
    log: childFor(deps.log, 'overload'),
    metrics,
    relays: () => sessions.relays(),
    sourceCounts: () => state.caps?.counts() ?? []
  })
  const dataPlane = createDataPlane(initial.dataPlane, { log: childFor(deps.log, 'data-plane'), maxConnections: initial.limits.maxConnections })
  const errorLog = new RateLimitedLog(20, now)
  const inWorker = deps.worker !== undefined
  const processMetrics = inWorker ? undefined : createSupervisorMetrics(registry)
  processMetrics?.workersConfigured.set(1)
  const services: ConcentratorServices = {
    deps,
    log,
    connLog: childFor(deps.log, 'socks5'),
    now,
    startedAt: now(),
    registry,
    metrics,
    sessions,
    dataPlane,
    errorLog,
    converter: new ConverterState(initial.convert, { now }),
    machine: createMachineSetup(initial, { log, run: deps.run ?? runCommand, check: () => { checkConfig(initial) } }),
    inWorker,
    processMetrics,
    runtimeDeps: runtimeDeps(deps, metrics, now, dataPlane),
    current,
    connDeps: { metrics, sessions, errorLog, runtime: current, dataPlane },
    overload,
    /**
     * Admission and drain of every accept path, transparent mode's too. A connection still in its
     * SOCKS5/Convert handshake has no transfer to finish: drain closes it at once (waiting for it
     * held every stop until the handshake deadline, ≈ 10 s, with nothing relayed).
     */
    admission: new Admission<ConcentratorConnection>({
      overload,
      caps: () => state.caps,
      log,
      abortAtDrainStart: (c) => !(c instanceof TransparentConnection) && !c.relaying
    }),
    listeners: new ListenerSet({
      log,
      onUnavailable: initial.mptcp.onUnavailable,
      highWaterMark: initial.limits.highWaterMark,
      ...(inWorker ? { reusePort: true } : {}),
      onConnection: (socket, listener) => { acceptConnection(services, socket, listener) }
    })
  }
  return services
}

function runtimeDeps (deps: ConcentratorDeps, metrics: ConcentratorServices['metrics'], now: () => number, dataPlane: DataPlane): BuildRuntimeDeps {
  return {
    metrics,
    now,
    reservedFds: dataPlane.reservedFds,
    ...(deps.resolver === undefined ? {} : { resolver: deps.resolver }),
    ...(deps.openFilesLimit === undefined ? {} : { openFilesLimit: deps.openFilesLimit })
  }
}
