/**
 * The management listener's connection budget (`management.limits`): a total cap and a per-source
 * cap on concurrent TCP connections, enforced on the server's 'connection' event — an over-limit
 * socket is destroyed at once, before it costs more than its fd — plus the HTTP timeouts that close
 * idle and slow connections. Without it, a LAN host holding thousands of idle connections to the
 * CPE's management port exhausted the agent's file descriptors and stopped all LAN traffic.
 *
 * The per-source cap is what keeps health probes working under such a flood: one host cannot take
 * more than `perSourceMaxConnections` of the `maxConnections` slots.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { ConnectionCaps, type CapRefusal } from '../net/connection-caps.ts'
import { ConfigError } from '../errors.ts'
import { capSourceKey, DEFAULT_SOURCE_IPV6_PREFIX_LENGTH } from '../net/source-prefix.ts'
import { unmapV4 } from '../net/endpoint.ts'
import type { CheckProblem } from '../config/problem.ts'

export interface MgmtConnectionLimits {
  /** Concurrent management connections in total. Default 64. */
  maxConnections: number
  /** Concurrent management connections from one source address (IPv6: one prefix of `perSourceIpv6PrefixLength`). Default 16. */
  perSourceMaxConnections: number
  /** IPv6 prefix length that makes one source for `perSourceMaxConnections` (IPv4 is always /32). Default 64. */
  perSourceIpv6PrefixLength: number
  /** A connection with no bytes either way for this long is closed (Node `server.timeout`). Default 30 000 ms. */
  idleTimeoutMs: number
  /** An idle keep-alive connection between requests is closed after this. Default 5 000 ms. */
  keepAliveTimeoutMs: number
  /** The request headers must arrive within this (Node `server.headersTimeout`). Default 5 000 ms. */
  headersTimeoutMs: number
  /** The whole request must arrive within this (Node `server.requestTimeout`). Default 10 000 ms. */
  requestTimeoutMs: number
}

/** Defaults; the configuration schema (shared/src/config/common-schema.ts) uses the same values. */
export const DefaultMgmtConnectionLimits: Readonly<MgmtConnectionLimits> = {
  maxConnections: 64,
  perSourceMaxConnections: 16,
  perSourceIpv6PrefixLength: DEFAULT_SOURCE_IPV6_PREFIX_LENGTH,
  idleTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000
}

/** How often Node checks headersTimeout/requestTimeout (its own default, 30 s, would let them overrun). */
export const TIMEOUT_CHECK_INTERVAL_MS = 1000

/** Combinations Node rejects (headers timeout beyond the request timeout); both daemons' config checks run this. */
export function mgmtLimitProblems (limits: Partial<MgmtConnectionLimits> | undefined): CheckProblem[] {
  const resolved = { ...DefaultMgmtConnectionLimits, ...limits }
  return resolved.headersTimeoutMs > resolved.requestTimeoutMs
    ? [{ path: ['management', 'limits', 'headersTimeoutMs'], message: 'must not exceed /management/limits/requestTimeoutMs' }]
    : []
}

/** Fills in the defaults; throws ConfigError for what `mgmtLimitProblems` reports (the loader refuses it first). */
export function resolveMgmtConnectionLimits (limits: Partial<MgmtConnectionLimits> | undefined): MgmtConnectionLimits {
  const [problem] = mgmtLimitProblems(limits)
  if (problem !== undefined) {
    throw new ConfigError('HYBRID_ERR_CONFIG_INVALID', 'management.limits.headersTimeoutMs: must not exceed management.limits.requestTimeoutMs',
      { detail: { key: 'management.limits.headersTimeoutMs' } })
  }
  return { ...DefaultMgmtConnectionLimits, ...limits }
}

/**
 * The source a connection is counted against: its remote address, IPv4-mapped IPv6 unwrapped, IPv6
 * aggregated to its `/v6PrefixLength` (a host holding a /64 is one source, not 2^64).
 */
export function connectionSource (socket: Socket, v6PrefixLength: number = DEFAULT_SOURCE_IPV6_PREFIX_LENGTH): string {
  const address = socket.remoteAddress ?? 'unknown'
  return capSourceKey(unmapV4(address), v6PrefixLength)
}

/** Why the management listener refused a connection (it has no unauthenticated budget). */
export type MgmtRefusal = Exclude<CapRefusal, 'unauthenticated_limit'>

export interface ConnectionBudget {
  readonly caps: ConnectionCaps
  /**
   * For shutdown: refuse new connections and destroy those with no request in progress (a held
   * idle connection would otherwise keep `server.close()` waiting until its timeout).
   */
  closeIdle: () => void
}

/**
 * Enforces the caps on `server`: each accepted socket takes a slot (released on close); a socket
 * without one is destroyed at once and reported through `onRefused`.
 */
export function enforceConnectionCaps (server: Server,
  limits: Pick<MgmtConnectionLimits,
    'maxConnections' | 'perSourceMaxConnections'> & Partial<Pick<MgmtConnectionLimits, 'perSourceIpv6PrefixLength'>>,
  onRefused: (reason: MgmtRefusal) => void): ConnectionBudget {
  const caps = new ConnectionCaps({ maxConnections: limits.maxConnections, perSourceMaxConnections: limits.perSourceMaxConnections })
  /** Held sockets and their requests in progress. */
  const held = new Map<Socket, number>()
  let closing = false
  server.on('connection', (socket: Socket) => {
    if (closing) {
      socket.destroy()
      return
    }
    const slot = caps.tryAcquire(connectionSource(socket, limits.perSourceIpv6PrefixLength), { authenticated: true })
    if (!slot.ok) {
      socket.destroy()
      // No unauthenticated budget on the management listener: only the two caps can refuse.
      onRefused(slot.reason === 'unauthenticated_limit' ? 'max_conns' : slot.reason)
      return
    }
    held.set(socket, 0)
    socket.once('close', () => {
      held.delete(socket)
      slot.release()
    })
  })
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const socket = request.socket
    const n = held.get(socket)
    if (n === undefined) return
    held.set(socket, n + 1)
    response.once('close', () => {
      const left = held.get(socket)
      if (left !== undefined) held.set(socket, left - 1)
    })
  })
  return {
    caps,
    closeIdle: () => {
      closing = true
      for (const [socket, requests] of held) if (requests === 0) socket.destroy()
    }
  }
}
