/**
 * Read-only routes every daemon serves: liveness, readiness, Prometheus metrics, status.
 * None of them needs the bearer token; the Host allow-list still applies.
 */
import type { Registry } from 'prom-client'
import { Type, type TSchema } from 'typebox'
import type { MgmtApp } from './mgmt-server.ts'

export interface Readiness {
  ready: boolean
  /** Named checks, e.g. `{ listeners: true, rules: false }`; false ones are reported as failing. */
  checks: Record<string, boolean>
}

export interface HealthRouteOptions {
  registry: Registry
  readiness: () => Readiness
  status: () => object
  statusSchema?: TSchema
}

const LiveSchema = Type.Object({ status: Type.Literal('ok') })
const ReadySchema = Type.Object({
  ready: Type.Boolean(),
  checks: Type.Record(Type.String(), Type.Boolean()),
  failing: Type.Array(Type.String(), { description: 'names of the checks that are false' })
})
const AnyObject = Type.Object({}, { additionalProperties: true })

export function registerHealthRoutes (app: MgmtApp, options: HealthRouteOptions): void {
  const live = { schema: { summary: 'Liveness: the event loop answers', tags: ['health'], response: { 200: LiveSchema } } }
  app.get('/livez', live, async () => ({ status: 'ok' as const }))
  app.get('/healthz', { schema: { ...live.schema, summary: 'Alias of /livez' } }, async () => ({ status: 'ok' as const }))

  app.get('/readyz', {
    schema: {
      summary: 'Readiness: listeners bound, rules installed …; 503 until ready and while draining',
      tags: ['health'],
      response: { 200: ReadySchema, 503: ReadySchema }
    }
  }, async (_request, reply) => {
    const { ready, checks } = options.readiness()
    const failing = Object.keys(checks).filter((name) => checks[name] !== true)
    return reply.code(ready ? 200 : 503).send({ ready, checks, failing })
  })

  app.get('/metrics', {
    schema: {
      summary: 'Prometheus metrics (text exposition format 0.0.4)',
      tags: ['health'],
      response: { 200: { description: 'metrics text', content: { 'text/plain': { schema: Type.String() } } } }
    }
  }, async (_request, reply) => {
    const text = await options.registry.metrics()
    return reply.type(options.registry.contentType).send(text)
  })

  app.get('/status', {
    schema: { summary: 'Daemon status summary (daemon-specific shape)', tags: ['status'], response: { 200: options.statusSchema ?? AnyObject } }
  }, async () => options.status())
}
