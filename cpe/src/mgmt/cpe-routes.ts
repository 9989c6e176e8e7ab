/**
 * The CPE agent's own management routes (registered through `buildMgmtServer({ routes })`):
 *   GET  /api/v1/status          uptime, readiness checks, connections, pipelining memory
 *   GET  /api/v1/uplinks         per uplink: up (link AND health), role, admin state, endpoint, subflows, bytes,
 *                                health { state, lossRatio, rttMs, since } when health.enabled (docs/path-health.md)
 *   PUT  /api/v1/uplinks/:name   { mode?: aggregate|backup, admin?: up|down } (bearer token)
 *   GET  /api/v1/steering        steering mode, DSL load, LTE backup flags, classes (docs/steering.md)
 *   PUT  /api/v1/steering        { mode: active-standby|priority-based|load-balancing|smallest-delay } (bearer token)
 *   GET  /api/v1/sessions        relayed connections, largest first (paginated)
 *   GET  /api/v1/udp/flows       LAN UDP flows, largest first (paginated; docs/udp.md)
 *   POST /api/v1/reload          re-read and apply the configuration (the SIGHUP path; bearer token)
 *
 * `mode` is global in the kernel's path manager (LTE endpoints flagged backup or not), so a PUT with
 * `mode` on an LTE uplink switches the multipath mode of the agent; on a DSL uplink it is refused (400).
 */
import { Type } from 'typebox'
import { isHybridError } from '../../../shared/src/errors.ts'
import type { MgmtApp } from '../../../shared/src/mgmt/mgmt-server.ts'
import { AnyObject, registerCommonRoutes } from '../../../shared/src/mgmt/common-routes.ts'
import { sendError } from '../../../shared/src/mgmt/mgmt-errors.ts'
import { STEERING_MODES, type SteeringMode } from '../config/steering.ts'
import type { CpeSessionPage } from './session-table.ts'
import { CpeStatusSchema, type CpeStatus } from './status-schema.ts'

export interface UplinkChange { mode?: 'aggregate' | 'backup', admin?: 'up' | 'down' }

export interface CpeRouteDeps {
  status: () => CpeStatus
  uplinks: () => Array<{ name: string, access: string }>
  setUplink: (name: string, change: UplinkChange) => Promise<void>
  sessions: (offset: number, limit: number) => CpeSessionPage
  udpFlows: (offset: number, limit: number) => object
  reload: () => Promise<void>
  /** The steering controller once the agent runs (undefined before start). */
  steering: () => SteeringApi | undefined
}

export interface SteeringApi {
  view: () => object
  setMode: (mode: SteeringMode) => Promise<void>
}

const UplinkParams = Type.Object({ name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,15}$', description: 'uplink name' }) })
const UplinkBody = Type.Object({
  mode: Type.Optional(Type.Enum(['aggregate', 'backup'], { description: 'multipath mode (global; LTE uplinks only)' })),
  admin: Type.Optional(Type.Enum(['up', 'down'], { description: 'down: remove the uplink\'s MPTCP endpoint so no subflow uses it' }))
}, { additionalProperties: false, minProperties: 1 })

const SteeringBody = Type.Object({
  mode: Type.Enum([...STEERING_MODES], { description: 'steering mode (3GPP ATSSS names; docs/steering.md)' })
}, { additionalProperties: false })

export function registerCpeRoutes (app: MgmtApp, deps: CpeRouteDeps): void {
  app.get('/api/v1/status', {
    schema: { summary: 'CPE agent status: uptime, readiness, connections, pipelining', tags: ['status'], response: { 200: CpeStatusSchema } }
  }, async () => deps.status())

  app.get('/api/v1/uplinks', {
    schema: {
      summary: 'Uplinks: up (link and probe health), role, admin state, endpoint, subflows, bytes, health',
      tags: ['status'],
      response: { 200: AnyObject }
    }
  }, async () => ({ uplinks: deps.uplinks() }))

  app.put('/api/v1/uplinks/:name', {
    schema: {
      summary: 'Change an uplink: multipath mode (global, LTE uplinks) and/or admin state',
      tags: ['control'],
      params: UplinkParams,
      body: UplinkBody,
      response: { 200: AnyObject }
    }
  }, async (request, reply) => {
    const { name } = request.params
    const uplink = deps.uplinks().find((u) => u.name === name)
    if (uplink === undefined) return sendError(reply, 404, 'HYBRID_ERR_MGMT_NOT_FOUND', `no uplink named ${name}`, '/params/name')
    const body = request.body
    if (body.mode !== undefined && uplink.access !== 'lte') {
      return sendError(reply, 400, 'HYBRID_ERR_MGMT_BAD_REQUEST', 'mode applies to LTE uplinks (their endpoints are flagged backup or not)',
        '/body/mode')
    }
    // Admin state first, then mode (the order setUplink always had); a refusal names the field it was about.
    const parts: Array<[field: string, change: UplinkChange]> = []
    if (body.admin !== undefined) parts.push(['/body/admin', { admin: body.admin }])
    if (body.mode !== undefined) parts.push(['/body/mode', { mode: body.mode }])
    for (const [field, change] of parts) {
      try {
        await deps.setUplink(name, change)
      } catch (err) {
        request.log.warn({ err, field }, 'uplink change refused')
        if (isHybridError(err) && (err.code === 'HYBRID_ERR_UPLINK_CONFIG' || err.code === 'HYBRID_ERR_STEERING_UNSUPPORTED')) return sendError(reply, 400, err.code === 'HYBRID_ERR_UPLINK_CONFIG' ? 'HYBRID_ERR_MGMT_BAD_REQUEST' : err.code, err.message, field)
        return sendError(reply, 500, isHybridError(err) ? err.code : 'HYBRID_ERR_INTERNAL', isHybridError(err) ? err.message : 'uplink change failed')
      }
    }
    return { uplink: deps.uplinks().find((u) => u.name === name) }
  })

  registerSteeringRoutes(app, deps)
  registerCommonRoutes(app, deps)
}

function registerSteeringRoutes (app: MgmtApp, deps: CpeRouteDeps): void {
  app.get('/api/v1/steering', {
    schema: { summary: 'Steering: mode, DSL load, backup flags of the non-primary uplinks, classes', tags: ['status'], response: { 200: AnyObject } }
  }, async (_request, reply) => {
    const s = deps.steering()
    if (s === undefined) return sendError(reply, 503, 'HYBRID_ERR_INTERNAL', 'agent not started')
    return { steering: s.view() }
  })

  app.put('/api/v1/steering', {
    schema: {
      summary: 'Switch the steering mode at run time (flags written before the answer)',
      tags: ['control'],
      body: SteeringBody,
      response: { 200: AnyObject }
    }
  }, async (request, reply) => {
    const s = deps.steering()
    if (s === undefined) return sendError(reply, 503, 'HYBRID_ERR_INTERNAL', 'agent not started')
    try {
      await s.setMode(request.body.mode)
    } catch (err) {
      request.log.warn({ err }, 'steering change refused')
      if (isHybridError(err) && err.code === 'HYBRID_ERR_STEERING_UNSUPPORTED') return sendError(reply, 400, err.code, err.message, '/body/mode')
      return sendError(reply, 500, isHybridError(err) ? err.code : 'HYBRID_ERR_INTERNAL', isHybridError(err) ? err.message : 'steering change failed')
    }
    return { steering: s.view() }
  })
}
