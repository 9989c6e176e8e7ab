/**
 * A global fixed-window request limit for the management API. The API serves one operator and
 * one Prometheus, so a single budget (not per client) is enough to keep a request storm from
 * starving the data plane's event loop. Over budget: 429 with `Retry-After`.
 *
 * Health probes (`/livez`, `/healthz`, `/readyz`) are outside the budget and do not spend it: a
 * request flood must not make the supervisor's liveness probe fail and restart a healthy daemon.
 * They stay cheap (no I/O), and the connection caps (./connection-budget.ts) bound a flood of them.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { sendError } from './mgmt-errors.ts'

export interface RateLimitOptions {
  /** Requests allowed per window. Default 100. */
  max: number
  /** Window length in milliseconds. Default 1000. */
  windowMs: number
  /** Clock in milliseconds; injected by tests. */
  now?: () => number
}

export const DefaultRateLimit = { max: 100, windowMs: 1000 } as const

/** Routes the rate limit never refuses (matched route URLs). */
export const RateLimitExemptRoutes: ReadonlySet<string> = new Set(['/livez', '/healthz', '/readyz'])

export function createRateLimiter (options: RateLimitOptions): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
  const now = options.now ?? Date.now
  let windowStart = now()
  let used = 0
  return async function rateLimit (request, reply) {
    const route = request.routeOptions.url
    if (route !== undefined && RateLimitExemptRoutes.has(route)) return undefined
    const t = now()
    if (t - windowStart >= options.windowMs) {
      windowStart = t
      used = 0
    }
    used++
    if (used <= options.max) return undefined
    reply.header('retry-after', String(Math.max(1, Math.ceil((windowStart + options.windowMs - t) / 1000))))
    return sendError(reply, 429, 'HYBRID_ERR_MGMT_RATE_LIMITED', 'too many management requests')
  }
}
