/**
 * The HTTP answer to a refused CONNECT-UDP request (pure): status, a `proxy-status` header in the
 * form of RFC 9209 (`hybrid-concentrator; error=<type>; details="<reason>: <detail>"`), a short
 * text body, and the `reason` label it is counted under. One table, so every refusal of the
 * proxy maps the same way; the destination policy's reasons come from policy/refusal.ts.
 */
import type { ErrorCode } from '../../../shared/src/errors.ts'
import type { UdpRefusalReason } from './udp-metrics.ts'

/** RFC 9209 §2.3 proxy error types used here. */
export type ProxyErrorType =
  | 'http_request_error' | 'http_request_denied' | 'destination_ip_prohibited' | 'dns_error' | 'dns_timeout'
  | 'connection_limit_reached' | 'proxy_internal_error'

export const ProxyName = 'hybrid-concentrator'

const Answer: Readonly<Record<UdpRefusalReason, { status: number, error: ProxyErrorType, code: ErrorCode }>> = {
  bad_request: { status: 400, error: 'http_request_error', code: 'HYBRID_ERR_UDP_BAD_REQUEST' },
  not_found: { status: 404, error: 'http_request_error', code: 'HYBRID_ERR_UDP_BAD_REQUEST' },
  method_not_allowed: { status: 405, error: 'http_request_error', code: 'HYBRID_ERR_UDP_BAD_REQUEST' },
  auth_required: { status: 407, error: 'http_request_denied', code: 'HYBRID_ERR_UDP_AUTH_FAILED' },
  not_trusted: { status: 403, error: 'http_request_denied', code: 'HYBRID_ERR_UDP_AUTH_FAILED' },
  max_flows: { status: 503, error: 'connection_limit_reached', code: 'HYBRID_ERR_UDP_FLOW_LIMIT' },
  subscriber_max_flows: { status: 429, error: 'connection_limit_reached', code: 'HYBRID_ERR_UDP_FLOW_LIMIT' },
  invalid_destination: { status: 403, error: 'http_request_denied', code: 'HYBRID_ERR_POLICY_INVALID_DESTINATION' },
  ssrf_blocked: { status: 403, error: 'destination_ip_prohibited', code: 'HYBRID_ERR_POLICY_DENIED' },
  acl_denied: { status: 403, error: 'destination_ip_prohibited', code: 'HYBRID_ERR_POLICY_DENIED' },
  port_denied: { status: 403, error: 'http_request_denied', code: 'HYBRID_ERR_POLICY_DENIED' },
  dns_failed: { status: 502, error: 'dns_error', code: 'HYBRID_ERR_DNS_FAILED' },
  dns_timeout: { status: 504, error: 'dns_timeout', code: 'HYBRID_ERR_DNS_TIMEOUT' },
  dns_busy: { status: 503, error: 'proxy_internal_error', code: 'HYBRID_ERR_DNS_BUSY' },
  socket_error: { status: 503, error: 'proxy_internal_error', code: 'HYBRID_ERR_UDP_SOCKET' }
}

export interface UdpRefusal {
  readonly reason: UdpRefusalReason
  readonly status: number
  readonly code: ErrorCode
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/** An sf-string (RFC 8941 §3.3.3): printable ASCII only, `"` and `\` escaped, at most 200 characters. */
function sfString (text: string): string {
  const printable = text.replace(/[^\x20-\x7e]/g, '?').slice(0, 200)
  return `"${printable.replace(/[\\"]/g, (c) => `\\${c}`)}"`
}

/** The answer for `reason`; `detail` is ours (never raw input beyond validated names and canonical addresses). */
export function udpRefusal (reason: UdpRefusalReason, detail: string): UdpRefusal {
  const a = Answer[reason]
  const headers: Record<string, string> = {
    'content-type': 'text/plain; charset=utf-8',
    'proxy-status': `${ProxyName}; error=${a.error}; details=${sfString(`${reason}: ${detail}`)}`
  }
  if (reason === 'auth_required') headers['proxy-authenticate'] = 'Basic realm="hybrid-access", charset="UTF-8"'
  return { reason, status: a.status, code: a.code, headers, body: `${reason}\n` }
}

/** The refusal reason of a failed request check (status from checkConnectUdpRequest). */
export function checkRefusalReason (status: 400 | 404 | 405): UdpRefusalReason {
  if (status === 404) return 'not_found'
  return status === 405 ? 'method_not_allowed' : 'bad_request'
}
