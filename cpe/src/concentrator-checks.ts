/**
 * Concentrator-facing checks at start and on reload: kernel MPTCP per `mptcp.onUnavailable`, and
 * client TCP Fast Open (sysctl net.ipv4.tcp_fastopen bit 0x1 of this network namespace). Without the
 * bit TCP_FASTOPEN_CONNECT fails with EOPNOTSUPP, so TFO is switched off for the agent's connections
 * (warning) rather than failing every connection.
 */
import { readFileSync } from 'node:fs'
import type { Logger } from '../../shared/src/log.ts'
import { closeFd, openStreamSocket } from '../../shared/src/net/sockopt.ts'
import type { Config } from './config/config.ts'
import type { ConcentratorEndpointConfig } from './config/socks5.ts'

export interface EffectiveUpstream {
  concentrator: ConcentratorEndpointConfig
  /** The agent opens plain TCP (mptcp.onUnavailable: fallback on a kernel without MPTCP). */
  mptcpUnavailable: boolean
}

export function readTfoSysctl (read: () => string = () => readFileSync('/proc/sys/net/ipv4/tcp_fastopen', 'utf8')): number | undefined {
  try {
    const v = Number(read().trim())
    return Number.isInteger(v) ? v : undefined
  } catch {
    return undefined
  }
}

/** Throws HYBRID_ERR_MPTCP_UNAVAILABLE (policy fail). */
export function checkConcentratorPath (config: Config, log: Logger, tfoSysctl: () => number | undefined = readTfoSysctl): EffectiveUpstream {
  const family = config.concentrator.host.includes(':') ? 6 : 4
  let mptcpUnavailable = false
  const opened = openStreamSocket({
    family,
    protocol: 'mptcp',
    onMptcpUnavailable: config.mptcp.onUnavailable,
    onFallback: () => { mptcpUnavailable = true }
  })
  closeFd(opened.fd)
  if (mptcpUnavailable) log.warn('kernel MPTCP unavailable: connections to the concentrator use plain TCP (no bonding)')
  let concentrator = config.concentrator
  const tfo = tfoSysctl()
  if (concentrator.fastOpen && tfo !== undefined && (tfo & 0x1) === 0) {
    log.warn({ tcp_fastopen: tfo },
      'client TCP Fast Open is off in this network namespace (sysctl net.ipv4.tcp_fastopen lacks bit 0x1): connecting without TFO (+1 RTT per connection)')
    concentrator = { ...concentrator, fastOpen: false }
  }
  return { concentrator, mptcpUnavailable }
}
