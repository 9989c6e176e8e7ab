/**
 * The supervisor of `workers` > 1 (docs/scale-out.md, "Many cores on one machine"): the process
 * started as `hybrid-concentrator` forks N workers of the same entry (main.ts), each binding every
 * listener with SO_REUSEPORT (the kernel spreads the initial subflows over them; an MP_JOIN is matched
 * to its connection by token, namespace-wide, whichever worker's listener it reaches). The
 * supervisor owns what is machine-wide and exists once:
 *
 *   start: crash journal → kernel profile → join endpoints (machine-setup.ts) → workers (forked,
 *          started when every one reported ready; one that exits first fails the start) →
 *          transparent mode's system state (modes/hag-setup.ts; the workers bind only the TPROXY
 *          listeners) → the management API (one, on `management.listen`).
 *   stop:  readiness off → every worker drains in parallel (`stop` over IPC; SIGTERM to the process
 *          group reaches them too, the same path) ≤ limits.drainTimeoutMs + a grace → SIGKILL what
 *          is left → management API → transparent setup → join endpoints → kernel profile restored.
 *   reload(config): already validated once by the loader; start-only keys (workers included) are
 *          refused here, else every worker applies the same configuration.
 *   A worker that exits unasked is counted and forked again after a back-off (0.5 s doubling to
 *   30 s; reset once a worker has been up for a minute). A worker exits when the supervisor's IPC
 *   channel closes (worker.ts), so none outlives a killed supervisor.
 *
 * Management API: `/metrics` merges the workers' registries (a `worker` label, metrics-merge.ts) with
 * the supervisor's; `/readyz` is ready only when every worker is; `/api/v1/status` lists the workers;
 * `/api/v1/sessions` merges their session pages.
 */
import { Registry, collectDefaultMetrics } from 'prom-client'
import { childFor, type Logger } from '../../../shared/src/log.ts'
import { ConfigError, HybridError } from '../../../shared/src/errors.ts'
import { buildMgmtServer, listenMgmt, type MgmtApp } from '../../../shared/src/mgmt/mgmt-server.ts'
import { registerCommonRoutes } from '../../../shared/src/mgmt/common-routes.ts'
import { StartStop } from '../../../shared/src/daemon/start-stop.ts'
import { createCounter, createGauge } from '../../../shared/src/metrics/metric-spec.ts'
import { commonMetricSpecs } from '../../../shared/src/metrics/common-metrics.ts'
import { registerKernelMib } from '../../../shared/src/metrics/kernel-mib.ts'
import { buildInfoSpec } from '../../../shared/src/metrics/registry.ts'
import { runCommand, type CommandRunner } from '../../../shared/src/sys/command.ts'
import type { ConcentratorConfig } from '../config/config.ts'
import { concentratorConfigProblems } from '../config/check.ts'
import { resolveWorkers } from '../config/workers.ts'
import { createMachineSetup } from '../machine-setup.ts'
import { HagSetup } from '../modes/hag-setup.ts'
import { mgmtAllowedHosts } from '../mgmt/routes.ts'
import { checkReload } from '../config/reload-plan.ts'
import type { SessionPage } from '../mgmt/session-table.ts'
import type { WorkerChild } from './ipc.ts'
import { WorkerPool } from './worker-pool.ts'
import { mergeSessionPages, mergeWorkerMetrics, type MetricsJson } from './metrics-merge.ts'
import { createSupervisorMetrics, type SupervisorMetrics } from './supervisor-metrics.ts'
import { SupervisorStatusSchema, type SupervisorStatus } from './status-schema.ts'

export interface SupervisorDeps {
  log: Logger
  version: string
  commit: string
  /** The loader's reload path (POST /api/v1/reload). */
  requestReload: () => Promise<void>
  /** Fork worker `index` (main.ts: child_process.fork of the same entry with the same arguments). */
  fork: (index: number) => WorkerChild
  /** This process's PID (for /api/v1/status). */
  pid: number
  run?: CommandRunner
  clock?: () => number
  /** Back-off before the first restart of a worker; doubles up to 30 s. Default 500 ms. */
  restartBaseMs?: number
  /** Timeout of one IPC call (metrics, status, sessions). Default 3000 ms; reload: drainTimeoutMs. */
  callTimeoutMs?: number
}

export interface Supervisor {
  start: () => Promise<void>
  stop: () => Promise<void>
  reload: (config: ConcentratorConfig) => Promise<void>
  reloadFailed: (err: unknown) => void
  ready: () => boolean
  status: () => SupervisorStatus
}

/** Timeout of one IPC call (metrics, status, sessions) unless given. */
const CALL_TIMEOUT_MS = 3000

function checkConfig (config: ConcentratorConfig): void {
  const problems = concentratorConfigProblems(config)
  const first = problems[0]
  if (first !== undefined) throw new ConfigError('HYBRID_ERR_CONFIG_INVALID', `/${first.path.join('/')}: ${first.message}`, { detail: { key: first.path.join('.') } })
}

interface SupervisorParts {
  readonly log: Logger
  readonly deps: SupervisorDeps
  readonly initial: ConcentratorConfig
  readonly pool: WorkerPool
  readonly startedAt: number
  readonly now: () => number
  readonly kernelStatus: () => SupervisorStatus['kernel']
}

/** The registry of the supervisor's own series: build info, process metrics, the MPTCP MIB (once per namespace). */
function supervisorRegistry (deps: SupervisorDeps, count: number): {
  registry: Registry
  metrics: SupervisorMetrics
  mgmtRefused: MgmtRefusedCounter
} {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  createGauge(registry, buildInfoSpec).set({ daemon: 'concentrator', version: deps.version, commit: deps.commit, node_version: process.version }, 1)
  // The namespace's MPTCP MIB is read once, here: the workers do not export it (kernelMib: false).
  registerKernelMib(registry)
  const metrics = createSupervisorMetrics(registry)
  metrics.workersConfigured.set(count)
  return { registry, metrics, mgmtRefused: createCounter(registry, commonMetricSpecs.mgmtConnectionsRefused) }
}

type MgmtRefusedCounter = ReturnType<typeof createCounter<typeof commonMetricSpecs.mgmtConnectionsRefused.labels>>

function supervisorStatus (p: SupervisorParts, ready: boolean): SupervisorStatus {
  const workers = p.pool.statuses()
  const answered = workers.map((w) => w.status).filter((s) => s !== null)
  return {
    version: p.deps.version,
    uptimeSeconds: Math.round((p.now() - p.startedAt) / 1000),
    ready,
    draining: p.pool.stopping,
    pid: p.deps.pid,
    connections: {
      active: answered.reduce((n, s) => n + s.connections.active, 0),
      relaying: answered.reduce((n, s) => n + s.connections.relaying, 0)
    },
    workers,
    kernel: p.kernelStatus()
  }
}

/** One management API for the machine: merged metrics and sessions, the workers' status, reload. */
function supervisorMgmt (p: SupervisorParts, registry: Registry, mgmtRefused: MgmtRefusedCounter, ready: () => boolean): MgmtApp {
  const { pool, initial, deps } = p
  class MergedRegistry extends Registry {
    override async metrics (): Promise<string> {
      const [own, workers] = await Promise.all([registry.getMetricsAsJSON(), pool.callAll<MetricsJson>({ kind: 'metrics' })])
      return mergeWorkerMetrics(own as MetricsJson, workers).metrics()
    }
  }
  const status = (): SupervisorStatus => supervisorStatus(p, ready())
  return buildMgmtServer({
    log: childFor(deps.log, 'mgmt'),
    registry: new MergedRegistry(),
    token: initial.management.token,
    allowedHosts: mgmtAllowedHosts(initial.management.listen.host),
    limits: initial.management.limits,
    onRefused: (reason) => { mgmtRefused.inc({ reason }) },
    readiness: () => ({ ready: ready(), checks: pool.readiness() }),
    status,
    statusSchema: SupervisorStatusSchema,
    info: { title: 'hybrid-concentrator management API (supervisor of workers)', version: deps.version },
    routes: (app) => {
      app.get('/api/v1/status', {
        schema: { summary: 'Supervisor status: workers with their PIDs and their own status', tags: ['status'], response: { 200: SupervisorStatusSchema } }
      }, async () => { await pool.refreshStatuses(); return status() })
      registerCommonRoutes(app, {
        sessions: async (offset, limit) => mergeSessionPages(await pool.callAll<SessionPage>({ kind: 'sessions', limit: offset + limit }), offset, limit),
        reload: deps.requestReload
      })
    }
  })
}

export function createSupervisor (initial: ConcentratorConfig, deps: SupervisorDeps): Supervisor {
  const log = childFor(deps.log, 'supervisor')
  const now = deps.clock ?? Date.now
  const count = resolveWorkers(initial.workers)
  const callTimeout = deps.callTimeoutMs ?? CALL_TIMEOUT_MS
  const { registry, metrics, mgmtRefused } = supervisorRegistry(deps, count)
  const pool = new WorkerPool({ count, fork: deps.fork, log, now, metrics, restartBaseMs: deps.restartBaseMs ?? 500, callTimeoutMs: callTimeout })
  const machine = createMachineSetup(initial, { log, run: deps.run ?? runCommand, check: () => { checkConfig(initial) } })
  const hag = initial.transparent.enabled ? new HagSetup({ config: initial.transparent, log: childFor(deps.log, 'transparent'), journal: machine.journalled }) : undefined
  const p: SupervisorParts = { log, deps, initial, pool, startedAt: now(), now, kernelStatus: () => machine.kernelStatus() }
  const ready = (): boolean => pool.started && !pool.stopping && pool.allReady()
  const mgmt = supervisorMgmt(p, registry, mgmtRefused, ready)
  let config = initial
  let startPromise: Promise<void> | undefined
  let stopPromise: Promise<void> | undefined

  const parts = new StartStop(log)
  const doStart = async (): Promise<void> => {
    await parts.start([
      ...machine.journalParts,
      ...machine.kernelParts,
      ...machine.joinParts,
      { name: 'workers', start: async () => { await pool.start() }, stop: async () => { await pool.stop(config.limits.drainTimeoutMs) } },
      // Transparent mode's nft TPROXY table, fwmark routes, join endpoints and C flag, once; after
      // the workers' TPROXY listeners are bound (as the single process does), removed after they exit.
      ...(hag === undefined ? [] : [{ name: 'transparent setup', start: async () => { await hag.apply() }, stop: async () => { await hag.remove() } }]),
      { name: 'management API', start: async () => { await listenMgmt(mgmt, initial.management.listen) }, stop: async () => { await mgmt.close() } }
    ])
    log.info({ workers: count, management: initial.management.listen }, 'concentrator supervisor ready')
  }
  const doStop = async (): Promise<void> => {
    pool.markStopping()
    if (startPromise !== undefined) await startPromise.catch(() => {})
    log.info({ workers: count, drainTimeoutMs: config.limits.drainTimeoutMs }, 'stopping: every worker drains')
    await pool.stop(config.limits.drainTimeoutMs)
    await parts.stop()
    log.info('concentrator supervisor stopped')
  }
  const reloadFailed = (err: unknown): void => { log.error({ err }, 'reload refused; the workers keep the previous configuration') }
  const reload = async (next: ConcentratorConfig): Promise<void> => {
    try {
      checkReload(config, next)
    } catch (err) {
      reloadFailed(err)
      throw err
    }
    const failed = await pool.callEach({ kind: 'reload', config: next }, next.limits.drainTimeoutMs + callTimeout)
    // A worker (re)started later reads the file itself; keep what the workers now run.
    config = next
    if (failed.length > 0) {
      log.error({ failed: failed.map((f) => ({ worker: f.worker, message: f.err.message })) }, 'reload refused by some workers')
      throw failed[0]?.err ?? new HybridError('HYBRID_ERR_INTERNAL', 'reload failed')
    }
    log.info({ workers: pool.runningCount() }, 'configuration reloaded in every worker')
  }

  return {
    start: async () => { startPromise ??= doStart(); await startPromise },
    stop: async () => { stopPromise ??= doStop(); await stopPromise },
    reload,
    reloadFailed,
    ready,
    status: () => supervisorStatus(p, ready())
  }
}
