/**
 * One reason code per refusal, and the answer each protocol puts on the wire for it:
 * SOCKS5 REP (RFC 1928 §6) and the RFC 8803 Convert Error code (transparent mode answers every
 * refusal with a reset), plus how it is counted: the `reason` label of
 * `hybrid_connections_rejected_total`, or, for a failed lookup, an upstream connect failure `dns`.
 * Every mode reads all of it from the refusal; none maps reasons itself.
 */
import type { ErrorCode } from '../../../shared/src/errors.ts'
import type { RejectReason } from '../../../shared/src/metrics/labels.ts'

export const RefusalReason = {
  /** Empty, malformed or over-long name, bad port, numeric name that is no IPv4 address. */
  InvalidDestination: 'invalid_destination',
  /** Built-in special-purpose range, own address, infrastructure prefix, scoped or localhost. */
  SsrfBlocked: 'ssrf_blocked',
  /** Configured `denyPrefixes`. */
  AclDenied: 'acl_denied',
  /** Configured `deniedPorts` / `allowedPorts`. */
  PortDenied: 'port_denied',
  /** NXDOMAIN, no A/AAAA records, SERVFAIL, refused, unparseable answer. */
  DnsFailed: 'dns_failed',
  /** No answer before the lookup deadline. */
  DnsTimeout: 'dns_timeout',
  /** Global or per-source lookup cap and its queue full. */
  DnsBusy: 'dns_busy'
} as const
export type RefusalReason = typeof RefusalReason[keyof typeof RefusalReason]

/** SOCKS5 REP values used for refusals. */
export const Socks5RefusalReply = {
  GeneralFailure: 0x01,
  NotAllowed: 0x02,
  HostUnreachable: 0x04
} as const
export type Socks5RefusalReply = typeof Socks5RefusalReply[keyof typeof Socks5RefusalReply]

/** RFC 8803 Error codes used for refusals: 1 Malformed Message, 32 Not Authorized. */
export type ConvertRefusalCode = 1 | 32

/** How a refusal is counted: a rejected connection, or (name lookups) a failed upstream connect. */
export type RefusalCount =
  | { readonly kind: 'rejected', readonly reason: RejectReason }
  | { readonly kind: 'upstream', readonly reason: 'dns' }

export interface PolicyRefusal {
  readonly allowed: false
  readonly reason: RefusalReason
  readonly socks5Reply: Socks5RefusalReply
  readonly convertError: { readonly code: ConvertRefusalCode }
  readonly count: RefusalCount
  /** For logs: `new HybridError(r.code, r.detail)`. */
  readonly code: ErrorCode
  /** Human-readable; contains only canonical addresses and validated names, never raw input. */
  readonly detail: string
}

const rejected = (reason: RejectReason): RefusalCount => ({ kind: 'rejected', reason })
const DNS: RefusalCount = { kind: 'upstream', reason: 'dns' }

const Wire: Readonly<Record<RefusalReason, { socks5Reply: Socks5RefusalReply, count: RefusalCount, code: ErrorCode }>> = {
  invalid_destination: { socks5Reply: Socks5RefusalReply.NotAllowed, count: rejected('malformed'), code: 'HYBRID_ERR_POLICY_INVALID_DESTINATION' },
  ssrf_blocked: { socks5Reply: Socks5RefusalReply.NotAllowed, count: rejected('ssrf_blocked'), code: 'HYBRID_ERR_POLICY_DENIED' },
  acl_denied: { socks5Reply: Socks5RefusalReply.NotAllowed, count: rejected('acl_denied'), code: 'HYBRID_ERR_POLICY_DENIED' },
  port_denied: { socks5Reply: Socks5RefusalReply.NotAllowed, count: rejected('acl_denied'), code: 'HYBRID_ERR_POLICY_DENIED' },
  dns_failed: { socks5Reply: Socks5RefusalReply.HostUnreachable, count: DNS, code: 'HYBRID_ERR_DNS_FAILED' },
  dns_timeout: { socks5Reply: Socks5RefusalReply.HostUnreachable, count: DNS, code: 'HYBRID_ERR_DNS_TIMEOUT' },
  dns_busy: { socks5Reply: Socks5RefusalReply.GeneralFailure, count: DNS, code: 'HYBRID_ERR_DNS_BUSY' }
}

/** The count of a refusal reason (the same in every mode). */
export function refusalCount (reason: RefusalReason): RefusalCount {
  return Wire[reason].count
}

/**
 * Build a refusal. `malformed` selects Convert Error 1 (unspecified, loopback, multicast,
 * broadcast, invalid); every other refusal is Error 32.
 */
export function refuse (reason: RefusalReason, detail: string, malformed = false): PolicyRefusal {
  const w = Wire[reason]
  return {
    allowed: false,
    reason,
    socks5Reply: w.socks5Reply,
    convertError: { code: malformed || reason === 'invalid_destination' ? 1 : 32 },
    count: w.count,
    code: w.code,
    detail
  }
}
