/**
 * TCP Fast Open outcome and MPTCP fallback reason of a connection to the concentrator, read from
 * the initial subflow's TCP_INFO once the handshake is over (pure). docs/design/kernel-facts.md §2:
 * SYN_DATA in tcpi_options means the SYN's data was acknowledged; tcpi_fastopen_client_fail says why not.
 */
import { FastOpenClientFail } from '../../../shared/src/codec/tcp-info.ts'
import type { TcpInfo } from '../../../shared/src/codec/tcp-info.ts'
import type { FallbackReason } from '../../../shared/src/metrics/labels.ts'
import type { TfoResult } from '../metrics.ts'

/** undefined: no TFO attempt visible (e.g. fastOpen off). */
export function tfoResult (info: Pick<TcpInfo, 'synData' | 'fastOpenClientFail'>): TfoResult | undefined {
  if (info.synData) return 'syn_data_acked'
  switch (info.fastOpenClientFail) {
    case FastOpenClientFail.NoCookie: return 'cookie_unavailable'
    case FastOpenClientFail.SynDataNotAcked: return 'data_not_acked'
    case FastOpenClientFail.SynRetransmitted: return 'syn_retransmitted'
    default: return undefined
  }
}

/**
 * Why a connection that should run MPTCP does not. SYN data not acknowledged is the silent-fallback
 * trap of docs/design/kernel-facts.md §2 (cookie-less SYN data towards a server requiring a cookie).
 */
export function fallbackReason (info: Pick<TcpInfo, 'fastOpenClientFail'> | undefined): FallbackReason {
  return info?.fastOpenClientFail === FastOpenClientFail.SynDataNotAcked ? 'tfo_data_not_acked' : 'other'
}
