/**
 * One prom-client `Registry` per daemon, with prom-client's default process metrics and
 * `hybrid_build_info`. The global `register` of prom-client is never used.
 */
import { collectDefaultMetrics, Registry } from 'prom-client'
import type { Daemon } from './labels.ts'
import { createGauge, metricSpec } from './metric-spec.ts'

export interface RegistryOptions {
  daemon: Daemon
  /** Package version, e.g. `0.1.0`. */
  version: string
  /** Source commit (short hash) or `unknown`. */
  commit: string
  /** Register prom-client's default process metrics (RSS, heap, event-loop lag, fds, GC). Default true. */
  defaultMetrics?: boolean
}

export const buildInfoSpec = metricSpec({
  name: 'hybrid_build_info',
  type: 'gauge',
  help: 'Build metadata of the running daemon; always 1.',
  unit: '1',
  labels: {
    daemon: ['cpe', 'concentrator'],
    version: { describe: 'package version (one series per process)' },
    commit: { describe: 'source commit (one series per process)' },
    node_version: { describe: 'Node.js version, e.g. v20.20.2' }
  }
})

export function createRegistry (options: RegistryOptions): Registry {
  const registry = new Registry()
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry })
  const buildInfo = createGauge(registry, buildInfoSpec)
  buildInfo.set({
    daemon: options.daemon,
    version: options.version,
    commit: options.commit,
    node_version: process.version
  }, 1)
  return registry
}
