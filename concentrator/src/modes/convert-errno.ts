/**
 * What the converter answers when the downstream connect fails: errno → RFC 8803 Error code and
 * Value (docs/convert.md, "Converter"). Pure.
 *
 * - ECONNREFUSED, ECONNRESET (the destination answered RST) → 96 Connection Reset.
 * - EHOSTUNREACH / EHOSTDOWN → 97 Destination Unreachable, value 1 (ICMP host unreachable);
 *   ENETUNREACH → 97 value 0 (ICMP net unreachable). The exact ICMP code would need IP_RECVERR.
 * - ETIMEDOUT (kernel SYN retries or our connect deadline) → 65 Network Failure, as GitHub issue 6
 *   asks. Trade-off (docs/convert.md): 65 makes a client shun the whole converter for
 *   ≥ 30 s because of one dead destination; 97 value 0 would not. Switching is one line here.
 * - EMFILE / ENFILE / ENOBUFS / ENOMEM (our resources) → 64 Resource Exceeded.
 * - EACCES / EPERM (a local firewall) → 32 Not Authorized.
 * - anything else (ENETDOWN, EADDRNOTAVAIL, …: a converter-wide forwarding problem) → 65.
 */
import { ConvertErrorCode } from '../../../shared/src/codec/convert-error.ts'

export interface ConvertErrorReply {
  readonly code: number
  readonly value: number
}

export function errnoToConvertError (code: string | undefined): ConvertErrorReply {
  switch (code) {
    case 'ECONNREFUSED': case 'ECONNRESET': return { code: ConvertErrorCode.ConnectionReset, value: 0 }
    case 'EHOSTUNREACH': case 'EHOSTDOWN': return { code: ConvertErrorCode.DestinationUnreachable, value: 1 }
    case 'ENETUNREACH': return { code: ConvertErrorCode.DestinationUnreachable, value: 0 }
    case 'ETIMEDOUT': return { code: ConvertErrorCode.NetworkFailure, value: 0 }
    case 'EMFILE': case 'ENFILE': case 'ENOBUFS': case 'ENOMEM': return { code: ConvertErrorCode.ResourceExceeded, value: 0 }
    case 'EACCES': case 'EPERM': return { code: ConvertErrorCode.NotAuthorized, value: 0 }
    default: return { code: ConvertErrorCode.NetworkFailure, value: 0 }
  }
}
