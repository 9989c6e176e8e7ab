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
import { buildMgmtServer, listenMgmt } from '../../../shared/src/mgmt/mgmt-server.ts'
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
import type { ConcentratorStatus } from '../mgmt/status-schema.ts'
import { checkReload } from '../config/reload-plan.ts'
import type { SessionPage } from '../mgmt/session-table.ts'
import type { FromWorker, WorkerCall, WorkerChild } from './ipc.ts'
import { mergeSessionPages, mergeWorkerMetrics, type MetricsJson } from './metrics-merge.ts'
import { createSupervisorMetrics } from './supervisor-metrics.ts'
import { SupervisorStatusSchema, type SupervisorStatus, type WorkerStatus } from './status-schema.ts'

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

interface Slot {
  readonly index: number
  child?: WorkerChild | undefined
  pid?: number | undefined
  ready: boolean
  restarts: number
  consecutive: number
  upSince: number
  lastStatus: ConcentratorStatus | null
  /** Resolves when the current child has exited. */
  exited: Promise<void>
  restartTimer?: NodeJS.Timeout | undefined
}

interface Pending { resolve: (v: unknown) => void, reject: (e: Error) => void, timer: NodeJS.Timeout }

const MAX_BACKOFF_MS = 30_000
const STABLE_MS = 60_000
/** After the drain timeout, how long a worker may take to close and exit before SIGKILL. */
const EXIT_GRACE_MS = 5000

function checkConfig (config: ConcentratorConfig): void {
  const problems = concentratorConfigProblems(config)
  const first = problems[0]
  if (first !== undefined) throw new ConfigError('HYBRID_ERR_CONFIG_INVALID', `/${first.path.join('/')}: ${first.message}`, { detail: { key: first.path.join('.') } })
}

export function createSupervisor (initial: ConcentratorConfig, deps: SupervisorDeps): Supervisor {
  const log = childFor(deps.log, 'supervisor')
  const now = deps.clock ?? Date.now
  const startedAt = now()
  const count = resolveWorkers(initial.workers)
  const restartBase = deps.restartBaseMs ?? 500
  const callTimeout = deps.callTimeoutMs ?? 3000
  let config = initial
  let stopping = false
  let started = false
  let startPromise: Promise<void> | undefined
  let stopPromise: Promise<void> | undefined
  let nextId = 1
  const pending = new Map<number, Pending>()

  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  createGauge(registry, buildInfoSpec).set({ daemon: 'concentrator', version: deps.version, commit: deps.commit, node_version: process.version }, 1)
  // The namespace's MPTCP MIB is read once, here: the workers do not export it (kernelMib: false).
  registerKernelMib(registry)
  const metrics = createSupervisorMetrics(registry)
  const mgmtRefused = createCounter(registry, commonMetricSpecs.mgmtConnectionsRefused)
  metrics.workersConfigured.set(count)

  const slots: Slot[] = Array.from({ length: count }, (_, index) => ({
    index, ready: false, restarts: 0, consecutive: 0, upSince: 0, lastStatus: null, exited: Promise.resolve()
  }))
  const updateUp = (): void => { metrics.workersUp.set(slots.filter((s) => s.ready).length) }

  const machine = createMachineSetup(initial, { log, run: deps.run ?? runCommand, check: () => { checkConfig(initial) } })

  const hag = initial.transparent.enabled ? new HagSetup({ config: initial.transparent, log: childFor(deps.log, 'transparent'), journal: machine.journalled }) : undefined

  const call = async (slot: Slot, c: WorkerCall, timeoutMs = callTimeout): Promise<unknown> => {
    const child = slot.child
    if (child === undefined) throw new HybridError('HYBRID_ERR_INTERNAL', `worker ${slot.index} is not running`)
    const id = nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { pending.delete(id); reject(new HybridError('HYBRID_ERR_INTERNAL', `worker ${slot.index}: no answer to ${c.kind} within ${timeoutMs} ms`)) }, timeoutMs)
      pending.set(id, { resolve, reject, timer })
      try {
        child.send({ t: 'call', id, call: c })
      } catch (err) {
        clearTimeout(timer); pending.delete(id); reject(err instanceof Error ? err : new Error(String(err)))
      }
    })
  }
  /** Call every running worker; a worker that fails or is down is absent from the result. */
  const callAll = async <T>(c: WorkerCall, timeoutMs?: number): Promise<Map<number, T>> => {
    const out = new Map<number, T>()
    await Promise.all(slots.filter((s) => s.child !== undefined).map(async (s) => {
      try { out.set(s.index, await call(s, c, timeoutMs) as T) } catch (err) { log.debug({ err, worker: s.index }, `worker did not answer ${c.kind}`) }
    }))
    return out
  }

  const onMessage = (slot: Slot, m: FromWorker): void => {
    if (m.t === 'ready') {
      slot.ready = true
      slot.upSince = now()
      updateUp()
      log.info({ worker: slot.index, pid: m.pid }, 'worker ready')
      if (!stopping && slots.every((s) => s.ready)) readyWaiter?.()
      return
    }
    if (m.t === 'reply') {
      const p = pending.get(m.id)
      if (p === undefined) return
      pending.delete(m.id)
      clearTimeout(p.timer)
      if (m.ok) p.resolve(m.value)
      else p.reject(new HybridError(m.error.code as 'HYBRID_ERR_INTERNAL', m.error.message))
    }
  }

  const spawn = (slot: Slot): void => {
    const child = deps.fork(slot.index)
    slot.child = child
    slot.pid = child.pid
    slot.ready = false
    let done!: () => void
    slot.exited = new Promise((resolve) => { done = resolve })
    child.on('message', (m) => { onMessage(slot, m) })
    child.on('error', (err) => { log.error({ err, worker: slot.index }, 'worker IPC error') })
    child.on('exit', (code, signal) => {
      const wasUp = slot.ready ? now() - slot.upSince : 0
      slot.child = undefined
      slot.ready = false
      slot.lastStatus = null
      updateUp()
      done()
      if (stopping) { log.info({ worker: slot.index, pid: slot.pid, code, signal }, 'worker exited'); return }
      if (!started) { failStart?.(new HybridError('HYBRID_ERR_INTERNAL', `worker ${slot.index} exited during start (code ${String(code)}, signal ${String(signal)})`)); return }
      slot.consecutive = wasUp >= STABLE_MS ? 0 : slot.consecutive + 1
      const delay = Math.min(MAX_BACKOFF_MS, restartBase * 2 ** Math.max(0, slot.consecutive - 1))
      slot.restarts++
      metrics.workerRestarts.inc({ worker: String(slot.index) })
      log.error({ worker: slot.index, pid: slot.pid, code, signal, restartInMs: delay }, 'worker exited unexpectedly: restarting it')
      slot.restartTimer = setTimeout(() => { slot.restartTimer = undefined; if (!stopping) spawn(slot) }, delay)
    })
  }

  let readyWaiter: (() => void) | undefined // every worker ready: the start goes on
  let failStart: ((err: Error) => void) | undefined // a worker exited before: the start fails
  const startWorkers = async (): Promise<void> => {
    await new Promise<void>((resolve, reject) => {
      readyWaiter = resolve
      failStart = reject
      for (const slot of slots) spawn(slot)
    })
    readyWaiter = undefined
    failStart = undefined
    started = true
    log.info({ workers: slots.map((s) => ({ index: s.index, pid: s.pid })) }, 'all workers ready')
  }

  /** Every worker drains in parallel; SIGKILL for one still running after the drain timeout and a grace. */
  const stopWorkers = async (): Promise<void> => {
    stopping = true
    updateUp()
    for (const s of slots) { clearTimeout(s.restartTimer); s.restartTimer = undefined }
    const deadline = config.limits.drainTimeoutMs + EXIT_GRACE_MS
    await Promise.all(slots.map(async (s) => {
      const child = s.child
      if (child === undefined) return
      try { child.send({ t: 'stop' }) } catch { child.kill('SIGTERM') }
      let timer: NodeJS.Timeout | undefined
      const killed = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          log.error({ worker: s.index, pid: s.pid, afterMs: deadline }, 'worker did not exit after the drain: SIGKILL')
          child.kill('SIGKILL')
          resolve()
        }, deadline)
      })
      await Promise.race([s.exited, killed])
      clearTimeout(timer)
      await s.exited
    }))
    for (const p of pending.values()) { clearTimeout(p.timer); p.reject(new HybridError('HYBRID_ERR_INTERNAL', 'supervisor stopping')) }
    pending.clear()
  }

  const ready = (): boolean => started && !stopping && slots.every((s) => s.ready)
  const status = (): SupervisorStatus => {
    const workers: WorkerStatus[] = slots.map((s) => ({
      index: s.index, pid: s.child === undefined ? null : (s.pid ?? null), ready: s.ready, restarts: s.restarts, status: s.lastStatus
    }))
    const answered = slots.map((s) => s.lastStatus).filter((s) => s !== null)
    return {
      version: deps.version,
      uptimeSeconds: Math.round((now() - startedAt) / 1000),
      ready: ready(),
      draining: stopping,
      pid: deps.pid,
      connections: {
        active: answered.reduce((n, s) => n + s.connections.active, 0),
        relaying: answered.reduce((n, s) => n + s.connections.relaying, 0)
      },
      workers,
      kernel: machine.kernelStatus()
    }
  }
  const refreshStatus = async (): Promise<SupervisorStatus> => {
    const answers = await callAll<ConcentratorStatus>({ kind: 'status' })
    for (const s of slots) s.lastStatus = answers.get(s.index) ?? null
    return status()
  }

  class MergedRegistry extends Registry {
    override async metrics (): Promise<string> {
      const [own, workers] = await Promise.all([registry.getMetricsAsJSON(), callAll<MetricsJson>({ kind: 'metrics' })])
      return mergeWorkerMetrics(own as MetricsJson, workers).metrics()
    }
  }

  const mgmt = buildMgmtServer({
    log: childFor(deps.log, 'mgmt'),
    registry: new MergedRegistry(),
    token: initial.management.token,
    allowedHosts: mgmtAllowedHosts(initial.management.listen.host),
    limits: initial.management.limits,
    onRefused: (reason) => { mgmtRefused.inc({ reason }) },
    readiness: () => ({ ready: ready(), checks: Object.fromEntries(slots.map((s) => [`worker${s.index}`, s.ready])) }),
    status,
    statusSchema: SupervisorStatusSchema,
    info: { title: 'hybrid-concentrator management API (supervisor of workers)', version: deps.version },
    routes: (app) => {
      app.get('/api/v1/status', {
        schema: { summary: 'Supervisor status: workers with their PIDs and their own status', tags: ['status'], response: { 200: SupervisorStatusSchema } }
      }, async () => refreshStatus())
      registerCommonRoutes(app, {
        sessions: async (offset, limit) => mergeSessionPages(await callAll<SessionPage>({ kind: 'sessions', limit: offset + limit }), offset, limit),
        reload: deps.requestReload
      })
    }
  })

  const parts = new StartStop(log)
  const doStart = async (): Promise<void> => {
    await parts.start([
      ...machine.journalParts,
      ...machine.kernelParts,
      ...machine.joinParts,
      { name: 'workers', start: startWorkers, stop: stopWorkers },
      // Transparent mode's nft TPROXY table, fwmark routes, join endpoints and C flag, once; after
      // the workers' TPROXY listeners are bound (as the single process does), removed after they exit.
      ...(hag === undefined ? [] : [{ name: 'transparent setup', start: async () => { await hag.apply() }, stop: async () => { await hag.remove() } }]),
      {
        name: 'management API',
        start: async () => { await listenMgmt(mgmt, initial.management.listen) },
        stop: async () => { await mgmt.close() }
      }
    ])
    log.info({ workers: count, management: initial.management.listen }, 'concentrator supervisor ready')
  }
  const doStop = async (): Promise<void> => {
    stopping = true
    if (startPromise !== undefined) await startPromise.catch(() => {})
    log.info({ workers: count, drainTimeoutMs: config.limits.drainTimeoutMs }, 'stopping: every worker drains')
    await stopWorkers()
    await parts.stop()
    log.info('concentrator supervisor stopped')
  }

  const reload = async (next: ConcentratorConfig): Promise<void> => {
    try {
      checkReload(config, next)
    } catch (err) {
      reloadFailed(err)
      throw err
    }
    const running = slots.filter((s) => s.child !== undefined)
    const results = await Promise.allSettled(running.map(async (s) => call(s, { kind: 'reload', config: next }, next.limits.drainTimeoutMs + callTimeout)))
    // A worker (re)started later reads the file itself; keep what the workers now run.
    config = next
    const failed = results.flatMap((r, i) => r.status === 'rejected' ? [{ worker: running[i]?.index, err: r.reason as Error }] : [])
    if (failed.length > 0) {
      log.error({ failed: failed.map((f) => ({ worker: f.worker, message: f.err.message })) }, 'reload refused by some workers')
      throw failed[0]?.err ?? new HybridError('HYBRID_ERR_INTERNAL', 'reload failed')
    }
    log.info({ workers: running.length }, 'configuration reloaded in every worker')
  }
  const reloadFailed = (err: unknown): void => { log.error({ err }, 'reload refused; the workers keep the previous configuration') }

  return {
    start: async () => { startPromise ??= doStart(); await startPromise },
    stop: async () => { stopPromise ??= doStop(); await stopPromise },
    reload,
    reloadFailed,
    ready,
    status
  }
}
