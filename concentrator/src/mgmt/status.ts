/**
 * Readiness, the listener list and `GET /api/v1/status` of the concentrator, built from its
 * services and state (concentrator-state.ts). Pure readers: nothing here changes the daemon.
 */
import type { ConnectionCaps } from '../../../shared/src/net/connection-caps.ts'
import type { ConcentratorServices, ConcentratorState } from '../concentrator-state.ts'
import type { ConcentratorStatus } from './status-schema.ts'

export interface ListenerStatus { host: string, port: number, mode: string, protocol: 'mptcp' | 'tcp' }

export function listenerStatus (s: ConcentratorServices): ListenerStatus[] {
  return s.listeners.listeners.map((l) => ({ host: l.address.host, port: l.address.port, mode: l.config.mode, protocol: l.protocol }))
}

export function concentratorReady (s: ConcentratorServices, state: ConcentratorState): boolean {
  return s.admission.admitting && state.starting && s.listeners.allBound
}

type CapsStatus = Pick<ConcentratorStatus['connections'], 'max' | 'perSourceMax' | 'unauthenticated' | 'unauthenticatedMax' | 'sources'>

function capsStatus (caps: ConnectionCaps | undefined): CapsStatus {
  return {
    max: caps?.limits.maxConnections ?? 0,
    perSourceMax: caps?.limits.perSourceMaxConnections ?? 0,
    unauthenticated: caps?.unauthenticated ?? 0,
    unauthenticatedMax: caps?.limits.unauthenticatedMaxConnections ?? 0,
    sources: caps?.sources ?? 0
  }
}

export function concentratorStatus (s: ConcentratorServices, state: ConcentratorState): ConcentratorStatus {
  const { admission, sessions } = s
  const { runtime } = state
  return {
    version: s.deps.version ?? '0.0.0',
    uptimeSeconds: Math.round((s.now() - s.startedAt) / 1000),
    ready: concentratorReady(s, state),
    draining: !admission.admitting,
    listeners: listenerStatus(s),
    connections: {
      active: admission.size,
      relaying: sessions.size,
      handshaking: admission.size - sessions.size,
      ...capsStatus(state.caps)
    },
    auth: {
      trustedPrefixes: state.config.auth.trustedPrefixes.length,
      users: runtime?.verifier?.size ?? 0,
      throttledSources: runtime?.backoff.throttledCount() ?? 0
    },
    policy: { hostAddresses: [...(state.hostAddresses?.addresses ?? [])] },
    overload: s.overload.status(),
    kernel: s.machine.kernelStatus()
  }
}
