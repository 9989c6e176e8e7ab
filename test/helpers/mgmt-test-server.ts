/**
 * A management server as the daemons build it (real guards, connection budget, metrics), with a
 * fixed ready state and an empty status: for tests of the management listener itself.
 * Refused connections are counted in `hybrid_mgmt_connections_refused_total`, as in the daemons.
 */
import { pino } from 'pino'
import { buildMgmtServer, type MgmtServerOptions } from '../../shared/src/mgmt/mgmt-server.ts'
import { createRegistry } from '../../shared/src/metrics/registry.ts'
import { createCommonMetrics } from '../../shared/src/metrics/common-metrics.ts'

export function buildTestMgmt (opts: {
  daemon: 'cpe' | 'concentrator',
  allowedHosts: readonly string[],
  limits: NonNullable<MgmtServerOptions['limits']>
}): { app: ReturnType<typeof buildMgmtServer>, metrics: () => Promise<string> } {
  const registry = createRegistry({ daemon: opts.daemon, version: '0', commit: 'test' })
  const common = createCommonMetrics(registry)
  const app = buildMgmtServer({
    log: pino({ level: 'silent' }),
    registry,
    token: undefined,
    allowedHosts: opts.allowedHosts,
    readiness: () => ({ ready: true, checks: {} }),
    status: () => ({}),
    limits: opts.limits,
    onRefused: (reason) => { common.mgmtConnectionsRefused.inc({ reason }) }
  })
  return { app, metrics: async () => registry.metrics() }
}
