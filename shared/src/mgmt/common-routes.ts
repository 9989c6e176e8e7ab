/**
 * Routes both daemons serve the same way (registered from their own route modules):
 *   GET  /api/v1/sessions  relayed connections, largest (bytes both ways) first, paginated
 *   GET  /api/v1/udp/flows UDP flows (docs/udp.md), largest first, paginated; only where the daemon carries UDP
 *   POST /api/v1/reload    re-read and apply the configuration (the SIGHUP path); bearer token
 */
import { Type } from 'typebox'
import { isHybridError } from '../errors.ts'
import type { MgmtApp } from './mgmt-server.ts'
import { sendError } from './mgmt-errors.ts'

export const AnyObject = Type.Object({}, { additionalProperties: true })

const SessionsQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 50, description: 'sessions per page' }),
  offset: Type.Integer({ minimum: 0, maximum: 10_000_000, default: 0, description: 'sessions to skip (ordered by bytes, largest first)' })
}, { additionalProperties: false })

export interface CommonRouteDeps {
  sessions: (offset: number, limit: number) => object
  /**
   * UDP flows, apart from the sessions: those are relayed TCP connections, which the overload
   * manager and the status count as relays.
   */
  udpFlows?: (offset: number, limit: number) => object
  /** Resolves when the new configuration is applied; rejects (ConfigError) when it is refused. */
  reload: () => Promise<void>
}

export function registerCommonRoutes (app: MgmtApp, deps: CommonRouteDeps): void {
  app.get('/api/v1/sessions', {
    schema: {
      summary: 'Relayed connections, largest (bytes both ways) first',
      tags: ['status'],
      querystring: SessionsQuery,
      response: { 200: AnyObject }
    }
  }, async (request) => deps.sessions(request.query.offset, request.query.limit))

  const udpFlows = deps.udpFlows
  if (udpFlows !== undefined) {
    app.get('/api/v1/udp/flows', {
      schema: {
        summary: 'UDP flows (5-tuples) with their state and counters, largest (bytes both ways) first',
        tags: ['status'],
        querystring: SessionsQuery,
        response: { 200: AnyObject }
      }
    }, async (request) => udpFlows(request.query.offset, request.query.limit))
  }

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
