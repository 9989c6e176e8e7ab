/**
 * The CPE agent's management API: the shared server (health, readiness, metrics, status with its
 * typed schema) plus the agent's routes (cpe-routes.ts), reading the agent's services and state.
 */
import { childFor } from '../../../shared/src/log.ts'
import { formatHostPort } from '../../../shared/src/net/endpoint.ts'
import { buildMgmtServer, type MgmtApp } from '../../../shared/src/mgmt/mgmt-server.ts'
import type { CpeServices, CpeState } from '../cpe-state.ts'
import type { Reloader } from '../cpe-reload.ts'
import { healthFields } from '../health/path-health.ts'
import { registerCpeRoutes } from './cpe-routes.ts'
import { cpeChecks, cpeReady, cpeStatus, uplinkDetail } from './status.ts'
import { CpeStatusSchema } from './status-schema.ts'
import { changeUplink } from './uplink-control.ts'

function allowedHosts (host: string): string[] {
  return ['localhost', '127.0.0.1', '[::1]', host.includes(':') ? `[${host}]` : host]
}

export function buildCpeMgmt (s: CpeServices, state: CpeState, reloader: Reloader): MgmtApp {
  const { management } = state.initial
  const status = (): ReturnType<typeof cpeStatus> => cpeStatus(s, state)
  return buildMgmtServer({
    log: childFor(s.deps.log, 'mgmt'),
    registry: s.registry,
    token: management.token,
    allowedHosts: allowedHosts(management.listen.host),
    limits: management.limits,
    onRefused: (reason) => { s.metrics.mgmtConnectionsRefused.inc({ reason }) },
    readiness: () => ({ ready: cpeReady(s, state), checks: cpeChecks(s, state) }),
    status,
    statusSchema: CpeStatusSchema,
    info: { title: 'hybrid-cpe management API', version: s.deps.version ?? '0' },
    routes: (app) => {
      registerCpeRoutes(app, {
        status,
        uplinks: () => s.pathMonitor.view().map((p) => ({ ...p, ...uplinkDetail(state, p.name), ...healthFields(s.health, p.name, p.up) })),
        setUplink: async (name, change) => { await changeUplink(s, state, name, change) },
        sessions: (offset, limit) => s.sessions.page(offset, limit, s.now()),
        udpFlows: (offset, limit) => udpFlowPage(state, offset, limit),
        reload: s.deps.requestReload ?? (async () => { await reloader.reload(state.config) }),
        steering: () => state.steering
      })
    }
  })
}

/** `GET /api/v1/udp/flows`: the flows of the UDP agent (none while udp.enabled is false). */
function udpFlowPage (state: CpeState, offset: number, limit: number): object {
  const flows = state.udp?.list() ?? []
  return {
    enabled: state.udp !== undefined,
    total: flows.length,
    offset,
    limit,
    flows: flows.slice(offset, offset + limit).map((f) => ({
      family: f.key.family,
      src: formatHostPort(f.key.src, f.key.srcPort),
      dst: formatHostPort(f.key.dst, f.key.dstPort),
      state: f.state,
      started: new Date(f.createdAt).toISOString(),
      lastSeen: new Date(f.lastSeen).toISOString(),
      ...f.counters
    }))
  }
}
