/**
 * What a failed SOCKS5 exchange with the concentrator means for the LAN client, and how it is
 * counted. The LAN client's TCP handshake was already completed by the TPROXY listener, so the only
 * way to report "connection refused" is a reset: every handshake failure ends in `resetAndDestroy()`
 * (the application sees ECONNRESET at once instead of hanging). Pure.
 */
import { Socks5Reply } from '../../../shared/src/codec/socks5.ts'
import type { RejectReason, UpstreamFailureReason } from '../../../shared/src/metrics/labels.ts'
import { upstreamFailureReason } from '../../../shared/src/net/connect-error.ts'

export type LanAction = 'reset'

/** How the failure is counted: a refusal by policy, or a failed upstream connect. */
export type FailureCount =
  | { readonly kind: 'rejected', readonly reason: RejectReason }
  | { readonly kind: 'upstream', readonly reason: UpstreamFailureReason }

export interface FailureOutcome {
  readonly lan: LanAction
  readonly count: FailureCount
}

const upstream = (reason: UpstreamFailureReason): FailureOutcome => ({ lan: 'reset', count: { kind: 'upstream', reason } })
const rejected = (reason: RejectReason): FailureOutcome => ({ lan: 'reset', count: { kind: 'rejected', reason } })

/** The concentrator answered CONNECT with REP ≠ 0 (RFC 1928 §6). */
export function outcomeForRep (rep: number): FailureOutcome {
  switch (rep) {
    case Socks5Reply.NotAllowed: return rejected('acl_denied')
    case Socks5Reply.NetworkUnreachable: case Socks5Reply.HostUnreachable: return upstream('unreachable')
    case Socks5Reply.ConnectionRefused: return upstream('refused')
    case Socks5Reply.TtlExpired: return upstream('timeout')
    case Socks5Reply.CommandNotSupported: return rejected('unsupported_cmd')
    case Socks5Reply.AddressTypeNotSupported: return rejected('malformed')
    default: return upstream('other')
  }
}

/** Failure kinds of one attempt towards the concentrator. */
export type AttemptFailure =
  | { readonly type: 'rep', readonly rep: number }
  | { readonly type: 'auth' }
  | { readonly type: 'protocol' }
  | { readonly type: 'timeout' }
  | { readonly type: 'connect', readonly errno: string | undefined }
  | { readonly type: 'closed' }
  /** The concentrator sent FIN before its reply (over a cap, draining, its handshake deadline). */
  | { readonly type: 'fin' }

export function outcomeFor (f: AttemptFailure): FailureOutcome {
  switch (f.type) {
    case 'rep': return outcomeForRep(f.rep)
    case 'auth': return rejected('auth_failed')
    case 'protocol': return upstream('other')
    case 'timeout': return upstream('timeout')
    case 'connect': return upstream(upstreamFailureReason(f.errno))
    case 'closed': return upstream('reset')
    case 'fin': return upstream('closed')
  }
}

/** A `Socks5ClientParser` failure event → attempt failure (REP set: the CONNECT reply). */
export function attemptFailure (code: string, rep: number | undefined): AttemptFailure {
  if (rep !== undefined) return { type: 'rep', rep }
  return code === 'HYBRID_ERR_SOCKS5_AUTH_FAILED' || code === 'HYBRID_ERR_SOCKS5_NO_ACCEPTABLE_METHOD' ? { type: 'auth' } : { type: 'protocol' }
}
