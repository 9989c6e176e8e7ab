/**
 * Builds the LAN UDP agent from the configuration (udp.enabled), with the CPE's own dialling rules
 * for the concentrator leg: MPTCP, the agent's SO_MARK, the mptcp.onUnavailable policy.
 */
import { once } from 'node:events'
import type net from 'node:net'
import { childFor } from '../../../shared/src/log.ts'
import { dial } from '../../../shared/src/net/dial.ts'
import { formatHostPort } from '../../../shared/src/net/endpoint.ts'
import { runCommand } from '../../../shared/src/sys/command.ts'
import type { JournalRecorder } from '../../../shared/src/sys/crash-journal.ts'
import type { Config } from '../config/config.ts'
import type { CpeServices } from '../cpe-state.ts'
import { UdpAgent } from './udp-agent.ts'

const ConnectTimeoutMs = 5000

/** undefined when udp.enabled is false. */
export async function startUdpAgent (s: CpeServices, config: Config, journal: JournalRecorder): Promise<UdpAgent | undefined> {
  const u = config.udp
  if (!u.enabled || u.port === undefined) return undefined
  const host = config.concentrator.host
  const port = u.port
  const dialFn = s.deps.dial ?? dial
  const connect = async (): Promise<net.Socket> => {
    const socket = dialFn({
      host, port, protocol: 'mptcp', onMptcpUnavailable: config.mptcp.onUnavailable, mark: config.intercept.socketMark, noDelay: true
    })
    const timer = setTimeout(() => { socket.destroy(new Error(`connect to ${formatHostPort(host, port)} timed out`)) }, ConnectTimeoutMs)
    try {
      await once(socket, 'connect')
    } finally {
      clearTimeout(timer)
    }
    return socket
  }
  const { username, password } = config.socks5
  return UdpAgent.start({
    config: u,
    ipv6: config.intercept.ipv6,
    client: {
      authority: formatHostPort(host, port),
      connect,
      credentials: username !== undefined && password !== undefined ? { username, password } : undefined
    },
    metrics: s.metrics,
    log: childFor(s.deps.log, 'udp'),
    run: runCommand,
    journal
  })
}
