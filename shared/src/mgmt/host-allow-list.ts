/**
 * `Host` header allow-list for the management API: a browser tricked by DNS rebinding sends the
 * attacker's host name, so only configured names and addresses are served (421 otherwise).
 *
 * Ambiguous targets are refused with 400 before the allow-list (RFC 9112 §3.2): more than one
 * `Host` header (Node keeps only the first, so the second could name anything), and an
 * absolute-form request target (`GET http://host/path`) whose authority — which RFC 9112 §3.2.2
 * says takes precedence over `Host` — is not an allowed host.
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

/** How many `Host` fields the request carried (rawHeaders alternates names and values). */
function hostHeaderCount (rawHeaders: readonly string[]): number {
  let n = 0
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]?.toLowerCase() === 'host') n++
  return n
}

/**
 * The host of an absolute-form request target as `hostName` spells it; undefined for origin form
 * (`/path`) and `*`; `''` (never allowed) when the target is not a parsable URL with a host.
 */
export function absoluteFormHost (target: string): string | undefined {
  if (target.startsWith('/') || target === '*') return undefined
  try {
    const url = new URL(target)
    return url.hostname === '' ? '' : url.hostname.toLowerCase()
  } catch {
    return ''
  }
}

/**
 * Builds an `onRequest` hook accepting only the given hosts (names or IP literals, optionally with
 * a port, which is ignored: `localhost`, `127.0.0.1`, `[::1]`, `mgmt.example.net`).
 */
export function createHostGuard (allowedHosts: readonly string[]): (request: FastifyRequest,
  reply: FastifyReply) => Promise<FastifyReply | undefined> {
  if (allowedHosts.length === 0) throw new ConfigError('HYBRID_ERR_CONFIG_INVALID', 'the management API needs at least one allowed host')
  const allowed = new Set(allowedHosts.map(hostName))
  return async function hostGuard (request, reply) {
    if (hostHeaderCount(request.raw.rawHeaders) > 1) {
      return sendError(reply, 400, 'HYBRID_ERR_MGMT_BAD_REQUEST', 'more than one Host header', '/headers/host')
    }
    const authority = absoluteFormHost(request.raw.url ?? '/')
    if (authority !== undefined && !allowed.has(authority)) {
      return sendError(reply, 400, 'HYBRID_ERR_MGMT_BAD_REQUEST', 'the request target names a host that is not allowed', '/url')
    }
    const host = request.headers.host
    if (host === undefined || !allowed.has(hostName(host))) {
      return sendError(reply, 421, 'HYBRID_ERR_MGMT_HOST', 'host not allowed', '/headers/host')
    }
    return undefined
  }
}
