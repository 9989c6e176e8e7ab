/**
 * The supervisor's merges of what its workers answer over IPC.
 *
 * One `/metrics` page from the supervisor's registry and every worker's `getMetricsAsJSON()` (sent
 * over IPC): each worker's values get a `worker` label, then prom-client's
 * `AggregatorRegistry.aggregate()` groups them by name. Since every label set is distinct, nothing is
 * summed or dropped: the per-worker series stay apart (sum them in PromQL, `sum without (worker)`).
 * The metric's own aggregator is replaced by `first` for that reason (`omit` would drop a metric,
 * `sum`/`average` are the same as `first` on one value per label set).
 */
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client'
import type { SessionPage } from '../mgmt/session-table.ts'

export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[]

export function labelWorker (metrics: MetricsJson, worker: string): MetricsJson {
  return metrics.map((m) => ({
    ...m,
    aggregator: 'first',
    values: m.values.map((v) => ({ ...v, labels: { ...v.labels, worker } }))
  }))
}

/**
 * The merged registry (render it with `.metrics()`). `own`: the supervisor's metrics, unlabelled;
 * `workers`: per worker index, its metrics (absent: the worker did not answer in time).
 */
export function mergeWorkerMetrics (own: MetricsJson, workers: ReadonlyMap<number, MetricsJson>): Registry {
  const all: MetricsJson[] = [own.map((m) => ({ ...m, aggregator: 'first' }))]
  for (const [index, metrics] of [...workers].sort((a, b) => a[0] - b[0])) all.push(labelWorker(metrics, String(index)))
  return AggregatorRegistry.aggregate(all)
}

/** Merge the workers' session pages (each sorted, largest first) into one page. */
export function mergeSessionPages (pages: ReadonlyMap<number, SessionPage>, offset: number, limit: number): SessionPage {
  const all = [...pages].flatMap(([worker, p]) => p.sessions.map((s) => ({ ...s, worker })))
  all.sort((a, b) => (b.bytesUp + b.bytesDown) - (a.bytesUp + a.bytesDown) || a.worker - b.worker || a.id - b.id)
  const total = [...pages.values()].reduce((n, p) => n + p.total, 0)
  return { total, offset, limit, sessions: all.slice(offset, offset + limit) }
}
