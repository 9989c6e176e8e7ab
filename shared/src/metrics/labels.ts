/**
 * Closed label vocabularies shared by both daemons (naming and cardinality rules: docs/metrics.md).
 * Each is a readonly tuple plus a same-named union type; metric specs use the tuple, callers the type.
 * Never add a value derived from the network (addresses, ports, host names, user names, ids).
 */

/** Signalling mode of a proxied connection. */
export const Mode = ['socks5', 'convert', 'transparent'] as const
export type Mode = (typeof Mode)[number]

/** Which leg of a relayed connection: towards the client (LAN/CPE) or towards the server. */
export const Side = ['client', 'server'] as const
export type Side = (typeof Side)[number]

export const ReloadResult = ['success', 'failure'] as const
export type ReloadResult = (typeof ReloadResult)[number]

/** Why a connection was refused before it was relayed. */
export const RejectReason = [
  'max_conns', 'per_source_limit', 'unauthenticated_limit', 'acl_denied', 'ssrf_blocked', 'auth_failed',
  'handshake_timeout', 'malformed', 'unsupported_cmd', 'overload', 'not_intercepted'
] as const
export type RejectReason = (typeof RejectReason)[number]

/** Why a management API connection was refused (management.limits; shared/src/mgmt/connection-budget.ts). */
export const MgmtRefusalReason = ['max_conns', 'per_source_limit'] as const
export type MgmtRefusalReason = (typeof MgmtRefusalReason)[number]

/** Why an established (relayed) connection ended. */
export const CloseReason = ['normal', 'idle_timeout', 'half_close_timeout', 'max_duration', 'error', 'drain', 'peer_timeout', 'overload'] as const
export type CloseReason = (typeof CloseReason)[number]

/** `closed`: the next hop sent FIN before its reply (CPE: concentrator over a cap, draining, at its deadline). */
export const UpstreamFailureReason = ['refused', 'timeout', 'unreachable', 'dns', 'reset', 'closed', 'other'] as const
export type UpstreamFailureReason = (typeof UpstreamFailureReason)[number]

export const ConvertDirection = ['sent', 'received'] as const
export type ConvertDirection = (typeof ConvertDirection)[number]

/**
 * RFC 8803 Error codes by IANA name (10 registry codes), `private` for 192–255 and `unassigned`
 * for any other number a peer may send (network input must map to the closed set, never throw).
 */
export const ConvertErrorLabel = [
  'unsupported_version', 'malformed_message', 'unsupported_message', 'missing_cookie',
  'not_authorized', 'unsupported_tcp_option', 'resource_exceeded', 'network_failure',
  'connection_reset', 'destination_unreachable', 'private', 'unassigned'
] as const
export type ConvertErrorLabel = (typeof ConvertErrorLabel)[number]

const convertErrorByCode: ReadonlyMap<number, ConvertErrorLabel> = new Map([
  [0, 'unsupported_version'], [1, 'malformed_message'], [2, 'unsupported_message'], [3, 'missing_cookie'],
  [32, 'not_authorized'], [33, 'unsupported_tcp_option'], [64, 'resource_exceeded'], [65, 'network_failure'],
  [96, 'connection_reset'], [97, 'destination_unreachable']
])

/** Maps an RFC 8803 Error code (0–255, from the wire) to its metric label. */
export function convertErrorLabel (code: number): ConvertErrorLabel {
  const known = convertErrorByCode.get(code)
  if (known !== undefined) return known
  return code >= 192 && code <= 255 ? 'private' : 'unassigned'
}

/** Why an MPTCP connection fell back to plain TCP (no bonding). */
export const FallbackReason = ['no_mpc_synack', 'mpc_syn_drop', 'blackhole', 'infinite_map', 'tfo_data_not_acked', 'other'] as const
export type FallbackReason = (typeof FallbackReason)[number]

/** Overload protection actions, in the order of their default thresholds (docs/overload.md). */
export const OverloadAction = ['stop_accept_busiest', 'refuse_new', 'shed_idle'] as const
export type OverloadAction = (typeof OverloadAction)[number]

/** Resources the overload manager reads (docs/overload.md). */
export const OverloadResource = ['event_loop', 'heap', 'fds', 'buffered'] as const
export type OverloadResource = (typeof OverloadResource)[number]

export const Daemon = ['cpe', 'concentrator'] as const
export type Daemon = (typeof Daemon)[number]
