/**
 * The signalling mode, chosen once at start (`mode` is restart-only, reload-plan.ts): one function
 * per mode takes an intercepted LAN connection through the admission (lan-admission.ts) and hands
 * it, on its lifecycle object (cpe-connection.ts), to that mode's strategy. Settings are read from the current configuration per
 * connection, so a reload reaches new connections and never touches running ones.
 */
import { childFor } from '../../../shared/src/log.ts'
import type { CpeServices, CpeState, OnLanConnection } from '../cpe-state.ts'
import { Socks5Upstream, type Socks5Settings } from './socks5.ts'
import { ConvertUpstream } from './convert.ts'
import { TransparentUpstream } from './transparent.ts'
import type { FirstBytes } from './first-bytes.ts'
import type { CpeMetrics } from '../metrics.ts'
import type { CpeSessionTable } from '../mgmt/session-table.ts'
import type { PathMonitor } from '../paths/path-monitor.ts'
import type { PendingDials } from './pending-dials.ts'
import type { DialFn } from './upstream.ts'
import type { DataPlane } from '../../../shared/src/net/data-plane.ts'
import { createCpeConnection, type CpeConnection } from './cpe-connection.ts'
import { lanAdmitter, type LanAdmit } from './lan-admission.ts'

/** The SOCKS5 (and Convert) settings from the configuration in force. */
export function socks5Settings (state: CpeState): Socks5Settings {
  const { config, upstream, steering } = state
  return {
    concentrator: upstream?.concentrator ?? config.concentrator,
    socketMark: config.intercept.socketMark,
    onMptcpUnavailable: config.mptcp.onUnavailable,
    highWaterMark: config.limits.highWaterMark,
    sourceFor: (d, f) => steering?.pinnedSource(d, f),
    socks5: config.socks5,
    limits: config.limits
  }
}

type Strategy = (s: CpeServices, state: CpeState, admit: LanAdmit) => OnLanConnection

interface UpstreamDeps {
  metrics: CpeMetrics
  sessions: CpeSessionTable
  paths: PathMonitor
  redials: PendingDials
  dataPlane: DataPlane
  dial?: DialFn
}

/** What every mode's upstream gets from the services (the test `dial` included). */
function upstreamDeps (s: CpeServices): UpstreamDeps {
  const dial = s.deps.dial === undefined ? {} : { dial: s.deps.dial }
  return { metrics: s.metrics, sessions: s.sessions, paths: s.pathMonitor, redials: s.redials, dataPlane: s.dataPlane, ...dial }
}

const socks5: Strategy = (s, state, admit) => (lan, destination) => {
  const info = admit(lan, destination)
  if (info === undefined) return
  const deps = { ...upstreamDeps(s), pipelining: s.pipelining }
  info.attach(new Socks5Upstream(createCpeConnection(lan, 'socks5', info, deps), info, socks5Settings(state), deps))
}

/**
 * RFC 8803 towards the Transport Converter; a converter found missing falls back to SOCKS5: a plain
 * call that runs SOCKS5 on the same connection (no redials: the Convert attempt had its own).
 */
const convert: Strategy = (s, state, admit) => (lan, destination) => {
  const info = admit(lan, destination)
  if (info === undefined) return
  const base = socks5Settings(state)
  const { config } = state
  const converter = { ...base.concentrator, host: config.convert.host ?? base.concentrator.host, port: config.convert.port ?? base.concentrator.port }
  const { redials: _redials, ...fallbackDeps } = upstreamDeps(s)
  const fallbackSocks5 = (conn: CpeConnection, first: FirstBytes): Socks5Upstream =>
    new Socks5Upstream(conn, info, socks5Settings(state), { ...fallbackDeps, pipelining: s.pipelining }, first)
  const deps = { ...upstreamDeps(s), memory: s.converterMemory, fallbackSocks5 }
  const conn = createCpeConnection(lan, 'convert', info, deps)
  info.attach(new ConvertUpstream(conn, info, { ...base, concentrator: converter, convert: config.convert }, deps))
}

/** MPTCP straight to the original destination (docs/transparent.md). */
const transparent: Strategy = (s, state, admit) => (lan, destination) => {
  const info = admit(lan, destination)
  if (info === undefined) return
  const { intercept, mptcp, limits } = state.config
  const settings = { socketMark: intercept.socketMark, onMptcpUnavailable: mptcp.onUnavailable, highWaterMark: limits.highWaterMark, limits }
  const deps = upstreamDeps(s)
  info.attach(new TransparentUpstream(createCpeConnection(lan, 'transparent', info, deps), info, settings, deps))
}

const STRATEGIES: Record<CpeState['initial']['mode'], Strategy> = { socks5, convert, transparent }

/** The connection handler for the mode the agent started with. */
export function chooseModeStrategy (s: CpeServices, state: CpeState): OnLanConnection {
  const mode = state.initial.mode
  return STRATEGIES[mode](s, state, lanAdmitter(s, mode, childFor(s.deps.log, 'socks5')))
}
