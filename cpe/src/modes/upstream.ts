/**
 * The concentrator leg of one intercepted connection: an MPTCP socket (TFO, SO_MARK so the agent's
 * own packets are never intercepted) and what the agent learns from it once the handshake is over
 * (MPTCP or fallback, TFO outcome). Never throws: a refused socket option becomes a failed attempt.
 */
import net from 'node:net'
import { dial } from '../../../shared/src/net/dial.ts'
import { errnoOf } from '../../../shared/src/net/connect-error.ts'
import type { DialOptions } from '../../../shared/src/net/dial.ts'
import { isMptcpFallback, socketProtocol, tcpInfo } from '../../../shared/src/net/sockopt.ts'
import type { TcpInfo } from '../../../shared/src/codec/tcp-info.ts'
import type { FallbackReason } from '../../../shared/src/metrics/labels.ts'
import type { ConcentratorEndpointConfig } from '../config/socks5.ts'
import type { TfoResult } from '../metrics.ts'
import { fallbackReason, tfoResult } from '../paths/tfo-outcome.ts'

export interface UpstreamDialSettings {
  concentrator: ConcentratorEndpointConfig
  socketMark: number
  onMptcpUnavailable: 'fail' | 'fallback'
  highWaterMark: number
  /**
   * Source address for the upstream of a LAN connection to `destination` (steering classes pinned
   * to one access: SteeringController.pinnedSource); undefined: the kernel picks it by route.
   */
  sourceFor?: ((destination: { address: string, port: number }, family: 4 | 6) => string | undefined) | undefined
}

export type DialFn = (opts: DialOptions) => net.Socket

export type DialResult = { ok: true, socket: net.Socket } | { ok: false, errno: string | undefined, error: Error }

/** Starts the connect (returns at once; with TFO the SYN leaves with the first write). */
export function dialConcentrator (s: UpstreamDialSettings, dialFn: DialFn = dial, destination?: { address: string, port: number }): DialResult {
  try {
    const family = net.isIPv6(s.concentrator.host) ? 6 : 4
    const localAddress = destination === undefined ? undefined : s.sourceFor?.(destination, family)
    const socket = dialFn({
      ...(localAddress === undefined ? {} : { localAddress }),
      host: s.concentrator.host,
      port: s.concentrator.port,
      protocol: 'mptcp',
      onMptcpUnavailable: s.onMptcpUnavailable,
      fastOpen: s.concentrator.fastOpen,
      fastOpenNoCookie: s.concentrator.fastOpen && s.concentrator.fastOpenNoCookie,
      mark: s.socketMark,
      allowHalfOpen: true,
      noDelay: true,
      highWaterMark: s.highWaterMark
    })
    return { ok: true, socket }
  } catch (err) {
    return { ok: false, errno: errnoOf(err), error: err as Error }
  }
}

export interface UpstreamFacts {
  mptcp: boolean
  /** Set when the connection does not run MPTCP. */
  fallback: FallbackReason | undefined
  tfo: TfoResult | undefined
}

/** Read once the concentrator has answered (the TCP handshake is over by then). */
export function upstreamFacts (socket: net.Socket): UpstreamFacts {
  let info: TcpInfo | undefined
  try { info = tcpInfo(socket) } catch { info = undefined }
  let mptcp = false
  try { mptcp = socketProtocol(socket) === 'mptcp' && !isMptcpFallback(socket) } catch { mptcp = false }
  return { mptcp, fallback: mptcp ? undefined : fallbackReason(info), tfo: info === undefined ? undefined : tfoResult(info) }
}
