/**
 * `Host` header allow-list for the management API: a browser tricked by DNS rebinding sends the
 * attacker's host name, so only configured names and addresses are served (421 otherwise).
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { ConfigError } from '../errors.ts'
import { sendError } from './mgmt-errors.ts'

/** `Host` value without its port, lower-cased; IPv6 literals keep their brackets. */
export function hostName (host: string): string {
  const h = host.trim().toLowerCase()
  if (h.startsWith('[')) {
    const end = h.indexOf(']')
    return end === -1 ? h : h.slice(0, end + 1)
  }
  const colon = h.indexOf(':')
  return colon === -1 ? h : h.slice(0, colon)
}

/**
 * Builds an `onRequest` hook accepting only the given hosts (names or IP literals, optionally with
 * a port, which is ignored: `localhost`, `127.0.0.1`, `[::1]`, `mgmt.example.net`).
 */
export function createHostGuard (allowedHosts: readonly string[]): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
  if (allowedHosts.length === 0) throw new ConfigError('HYBRID_ERR_CONFIG_INVALID', 'the management API needs at least one allowed host')
  const allowed = new Set(allowedHosts.map(hostName))
  return async function hostGuard (request, reply) {
    const host = request.headers.host
    if (host === undefined || !allowed.has(hostName(host))) {
      return sendError(reply, 421, 'HYBRID_ERR_MGMT_HOST', 'host not allowed', '/headers/host')
    }
    return undefined
  }
}
