/**
 * The CONNECT-UDP proxy as a start part of the concentrator (concentrator-parts.ts): started after
 * the runtime (it reads the current policy and credentials per request), stopped before it. Off
 * when `udp` is absent.
 */
import { childFor } from '../../../shared/src/log.ts'
import type { Startable } from '../../../shared/src/daemon/start-stop.ts'
import type { ConcentratorServices, ConcentratorState } from '../concentrator-state.ts'
import { startUdpProxy, type UdpProxy } from './udp-proxy.ts'

export function udpProxyPart (s: ConcentratorServices, state: ConcentratorState): Startable {
  let proxy: UdpProxy | undefined
  return {
    name: 'connect-udp proxy',
    start: async () => {
      const config = state.initial.udp
      if (config === undefined) return
      proxy = await startUdpProxy(config, {
        log: childFor(s.deps.log, 'udp'),
        metrics: s.metrics,
        runtime: s.current,
        onMptcpUnavailable: state.initial.mptcp.onUnavailable,
        ...(s.inWorker ? { reusePort: true } : {}),
        now: s.now
      })
    },
    stop: async () => { await proxy?.stop(); proxy = undefined }
  }
}
