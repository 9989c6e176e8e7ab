/**
 * The Convert fallback `direct` (convert.ts): the original destination dialled straight from the
 * CPE, marked (SO_MARK = intercept.socketMark) so the interceptor leaves it alone. Plain TCP, no
 * bonding, no path accounting. It runs on the Convert connection's lifecycle object
 * (cpe-connection.ts) and is counted as `convert`; a failed connect resets the LAN connection.
 */
import type net from 'node:net'
import { dial } from '../../../shared/src/net/dial.ts'
import { errnoOf, upstreamFailureReason } from '../../../shared/src/net/connect-error.ts'
import { formatEndpoint } from '../../../shared/src/net/endpoint.ts'
import type { CpeLimits } from '../config/limits.ts'
import type { OriginalDestination } from '../intercept/interceptor.ts'
import { relayUpstream, type CpeConnection, type CpeConnectionDeps } from './cpe-connection.ts'
import type { DialFn } from './upstream.ts'

export interface DirectSettings {
  readonly socketMark: number
  readonly highWaterMark: number
  readonly limits: CpeLimits
}

export interface DirectDeps extends CpeConnectionDeps {
  readonly dial?: DialFn | undefined
}

/** Dial `destination` and relay the LAN connection to it; `first`: the client's bytes already read (early data). */
export function relayDirect (conn: CpeConnection, destination: OriginalDestination, first: Buffer, s: DirectSettings, deps: DirectDeps): void {
  const fail = (err: unknown, why: string): void => {
    if (conn.settled || conn.relaying) return
    deps.metrics.upstreamConnectFailures.inc({ reason: upstreamFailureReason(errnoOf(err)) })
    conn.refuse({ close: 'reset', why: `${why}; resetting the LAN connection` })
  }
  let socket: net.Socket
  try {
    socket = (deps.dial ?? dial)({
      host: destination.address,
      port: destination.port,
      protocol: 'tcp',
      mark: s.socketMark,
      allowHalfOpen: true,
      noDelay: true,
      highWaterMark: s.highWaterMark
    })
  } catch (err) {
    fail(err, 'direct dial refused')
    return
  }
  conn.signal.addEventListener('abort', () => { if (!conn.relaying) socket.destroy() }, { once: true })
  socket.on('error', (err: Error) => { fail(err, 'direct connect failed') })
  socket.once('connect', () => {
    if (conn.settled) return
    relayUpstream(conn, socket, {
      limits: s.limits,
      session: { dst: formatEndpoint(destination), upstream: 'direct', pipelined: true, tfo: 'none', path: undefined },
      mptcp: false,
      track: false,
      earlyData: first
    }, deps)
  })
}
