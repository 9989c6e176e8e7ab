/**
 * Configuration sections both daemons share: `log`, `management`, `mptcp`. Each daemon composes them
 * in its own `config.ts`; later issues add sections next to these.
 */
import { Type, type Static } from 'typebox'
import { B64TOKEN_PATTERN } from '../mgmt/bearer-auth.ts'
import { DefaultMgmtConnectionLimits as D } from '../mgmt/connection-budget.ts'
import type { LegKeepalive } from '../net/sockopt.ts'
import { integerOption, msOption, portOption, stringEnum } from './schema-helpers.ts'

export const LogLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const
export type LogLevel = typeof LogLevels[number]

export const LogSchema = Type.Object({
  /** pino level: `fatal` … `trace`. Default `info`. Also `--log-level` and `HYBRID_*_LOG__LEVEL`. */
  level: stringEnum([...LogLevels], 'log level (info: lifecycle and config; debug: connection open/close; trace: handshake detail)', 'info')
}, { additionalProperties: false, default: {}, description: 'logging (JSON lines on stdout)' })
export type LogConfig = Static<typeof LogSchema>

/**
 * `management.limits`: the management listener's connection budget and timeouts. A LAN host holding
 * idle connections must not exhaust the daemon's fds, and one host must not take every slot.
 */
export const ManagementLimitsSchema = Type.Object({
  /** Concurrent management connections in total; beyond, a new connection is closed at once. Default 64. */
  maxConnections: integerOption({
    default: D.maxConnections,
    minimum: 1,
    maximum: 65_535,
    unit: 'connections',
    description: 'concurrent management connections in total; beyond, new ones are closed at accept (hybrid_mgmt_connections_refused_total{reason="max_conns"})'
  }),
  /** Concurrent management connections from one source address. Default 16. */
  perSourceMaxConnections: integerOption({
    default: D.perSourceMaxConnections,
    minimum: 1,
    maximum: 65_535,
    unit: 'connections',
    description: 'concurrent management connections from one source (an IPv4 address, or an IPv6 prefix of perSourceIpv6PrefixLength); beyond, closed at accept (reason="per_source_limit")'
  }),
  /** IPv6 prefix length that makes one management source. Default 64. */
  perSourceIpv6PrefixLength: integerOption({
    default: D.perSourceIpv6PrefixLength,
    minimum: 1,
    maximum: 128,
    unit: 'bits',
    description: 'IPv6 prefix length that makes one source for perSourceMaxConnections (IPv4 is always /32; one host usually holds a /64)'
  }),
  /** No bytes either way for this long closes the connection. Unit ms. Default 30000. */
  idleTimeoutMs: msOption(D.idleTimeoutMs, 'a management connection with no bytes either way for this long is closed', 100, 3_600_000),
  /** Idle time allowed between keep-alive requests. Unit ms. Default 5000. */
  keepAliveTimeoutMs: msOption(D.keepAliveTimeoutMs, 'an idle keep-alive connection between two requests is closed after this', 100, 600_000),
  /** Request headers must arrive within this. Unit ms. Default 5000. At most requestTimeoutMs. */
  headersTimeoutMs: msOption(D.headersTimeoutMs, 'request headers must arrive within this (at most requestTimeoutMs; checked every second)', 100,
    600_000),
  /** The whole request must arrive within this. Unit ms. Default 10000. */
  requestTimeoutMs: msOption(D.requestTimeoutMs, 'the whole request (headers and body) must arrive within this', 100, 600_000)
}, { additionalProperties: false, default: {}, description: 'connection budget and timeouts of the management listener' })
export type ManagementLimits = Static<typeof ManagementLimitsSchema>

/** `management` section; only the default port differs between the daemons. */
export function managementSchema (defaultPort: number) {
  return Type.Object({
    listen: Type.Object({
      /**
       * Address of the management HTTP server (/livez, /readyz, /metrics). IP literal. Default
       * `127.0.0.1`: loopback only. To reach it from the LAN or a management VLAN, set that address
       * here explicitly (and a token; docs/management-api.md).
       */
      host: Type.String({
        format: 'ip',
        default: '127.0.0.1',
        description: 'management server address (IP literal); default loopback only; set a management VLAN (or LAN) address explicitly to open it'
      }),
      /** TCP port of the management server. Default 9090 (concentrator) / 9091 (CPE). */
      port: portOption('management server port', defaultPort)
    }, { additionalProperties: false, default: {}, description: 'where the management server listens' }),
    limits: ManagementLimitsSchema,
    /** Bearer token required by the management API; unset means no authentication (loopback only!). Secret. Default: unset. */
    token: Type.Optional(Type.String({
      minLength: 16,
      maxLength: 256,
      pattern: B64TOKEN_PATTERN,
      secret: true,
      description: 'bearer token for the management API (at least 16 characters of RFC 6750 b64token: letters, digits, - . _ ~ + /, then =; e.g. openssl rand -hex 32); unset: no authentication'
    }))
  }, { additionalProperties: false, default: {}, description: 'management HTTP API' })
}
export type ManagementConfig = Static<ReturnType<typeof managementSchema>>

export const MptcpSchema = Type.Object({
  /**
   * What to do when kernel MPTCP is unavailable at start-up: `fail` exits with
   * HYBRID_ERR_MPTCP_UNAVAILABLE, `fallback` runs on plain TCP and logs a warning. Default `fail`.
   */
  onUnavailable: stringEnum(['fail', 'fallback'], 'kernel MPTCP missing at start-up: fail (exit) or fallback (plain TCP, warn)', 'fail')
}, { additionalProperties: false, default: {}, description: 'Multipath TCP' })
export type MptcpConfig = Static<typeof MptcpSchema>

/** A socket address to listen on or to dial: IP literal plus port. */
export function endpointProperties (what: string) {
  return {
    /** IP literal (IPv4 or IPv6). */
    host: Type.String({ format: 'ip', description: `${what} address (IP literal)` }),
    /** TCP port 1–65535. */
    port: portOption(`${what} port`)
  }
}

/**
 * `dataPlane`: who moves the bytes of established relayed connections (docs/data-plane.md).
 * `splice`: the zero-copy splice(2) engine, refuse to start when its probe fails; `stream`: the JS
 * relay; `auto`: splice when the probe passes, else stream (logged). Read at start only.
 * Default: auto in both daemons (a daemon passes its own, so that one can differ again).
 */
export function dataPlaneSchema (defaultPlane: 'auto' | 'stream') {
  return stringEnum(['splice', 'stream', 'auto'],
    'relay data plane: splice (zero-copy splice(2) engine in a worker thread; refuse to start if the probe fails), stream (JS relay), auto (splice if the probe passes, else stream)',
    defaultPlane)
}

/** `stateDir`: where the crash journal lives (shared/src/sys/crash-journal.ts). */
export function stateDirSchema (daemon: string) {
  return Type.String({
    minLength: 1,
    maxLength: 1024,
    default: `/run/hybrid-${daemon}`,
    description: 'directory of the crash journal (what the daemon changed in its network namespace, undone by the next start after a crash); one file per namespace; keep it on a volume that outlives the container for crash recovery across container restarts'
  })
}

/** The relay's own timeouts and the global cap, the same in both daemons' `limits` (docs/design/limits.md). */
export const relayLimitProperties = {
  /** A relayed connection with no bytes either way for this long is closed. Unit ms. Default 3600000 (1 h). */
  idleTimeoutMs: msOption(3_600_000, 'close a relayed connection idle for this long (no bytes either way)'),
  /** After the first FIN, the other direction must finish within this time. Unit ms. Default 45000. */
  halfCloseTimeoutMs: msOption(45_000, 'after the first FIN, the other direction must end within this time', 100),
  /** Concurrent relayed connections; 0 = floor((RLIMIT_NOFILE − 64) / 2). Default 0. */
  maxConnections: integerOption({
    default: 0,
    minimum: 0,
    maximum: 1_048_576,
    unit: 'connections',
    description: 'concurrent relayed connections; 0: derived from the fd limit, floor((RLIMIT_NOFILE - 64) / 2)'
  })
}

/**
 * Dead-peer detection on every relayed leg of both daemons (spread into each daemon's `limits`;
 * defaults and why: docs/design/limits.md). A peer that vanished (power loss, NAT state timed out)
 * is found within keepaliveIdleMs + keepaliveCount × keepaliveIntervalMs when the connection is
 * idle (60 s by default), within userTimeoutMs when data is unacknowledged (plain TCP legs only:
 * MPTCP sockets refuse TCP_USER_TIMEOUT on Linux 6.18).
 */
export const keepaliveLimitProperties = {
  /**
   * TCP_KEEPIDLE on both legs: silence before the first keepalive probe; 0 = keepalive off. Unit ms (kernel:
   * whole seconds, rounded up). Default 30000.
   */
  keepaliveIdleMs: msOption(30_000,
    'relayed legs: silence before the first TCP keepalive probe (SO_KEEPALIVE + TCP_KEEPIDLE, whole seconds, rounded up); 0: keepalive off', 0,
    32_767_000),
  /** TCP_KEEPINTVL on both legs: between unanswered probes. Unit ms (whole seconds, rounded up). Default 10000. */
  keepaliveIntervalMs: msOption(10_000, 'relayed legs: interval between unanswered keepalive probes (TCP_KEEPINTVL, whole seconds, rounded up)',
    1000, 32_767_000),
  /** TCP_KEEPCNT on both legs: unanswered probes before the relay is reset (reason peer_timeout). Default 3. */
  keepaliveCount: integerOption({
    default: 3,
    minimum: 1,
    maximum: 127,
    unit: 'probes',
    description: 'relayed legs: unanswered keepalive probes before the connection is dropped (TCP_KEEPCNT; close reason peer_timeout)'
  }),
  /**
   * TCP_USER_TIMEOUT on plain-TCP legs: unacknowledged data older than this drops the connection; 0 = kernel
   * default (≈ 15 min of retransmissions). Unit ms. Default 60000.
   */
  userTimeoutMs: msOption(60_000,
    'plain-TCP relayed legs: drop the connection when sent data stays unacknowledged this long (TCP_USER_TIMEOUT; not while a live peer keeps its window shut: a reader that stopped reading is ended by the idle timeout, or after userTimeoutMs + 120 s without an ACK to the window probes; MPTCP legs do not support it); 0: kernel default', 0, 86_400_000)
}

/** The keepalive part of a daemon's `limits`, as the relay applies it to both legs. */
export function relayKeepalive (l: {
  keepaliveIdleMs: number,
  keepaliveIntervalMs: number,
  keepaliveCount: number,
  userTimeoutMs: number
}): LegKeepalive {
  return { idleMs: l.keepaliveIdleMs, intervalMs: l.keepaliveIntervalMs, count: l.keepaliveCount, userTimeoutMs: l.userTimeoutMs }
}
