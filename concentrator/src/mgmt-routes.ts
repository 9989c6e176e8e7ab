/**
 * The concentrator's own management routes (registered through `buildMgmtServer({ routes })`):
 *   GET  /api/v1/status    uptime, listeners, connection counts
 *   GET  /api/v1/sessions  relayed connections, largest first (paginated)
 *   POST /api/v1/reload    re-read and apply the configuration (the SIGHUP path); bearer token
 */
import { Type } from 'typebox'
import type { MgmtApp } from '../../shared/src/mgmt/mgmt-server.ts'
import { sendError } from '../../shared/src/mgmt/mgmt-errors.ts'
import { isHybridError } from '../../shared/src/errors.ts'
import type { SessionPage } from './session-table.ts'

export interface ConcentratorRouteDeps {
  status: () => object
  sessions: (offset: number, limit: number) => SessionPage
  /** Resolves when the new configuration is applied; rejects (ConfigError) when it is refused. */
  reload: () => Promise<void>
}

const AnyObject = Type.Object({}, { additionalProperties: true })
const SessionsQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 50, description: 'sessions per page' }),
  offset: Type.Integer({ minimum: 0, maximum: 10_000_000, default: 0, description: 'sessions to skip (ordered by bytes, largest first)' })
}, { additionalProperties: false })

export function registerConcentratorRoutes (app: MgmtApp, deps: ConcentratorRouteDeps): void {
  app.get('/api/v1/status', {
    schema: { summary: 'Concentrator status: uptime, listeners, connection counts', tags: ['status'], response: { 200: AnyObject } }
  }, async () => deps.status())

  app.get('/api/v1/sessions', {
    schema: { summary: 'Relayed connections, largest (bytes both ways) first', tags: ['status'], querystring: SessionsQuery, response: { 200: AnyObject } }
  }, async (request) => deps.sessions(request.query.offset, request.query.limit))

  app.post('/api/v1/reload', {
    schema: { summary: 'Re-read the configuration file and apply it (same path as SIGHUP)', tags: ['control'], response: { 200: AnyObject } }
  }, async (request, reply) => {
    try {
      await deps.reload()
      return { result: 'success' }
    } catch (err) {
      request.log.warn({ err }, 'reload refused')
      const code = isHybridError(err) ? err.code : 'HYBRID_ERR_INTERNAL'
      const message = isHybridError(err) ? err.message : 'reload failed'
      return sendError(reply, isHybridError(err) && code.startsWith('HYBRID_ERR_CONFIG') ? 400 : 500, code, message)
    }
  })
}
