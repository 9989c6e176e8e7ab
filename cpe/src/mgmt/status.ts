/**
 * Readiness, `GET /api/v1/status` and the per-uplink detail of `GET /api/v1/uplinks`, built from
 * the agent's services and state (cpe-state.ts). Pure readers: nothing here changes the agent.
 */
import type { CpeServices, CpeState } from '../cpe-state.ts'
import type { CpeChecks, CpeStatus } from './status-schema.ts'

export function cpeChecks (s: CpeServices, state: CpeState): CpeChecks {
  const { config, interceptor } = state
  const intercepting = config.intercept.rules !== 'off'
  return {
    uplinks: state.uplinks !== undefined,
    listener: !intercepting || (interceptor?.listening ?? false),
    rules: config.intercept.rules !== 'managed' || (interceptor?.tableInstalled ?? false),
    accepting: state.started && s.admission.admitting
  }
}

export function cpeReady (s: CpeServices, state: CpeState): boolean {
  return Object.values(cpeChecks(s, state)).every((v) => v)
}

export function cpeStatus (s: CpeServices, state: CpeState): CpeStatus {
  const { config, caps, failover, steering } = state
  const { admission, sessions } = s
  return {
    version: s.deps.version ?? '0.0.0',
    uptimeSeconds: Math.round((s.now() - s.startedAt) / 1000),
    ready: cpeReady(s, state),
    draining: !admission.admitting,
    checks: cpeChecks(s, state),
    mode: config.mode,
    multipathMode: state.uplinks?.mode ?? config.multipath.mode,
    concentrator: { ...(state.upstream?.concentrator ?? config.concentrator), stepwise: s.pipelining.stepwiseKeys() },
    connections: {
      active: admission.size,
      relaying: sessions.size,
      handshaking: admission.size - sessions.size,
      max: caps?.limits.maxConnections ?? 0,
      perSourceMax: caps?.limits.perSourceMaxConnections ?? 0
    },
    ...(failover === undefined ? {} : { failover: failover.view() }),
    ...(steering === undefined ? {} : { steering: steering.view() }),
    overload: s.overload.status()
  }
}

export interface UplinkDetail {
  access: string
  interface: string
  addresses: string[]
  mode: string
  steering: string | null
  backup: boolean | null
}

/** What the agent adds to the path monitor's view of one uplink. */
export function uplinkDetail (state: CpeState, name: string): UplinkDetail {
  const { config, uplinks, steering } = state
  const live = uplinks?.uplinks().find((u) => u.name === name)
  const configured = config.uplinks.find((u) => u.name === name)
  return {
    access: configured?.role ?? 'dsl',
    interface: configured?.interface ?? '',
    addresses: live?.addresses ?? [],
    mode: uplinks?.mode ?? config.multipath.mode,
    steering: steering?.mode ?? null,
    backup: (steering?.view().backup ?? {})[name] ?? null
  }
}
