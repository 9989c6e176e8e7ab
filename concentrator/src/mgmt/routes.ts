/**
 * The concentrator's own management routes (registered through `buildMgmtServer({ routes })`):
 *   GET  /api/v1/status    uptime, listeners, connection counts
 *   GET  /api/v1/sessions  relayed connections, largest first (paginated)
 *   POST /api/v1/reload    re-read and apply the configuration (the SIGHUP path); bearer token
 */
import type { MgmtApp } from '../../../shared/src/mgmt/mgmt-server.ts'
import { registerCommonRoutes } from '../../../shared/src/mgmt/common-routes.ts'
import type { SessionPage } from './session-table.ts'
import { ConcentratorStatusSchema, type ConcentratorStatus } from './status-schema.ts'

export interface ConcentratorRouteDeps {
  status: () => ConcentratorStatus
  sessions: (offset: number, limit: number) => SessionPage
  /** Resolves when the new configuration is applied; rejects (ConfigError) when it is refused. */
  reload: () => Promise<void>
}

/** Host header values the management API answers to (the listen address and loopback names). */
export function mgmtAllowedHosts (host: string): string[] {
  return ['localhost', '127.0.0.1', '[::1]', host.includes(':') ? `[${host}]` : host]
}

export function registerConcentratorRoutes (app: MgmtApp, deps: ConcentratorRouteDeps): void {
  app.get('/api/v1/status', {
    schema: { summary: 'Concentrator status: uptime, listeners, connection counts', tags: ['status'], response: { 200: ConcentratorStatusSchema } }
  }, async () => deps.status())

  registerCommonRoutes(app, deps)
}
