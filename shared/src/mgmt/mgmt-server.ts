/**
 * The management HTTP server both daemons embed (fastify 5 + TypeBox). `buildMgmtServer` wires
 * the guards, error shape, health routes and the OpenAPI document but never listens: tests use
 * `app.inject()`, and main.ts calls `listenMgmt`.
 *
 * Connections first pass the connection budget (./connection-budget.ts: total and per-source caps,
 * idle/header/request timeouts; an over-limit socket is destroyed at once and counted).
 * Request pipeline: global rate limit (429; not on /livez, /healthz, /readyz) → one Host, no foreign
 * absolute-form target (400) → Host allow-list (421) → bearer token on mutating routes (401) → schema
 * validation (400 naming the field) → handler. Every error body is `{ error: { code, message, field } }`.
 */
import Fastify, { LogController } from 'fastify'
import type {
  FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, onRequestAsyncHookHandler, onRequestHookHandler,
  RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault, RouteOptions
} from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { TSchema } from 'typebox'
import type { Registry } from 'prom-client'
import { createBearerGuard } from './bearer-auth.ts'
import { registerHealthRoutes } from './health-routes.ts'
import type { Readiness } from './health-routes.ts'
import { createHostGuard } from './host-allow-list.ts'
import { MgmtErrorSchema, mgmtErrorHandler, mgmtNotFoundHandler } from './mgmt-errors.ts'
import { createRateLimiter, DefaultRateLimit } from './rate-limit.ts'
import { enforceConnectionCaps, resolveMgmtConnectionLimits, TIMEOUT_CHECK_INTERVAL_MS } from './connection-budget.ts'
import type { MgmtConnectionLimits } from './connection-budget.ts'
import type { MgmtRefusal } from './connection-budget.ts'
import type { RateLimitOptions } from './rate-limit.ts'
import { buildOpenApiDocument, routeRecords } from './openapi.ts'
import type { OpenApiInfo, RouteRecord } from './openapi.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * Require the bearer token on this route. Default: true for POST, PUT, PATCH and DELETE,
     * false for GET and HEAD.
     */
    auth?: boolean
  }
  /** OpenAPI annotations read by ./openapi.ts (fastify itself ignores them). */
  interface FastifySchema {
    summary?: string
    description?: string
    tags?: readonly string[]
    /** Leave the route out of /openapi.json. */
    hide?: boolean
  }
}

export type MgmtApp = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger,
  TypeBoxTypeProvider>

export interface MgmtServerOptions {
  log: FastifyBaseLogger
  registry: Registry
  /** Bearer token for mutating routes (≥ 16 characters); without one they all answer 401. */
  token: string | undefined
  /** Accepted `Host` header names or IP literals (port ignored), e.g. `['localhost', '127.0.0.1', '[::1]']`. */
  allowedHosts: readonly string[]
  readiness: () => Readiness
  status: () => object
  /** Response schema of `/status` (the daemon's `GET /api/v1/status` schema); default: any object. */
  statusSchema?: TSchema
  /** Daemon-specific routes, registered after the common ones (guards and OpenAPI apply). */
  routes?: (app: MgmtApp) => void
  /** OpenAPI `info`; default title "hybrid management API", version "0". */
  info?: OpenApiInfo
  /** Global request budget; default 100 requests per second (429 beyond). */
  rateLimit?: RateLimitOptions
  /** Connection caps and timeouts (`management.limits`); missing ones take DefaultMgmtConnectionLimits. */
  limits?: Partial<MgmtConnectionLimits>
  /** Called for each connection the caps refuse (the daemons count hybrid_mgmt_connections_refused_total). */
  onRefused?: (reason: MgmtRefusal) => void
}

/**
 * Fixed server limits: small bodies and parameters. The timeouts (Node's own defaults are 60 s
 * headers, 300 s request, no idle timeout) are configurable: `management.limits`, connection-budget.ts.
 */
export const MgmtLimits = {
  bodyLimit: 16 * 1024,
  maxParamLength: 100,
  maxRequestsPerSocket: 1000
} as const

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

function needsAuth (route: RouteOptions): boolean {
  if (route.config?.auth !== undefined) return route.config.auth
  const methods = Array.isArray(route.method) ? route.method : [route.method]
  return methods.some((m) => MUTATING.has(m))
}

type OnRequestHook = onRequestHookHandler | onRequestAsyncHookHandler

/** Appends `hook` to a route's own onRequest hooks (which run after the global Host guard). */
function withHook (existing: RouteOptions['onRequest'], hook: onRequestAsyncHookHandler): OnRequestHook[] {
  if (existing === undefined) return [hook]
  return [...(Array.isArray(existing) ? existing as OnRequestHook[] : [existing as OnRequestHook]), hook]
}

function createApp (options: MgmtServerOptions, limits: MgmtConnectionLimits): MgmtApp {
  return Fastify({
    loggerInstance: options.log,
    // fastify 5.8+: the top-level disableRequestLogging and router keys (maxParamLength) are
    // deprecated (FSTDEP023, FSTDEP022); their replacements are logController and routerOptions.
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { maxParamLength: MgmtLimits.maxParamLength },
    bodyLimit: MgmtLimits.bodyLimit,
    requestTimeout: limits.requestTimeoutMs,
    connectionTimeout: limits.idleTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    maxRequestsPerSocket: MgmtLimits.maxRequestsPerSocket,
    http: { headersTimeout: limits.headersTimeoutMs, connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS },
    trustProxy: false,
    return503OnClosing: true,
    // Unknown body keys are rejected (additionalProperties: false), not silently removed.
    ajv: { customOptions: { removeAdditional: false, allErrors: false } }
  }).withTypeProvider<TypeBoxTypeProvider>()
}

function logResponse (request: FastifyRequest, reply: FastifyReply, done: () => void): void {
  const entry = {
    method: request.method,
    route: request.routeOptions.url ?? '(none)',
    statusCode: reply.statusCode,
    ms: Math.round(reply.elapsedTime)
  }
  if (MUTATING.has(request.method)) request.log.info(entry, 'management request')
  else request.log.debug(entry, 'management request')
  done()
}

/** Builds the management server; the caller listens (`listenMgmt`) or injects (tests). */
export function buildMgmtServer (options: MgmtServerOptions): MgmtApp {
  const hostGuard = createHostGuard(options.allowedHosts)
  const bearerGuard = createBearerGuard(options.token)
  const limits = resolveMgmtConnectionLimits(options.limits)
  const app = createApp(options, limits)
  const onRefused = options.onRefused ?? (() => {})
  const budget = enforceConnectionCaps(app.server, limits, (reason) => {
    onRefused(reason)
    app.log.debug({ reason }, 'management connection refused')
  })
  // close() must not wait for connections that never sent a request (up to idleTimeoutMs each).
  app.addHook('preClose', (done) => { budget.closeIdle(); done() })
  const records: RouteRecord[] = []

  app.addHook('onRequest', createRateLimiter(options.rateLimit ?? DefaultRateLimit))
  app.addHook('onRequest', hostGuard)
  app.addHook('onResponse', logResponse)
  app.addHook('onRoute', (route) => {
    const auth = needsAuth(route)
    if (auth) route.onRequest = withHook(route.onRequest, bearerGuard)
    records.push(...routeRecords(route, auth))
  })
  app.removeContentTypeParser('text/plain') // JSON bodies only: anything else is 415
  app.setErrorHandler(mgmtErrorHandler)
  app.setNotFoundHandler(mgmtNotFoundHandler)

  const statusSchema = options.statusSchema === undefined ? {} : { statusSchema: options.statusSchema }
  registerHealthRoutes(app, { registry: options.registry, readiness: options.readiness, status: options.status, ...statusSchema })
  const info = options.info ?? { title: 'hybrid management API', version: '0' }
  app.get('/openapi.json', {
    schema: { summary: 'This OpenAPI 3.1 document', tags: ['meta'] }
  }, async () => buildOpenApiDocument(records, info, MgmtErrorSchema))
  options.routes?.(app)
  return app
}

export interface ListenMgmtOptions {
  host: string
  /** 0 picks a free port (tests). */
  port: number
}

/** Binds the management server; resolves with the bound address. Meant for main.ts. */
export async function listenMgmt (app: MgmtApp, options: ListenMgmtOptions): Promise<{ host: string, port: number }> {
  if (options.host === '0.0.0.0' || options.host === '::') {
    app.log.warn({ host: options.host }, 'management API bound to all addresses; prefer loopback or a management VLAN address')
  }
  await app.listen({ host: options.host, port: options.port, listenTextResolver: (address) => `management API listening on ${address}` })
  const address = app.server.address()
  if (address === null || typeof address === 'string') return { host: options.host, port: options.port }
  return { host: address.address, port: address.port }
}
