/**
 * The concentrator's management API: the shared server (health, readiness, metrics, status with its
 * typed schema) plus the daemon's routes (routes.ts), reading the daemon's services and state.
 */
import { childFor } from '../../../shared/src/log.ts'
import { buildMgmtServer, type MgmtApp } from '../../../shared/src/mgmt/mgmt-server.ts'
import type { ConcentratorServices, ConcentratorState } from '../concentrator-state.ts'
import { mgmtAllowedHosts, registerConcentratorRoutes } from './routes.ts'
import { concentratorStatus, concentratorReady } from './status.ts'
import { ConcentratorStatusSchema, type ConcentratorStatus } from './status-schema.ts'

export function buildConcentratorMgmt (s: ConcentratorServices, state: ConcentratorState,
  reload: (config: ConcentratorState['config']) => Promise<void>): MgmtApp {
  const { management } = state.initial
  const status = (): ConcentratorStatus => concentratorStatus(s, state)
  return buildMgmtServer({
    log: childFor(s.deps.log, 'mgmt'),
    registry: s.registry,
    token: management.token,
    allowedHosts: mgmtAllowedHosts(management.listen.host),
    limits: management.limits,
    onRefused: (reason) => { s.metrics.mgmtConnectionsRefused.inc({ reason }) },
    readiness: () => ({ ready: concentratorReady(s, state), checks: { listeners: s.listeners.allBound, accepting: s.admission.admitting } }),
    status,
    statusSchema: ConcentratorStatusSchema,
    info: { title: 'hybrid-concentrator management API', version: s.deps.version ?? '0' },
    routes: (app) => {
      registerConcentratorRoutes(app, {
        status,
        sessions: (offset, limit) => s.sessions.page(offset, limit, s.now()),
        reload: s.deps.requestReload ?? (async () => { await reload(state.config) })
      })
    }
  })
}
