/**
 * What the Connect TLV's TCP options ask of the converter's downstream connection (RFC 8803 §5.2),
 * pure: MPTCP (30) when `convert.downstreamMptcp` allows it, TCP Fast Open (34, empty) when there
 * are early bytes to carry in the SYN. The connection itself is the concentrator's one egress
 * dialer (egress/connect-upstream.ts).
 */
import { TcpOptionKind } from '../../../shared/src/codec/convert-tcp-options.ts'
import type { TcpOption } from '../../../shared/src/codec/convert-tcp-options.ts'

export interface DownstreamRequest {
  readonly options: readonly TcpOption[]
  /** Application bytes that followed the Convert message (≤ limits.earlyDataMaxBytes). */
  readonly earlyData: Uint8Array
  readonly allowMptcp: boolean
}

export function downstreamPlan (req: DownstreamRequest): { mptcp: boolean, fastOpen: boolean } {
  const asked = (kind: number): boolean => req.options.some((o) => o.kind === kind)
  return { mptcp: req.allowMptcp && asked(TcpOptionKind.Mptcp), fastOpen: asked(TcpOptionKind.FastOpen) && req.earlyData.length > 0 }
}
