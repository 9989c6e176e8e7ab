/**
 * Authorisation of a CONNECT-UDP request with the SOCKS5 rules and credentials: a source in
 * `auth.trustedPrefixes` needs nothing; any other presents `Proxy-Authorization: Basic` with a
 * user of `auth.credentialsFile` (RFC 7617; the same constant-time verifier and per-source
 * back-off as RFC 1929). The subscriber key (per-subscriber flow cap) is the user name, or the
 * source (IPv6 aggregated like the connection caps) for a trusted source. Never throws.
 */
import { capSourceKey } from '../../../shared/src/net/source-prefix.ts'
import type { ConcentratorMetrics } from '../metrics.ts'
import type { Runtime } from '../runtime.ts'

export type UdpAuthResult =
  | { readonly ok: true, readonly subscriber: string }
  | { readonly ok: false, readonly reason: 'auth_required' | 'not_trusted', readonly detail: string }

const BASIC = /^basic +([A-Za-z0-9+/]+={0,2}) *$/i
const MAX_FIELD = 255

/** user-id and password bytes of a Basic credential (split at the first colon), or undefined. */
export function parseBasicCredentials (header: string | undefined): { username: Buffer, password: Buffer } | undefined {
  const m = header === undefined ? null : BASIC.exec(header)
  if (m?.[1] === undefined) return undefined
  const raw = Buffer.from(m[1], 'base64')
  const colon = raw.indexOf(0x3a)
  if (colon < 1 || colon > MAX_FIELD || raw.length - colon - 1 < 1 || raw.length - colon - 1 > MAX_FIELD) return undefined
  return { username: raw.subarray(0, colon), password: raw.subarray(colon + 1) }
}

export function authoriseUdpRequest (header: string | undefined, source: string, rt: Runtime,
  metrics: Pick<ConcentratorMetrics, 'authAttempts' | 'sourcesThrottled'>): UdpAuthResult {
  if (rt.trusted.has(source)) {
    metrics.authAttempts.inc({ method: 'none', result: 'success' })
    return { ok: true, subscriber: `source ${capSourceKey(source, rt.limits.perSourceIpv6PrefixLength)}` }
  }
  const { verifier, backoff } = rt
  if (verifier === undefined) return { ok: false, reason: 'not_trusted', detail: 'source is not trusted and no credentials are configured' }
  const creds = parseBasicCredentials(header)
  if (creds === undefined) return { ok: false, reason: 'auth_required', detail: 'Basic proxy credentials required' }
  if (backoff.throttledFor(source) > 0) {
    metrics.authAttempts.inc({ method: 'userpass', result: 'throttled' })
    return { ok: false, reason: 'auth_required', detail: 'source in authentication back-off' }
  }
  const ok = verifier.verify(creds.username, creds.password)
  metrics.authAttempts.inc({ method: 'userpass', result: ok ? 'success' : 'failure' })
  if (ok) {
    backoff.recordSuccess(source)
    return { ok: true, subscriber: `user ${creds.username.toString('hex')}` }
  }
  if (backoff.recordFailure(source) > 0) metrics.sourcesThrottled.set(backoff.throttledCount())
  return { ok: false, reason: 'auth_required', detail: 'wrong user name or password' }
}
