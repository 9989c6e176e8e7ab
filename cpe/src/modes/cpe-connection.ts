/**
 * The CPE's use of the shared per-connection lifecycle (shared/src/net/proxied-connection.ts): one
 * `ProxiedConnection` per intercepted LAN connection, whatever the mode (socks5.ts, convert.ts and
 * its SOCKS5 and direct fallbacks, transparent.ts). The modes are strategies around it; what the CPE
 * adds lives here: the upstream's MPTCP gauge and the per-path accounting of the relayed upstream
 * (tracked while relaying, sampled on FIN and before an abort, untracked at the end).
 */
import type net from 'node:net'
import { ProxiedConnection } from '../../../shared/src/net/proxied-connection.ts'
import type { SessionFields } from '../../../shared/src/net/proxied-connection.ts'
import type { DataPlane } from '../../../shared/src/net/data-plane.ts'
import type { Mode } from '../../../shared/src/metrics/labels.ts'
import type { Logger } from '../../../shared/src/log.ts'
import type { CpeLimits } from '../config/limits.ts'
import type { CpeSessionEntry, CpeSessionTable } from '../mgmt/session-table.ts'
import type { CpeMetrics } from '../metrics.ts'
import type { PathMonitor } from '../paths/path-monitor.ts'

export type CpeConnection = ProxiedConnection<CpeSessionEntry>

export interface CpeConnectionDeps {
  readonly metrics: CpeMetrics
  readonly sessions: CpeSessionTable
  readonly paths: PathMonitor
  /** Who moves the relayed bytes (docs/data-plane.md); absent: the stream relay. */
  readonly dataPlane?: DataPlane | undefined
}

export interface CpeConnectionInfo {
  readonly id: number
  readonly log: Logger
  /** Called exactly once when the connection is gone. */
  readonly onDone: () => void
}

/** The connection a mode runs on: `lan` itself when it is one already (a Convert fallback), else a new one. */
export function cpeConnectionOf (lan: net.Socket | CpeConnection, mode: Mode, info: CpeConnectionInfo, deps: CpeConnectionDeps): CpeConnection {
  return lan instanceof ProxiedConnection ? lan : createCpeConnection(lan, mode, info, deps)
}

/** The lifecycle of one intercepted LAN connection; the `mptcp` of its sessions is the upstream's. */
export function createCpeConnection (lan: net.Socket, mode: Mode, info: CpeConnectionInfo, deps: CpeConnectionDeps): CpeConnection {
  return new ProxiedConnection<CpeSessionEntry>(lan, {
    id: info.id,
    mode,
    mptcp: false,
    log: info.log,
    onDone: info.onDone,
    metrics: deps.metrics,
    sessions: deps.sessions,
    dataPlane: deps.dataPlane
  })
}

export interface UpstreamRelay {
  readonly limits: CpeLimits
  readonly session: SessionFields<CpeSessionEntry>
  /** The upstream runs MPTCP (counted in hybrid_mptcp_connections_active while relaying). */
  readonly mptcp: boolean
  /** Track the upstream's path (false: a direct fallback, no path accounting). */
  readonly track: boolean
  readonly earlyData?: Uint8Array
  readonly sentInHandshake?: number
  /** Epoch ms of the accept; absent: now. */
  readonly started?: number
}

/** Relay the LAN connection to `upstream` with the CPE's per-path accounting and MPTCP gauge. */
export function relayUpstream (conn: CpeConnection, upstream: net.Socket, r: UpstreamRelay, deps: CpeConnectionDeps): void {
  const { metrics, paths } = deps
  const id = conn.id
  if (r.mptcp) metrics.mptcpConnectionsActive.inc()
  const observer = {
    sample: () => { paths.sampleOne(id) },
    end: () => {
      paths.untrack(id)
      if (r.mptcp) metrics.mptcpConnectionsActive.dec()
    }
  }
  conn.relayTo(upstream, {
    limits: r.limits,
    session: r.session,
    mptcp: r.mptcp,
    observer,
    ...(r.earlyData === undefined ? {} : { earlyData: r.earlyData }),
    ...(r.sentInHandshake === undefined ? {} : { sentInHandshake: r.sentInHandshake }),
    ...(r.started === undefined ? {} : { started: r.started })
  })
  // onFin samples the path while the fd is open: at relay end (untrack) it is closed.
  if (r.track) paths.track(id, upstream)
}
