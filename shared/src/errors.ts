/**
 * One error registry for both daemons. Every error carries a stable `code`
 * (`HYBRID_ERR_<AREA>_<DETAIL>`); callers switch on `code`, never on the message or `instanceof`.
 * Every code here is documented in docs/errors.md (a unit test keeps the two in step).
 *
 * Add new codes to `ErrorCodes` in the section of your area; keep the table sorted by area.
 */

export const ErrorCodes = {
  // --- general -------------------------------------------------------------------------------
  HYBRID_ERR_INTERNAL: 'internal invariant broken',
  // --- start-up ------------------------------------------------------------------------------
  HYBRID_ERR_PREREQUISITE: 'a system prerequisite of the daemon is missing',
  // --- config --------------------------------------------------------------------------------
  HYBRID_ERR_CONFIG_INVALID: 'configuration is invalid',
  HYBRID_ERR_CONFIG_READ: 'configuration file cannot be read',
  HYBRID_ERR_CONFIG_PARSE: 'configuration file is not valid YAML',
  HYBRID_ERR_CONFIG_ENV: 'environment override is invalid',
  HYBRID_ERR_CONFIG_ARGV: 'command-line option is invalid',
  // --- kernel / sockets ----------------------------------------------------------------------
  HYBRID_ERR_MPTCP_UNAVAILABLE: 'kernel MPTCP is not available',
  HYBRID_ERR_MPTCP_FALLBACK: 'connection fell back to plain TCP',
  HYBRID_ERR_SOCKET_SYSCALL: 'socket system call failed',
  HYBRID_ERR_SOCKET_ADDRESS: 'socket address is invalid',
  HYBRID_ERR_TUN_SYSCALL: 'TUN device system call failed',
  // --- system commands / nftables / uplinks (CPE control plane) ----------------------------
  HYBRID_ERR_CMD_FAILED: 'system command failed',
  HYBRID_ERR_STATE_LOCKED: 'another instance of the daemon runs in this network namespace (crash journal held)',
  HYBRID_ERR_CMD_OUTPUT: 'system command output cannot be parsed',
  HYBRID_ERR_NFT_CHECK: 'nftables ruleset rejected by nft -c',
  HYBRID_ERR_NFT_APPLY: 'nftables ruleset could not be applied',
  HYBRID_ERR_NFT_HOLDER: 'nft -i holder process is not running',
  HYBRID_ERR_UPLINK_CONFIG: 'uplink configuration is inconsistent',
  HYBRID_ERR_UPLINK_GATEWAY: 'uplink gateway cannot be determined',
  HYBRID_ERR_STEERING_UNSUPPORTED: 'steering mode cannot run with this configuration',
  // --- management API -----------------------------------------------------------------------
  HYBRID_ERR_MGMT_UNAUTHORIZED: 'management request lacks the right bearer token',
  HYBRID_ERR_MGMT_BAD_REQUEST: 'management request is invalid',
  HYBRID_ERR_MGMT_HOST: 'management request Host header is not allowed',
  HYBRID_ERR_MGMT_NOT_FOUND: 'management route does not exist',
  HYBRID_ERR_MGMT_RATE_LIMITED: 'too many management requests',
  // --- destination policy / DNS (concentrator) ----------------------------------------------
  HYBRID_ERR_POLICY_DENIED: 'destination refused by the destination policy',
  HYBRID_ERR_POLICY_INVALID_DESTINATION: 'destination is not a valid address or host name',
  HYBRID_ERR_DNS_FAILED: 'name resolution failed',
  HYBRID_ERR_DNS_TIMEOUT: 'name resolution timed out',
  HYBRID_ERR_DNS_BUSY: 'no DNS lookup slot free',
  // --- udp (CONNECT-UDP proxy, RFC 9298) -----------------------------------------------------
  HYBRID_ERR_UDP_BAD_REQUEST: 'CONNECT-UDP request is malformed or not for the UDP proxy',
  HYBRID_ERR_UDP_AUTH_FAILED: 'CONNECT-UDP request is not authorised',
  HYBRID_ERR_UDP_FLOW_LIMIT: 'CONNECT-UDP flow cap reached',
  HYBRID_ERR_UDP_SOCKET: 'UDP socket of a flow cannot be opened',
  HYBRID_ERR_UDP_CAPSULE_FAULT: 'CONNECT-UDP capsule stream is malformed',
  // --- convert (RFC 8803) --------------------------------------------------------------------
  HYBRID_ERR_CONVERT_BAD_MAGIC: 'Convert header magic number is not 0x2263',
  HYBRID_ERR_CONVERT_BAD_LENGTH: 'Convert header Total Length is 0',
  HYBRID_ERR_CONVERT_UNSUPPORTED_VERSION: 'Convert version is not supported',
  HYBRID_ERR_CONVERT_MALFORMED: 'Convert message is malformed',
  HYBRID_ERR_CONVERT_UNSUPPORTED_TLV: 'Convert TLV type is unknown or not allowed in this direction',
  HYBRID_ERR_CONVERT_DUPLICATE_TLV: 'Convert TLV type appears twice',
  HYBRID_ERR_CONVERT_BAD_DESTINATION: 'Convert Connect destination is not allowed',
  HYBRID_ERR_CONVERT_UNSUPPORTED_TCP_OPTION: 'Convert Connect requests a TCP option that cannot be honoured',
  HYBRID_ERR_CONVERT_ENCODE: 'Convert message cannot be encoded',
  // --- socks5 (RFC 1928 / RFC 1929) ------------------------------------------------------------
  HYBRID_ERR_SOCKS5_BAD_VERSION: 'SOCKS5 VER field is not 5',
  HYBRID_ERR_SOCKS5_NO_METHODS: 'SOCKS5 greeting offers no method (NMETHODS 0)',
  HYBRID_ERR_SOCKS5_NO_ACCEPTABLE_METHOD: 'SOCKS5 peers share no acceptable authentication method',
  HYBRID_ERR_SOCKS5_AUTH_BAD_VERSION: 'SOCKS5 username/password sub-negotiation VER is not 1',
  HYBRID_ERR_SOCKS5_AUTH_BAD_LENGTH: 'SOCKS5 username or password length is 0',
  HYBRID_ERR_SOCKS5_AUTH_FAILED: 'SOCKS5 username/password authentication failed',
  HYBRID_ERR_SOCKS5_BAD_RESERVED: 'SOCKS5 reserved byte is not 0',
  HYBRID_ERR_SOCKS5_COMMAND_NOT_SUPPORTED: 'SOCKS5 command is not CONNECT',
  HYBRID_ERR_SOCKS5_ADDRESS_TYPE_NOT_SUPPORTED: 'SOCKS5 address type is unknown',
  HYBRID_ERR_SOCKS5_BAD_DOMAIN: 'SOCKS5 DOMAINNAME is not a valid host name',
  HYBRID_ERR_SOCKS5_BAD_PORT: 'SOCKS5 destination port is 0',
  HYBRID_ERR_SOCKS5_HANDSHAKE_TOO_LARGE: 'SOCKS5 handshake exceeds its byte budget',
  HYBRID_ERR_SOCKS5_BAD_REPLY: 'SOCKS5 server answer is malformed',
  HYBRID_ERR_SOCKS5_REQUEST_FAILED: 'SOCKS5 server refused the request (REP not 0)',
  HYBRID_ERR_SOCKS5_ENCODE: 'SOCKS5 message cannot be encoded'
} as const

export type ErrorCode = keyof typeof ErrorCodes

export interface HybridErrorOptions {
  cause?: unknown
  /** Extra, structured detail for logs (never secrets). */
  detail?: Readonly<Record<string, unknown>>
}

/** Base of every error the project throws on purpose. */
export class HybridError extends Error {
  readonly code: ErrorCode
  readonly detail: Readonly<Record<string, unknown>> | undefined

  constructor (code: ErrorCode, message?: string, options: HybridErrorOptions = {}) {
    super(message ?? ErrorCodes[code], options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'HybridError'
    this.code = code
    this.detail = options.detail
  }
}

/** Configuration problems: thrown at start-up or on reload, never on the data path. */
export class ConfigError extends HybridError {
  override name = 'ConfigError'
}

/** A system call (socket, setsockopt, ioctl …) failed; `errno` is the kernel's answer. */
export class SyscallError extends HybridError {
  override name = 'SyscallError'
  readonly errno: number
  readonly syscall: string

  constructor (code: ErrorCode, syscall: string, errno: number, message: string, options: HybridErrorOptions = {}) {
    super(code, message, options)
    this.errno = errno
    this.syscall = syscall
  }
}

export function isHybridError (err: unknown): err is HybridError {
  return err instanceof HybridError
}
