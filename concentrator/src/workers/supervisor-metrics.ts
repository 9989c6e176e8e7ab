/**
 * The supervisor's own metrics (`workers` > 1, docs/metrics.md): served next to the workers'
 * series, which carry a `worker` label (metrics-merge.ts). Series without a `worker` label are the
 * supervisor process's own (its process_* metrics, build info, the kernel MPTCP MIB read once).
 */
import type { Registry } from 'prom-client'
import { createCounter, createPlainGauge, metricSpec } from '../../../shared/src/metrics/metric-spec.ts'
import type { DaemonMetricsReference } from '../../../shared/src/metrics/metrics-reference.ts'

export const WorkerLabel = { describe: 'worker index, 0 … workers−1' } as const

export const supervisorMetricSpecs = {
  workersConfigured: metricSpec({
    name: 'hybrid_concentrator_workers',
    type: 'gauge',
    unit: 'processes',
    help: 'Worker processes serving the listeners (`workers`, resolved; 1 for a single process).',
    labels: {}
  }),
  workersUp: metricSpec({
    name: 'hybrid_concentrator_workers_up',
    type: 'gauge',
    unit: 'processes',
    help: 'Workers running and ready (started and not draining); below hybrid_concentrator_workers while one restarts (a single process: 1 while ready).',
    labels: {}
  }),
  workerRestarts: metricSpec({
    name: 'hybrid_concentrator_worker_restarts_total',
    type: 'counter',
    unit: 'restarts',
    help: 'Workers restarted by the supervisor after they exited unasked (crash, kill), by worker index.',
    labels: { worker: WorkerLabel }
  })
} as const

export function createSupervisorMetrics (registry: Registry) {
  const s = supervisorMetricSpecs
  return {
    workersConfigured: createPlainGauge(registry, s.workersConfigured),
    workersUp: createPlainGauge(registry, s.workersUp),
    workerRestarts: createCounter(registry, s.workerRestarts)
  }
}

export type SupervisorMetrics = ReturnType<typeof createSupervisorMetrics>

/** Input of docs/metrics.md: the supervisor's section (scripts/metrics-reference.mjs). */
export const supervisorMetricsReference: DaemonMetricsReference = {
  register: (registry) => { createSupervisorMetrics(registry) },
  section: {
    title: 'Concentrator supervisor metrics (workers > 1)',
    intro: 'Created by `createSupervisorMetrics(registry)` (concentrator/src/workers/supervisor-metrics.ts) in the supervisor only. ' +
      'With `workers` > 1 the one `/metrics` page also carries every worker\'s series (common, concentrator) with a `worker` label (`0` … workers−1); ' +
      'series without it are the supervisor\'s own: these, its process metrics, build info and the kernel MPTCP MIB (read once, not per worker). ' +
      'Sum over workers in PromQL with `sum without (worker) (…)`.',
    specs: Object.values(supervisorMetricSpecs)
  }
}
