/**
 * Bearer-token guard for mutating management routes (RFC 6750 `Authorization: Bearer <token>`).
 * Both the presented and the configured token are hashed with SHA-256 and compared with
 * `timingSafeEqual`, so neither content nor length leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { ConfigError } from '../errors.ts'
import { sendError } from './mgmt-errors.ts'

/** Shortest accepted token: 16 characters (e.g. `openssl rand -hex 16` gives 32). */
export const MIN_TOKEN_LENGTH = 16

/**
 * RFC 6750 §2.1 b64token: ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/", then any "=".
 * A configured token outside it (a space, a colon, a non-ASCII letter) could never be presented
 * in an Authorization header, so configuration validation refuses it (management.token).
 */
export const B64TOKEN_PATTERN = '^[A-Za-z0-9._~+/-]+=*$'
const B64TOKEN = new RegExp(B64TOKEN_PATTERN)

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest()

/** Parses an Authorization header; undefined when absent or not a Bearer credential. */
export function bearerToken (header: string | undefined): string | undefined {
  return header === undefined ? undefined : BEARER.exec(header)?.[1]
}

/** Constant-time check of a presented token against the configured one. */
export function createTokenCheck (token: string | undefined): (presented: string | undefined) => boolean {
  if (token !== undefined && token.length < MIN_TOKEN_LENGTH) {
    throw new ConfigError('HYBRID_ERR_CONFIG_INVALID', `the management token must have at least ${MIN_TOKEN_LENGTH} characters`)
  }
  if (token !== undefined && !B64TOKEN.test(token)) {
    throw new ConfigError('HYBRID_ERR_CONFIG_INVALID', 'the management token must be an RFC 6750 b64token (letters, digits, - . _ ~ + /, then =)')
  }
  const expected = token === undefined ? undefined : digest(token)
  return (presented) => {
    const got = digest(presented ?? '')
    return expected !== undefined && presented !== undefined && timingSafeEqual(got, expected)
  }
}

/**
 * An `onRequest` hook answering 401 (with `WWW-Authenticate: Bearer`) unless the request carries
 * the configured token. With no token configured every guarded route answers 401.
 */
export function createBearerGuard (token: string | undefined): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
  const check = createTokenCheck(token)
  return async function bearerGuard (request, reply) {
    if (check(bearerToken(request.headers.authorization))) return undefined
    reply.header('www-authenticate', 'Bearer realm="hybrid-mgmt"')
    return sendError(reply, 401, 'HYBRID_ERR_MGMT_UNAUTHORIZED',
      token === undefined ? 'no management token is configured' : 'missing or wrong bearer token', '/headers/authorization')
  }
}
