/**
 * What the CPE agent's modules share: the dependencies a caller (main.ts, tests) injects, the
 * long-lived services built once in `createCpe` (cpe.ts), and the state the start parts
 * (cpe-parts.ts) fill in and a reload (cpe-reload.ts) swaps. One object each, passed explicitly:
 * no module-level state.
 */
import type { UdpAgent } from './udp/udp-agent.ts'
import type net from 'node:net'
import type { Registry } from 'prom-client'
import type { Logger } from '../../shared/src/log.ts'
import type { ConnectionCaps } from '../../shared/src/net/connection-caps.ts'
import type { OverloadManager } from '../../shared/src/daemon/overload.ts'
import type { Admission } from '../../shared/src/daemon/admission.ts'
import type { CrashJournal, JournalRecorder } from '../../shared/src/sys/crash-journal.ts'
import type { Config } from './config/config.ts'
import type { EffectiveUpstream } from './concentrator-checks.ts'
import type { OriginalDestination, RefusedHandler } from './intercept/interceptor.ts'
import type { CpeSessionTable } from './mgmt/session-table.ts'
import type { CpeMetrics } from './metrics.ts'
import type { PathMonitor } from './paths/path-monitor.ts'
import type { PathHealth } from './health/path-health.ts'
import type { UplinkSource } from './paths/uplink-observer.ts'
import type { PipeliningMemory } from './modes/pipelining-memory.ts'
import type { ConverterMemory } from './modes/convert-reply.ts'
import type { DialFn } from './modes/upstream.ts'
import type { PendingDials } from './modes/pending-dials.ts'
import type { DataPlane } from '../../shared/src/net/data-plane.ts'
import type { Socks5Upstream } from './modes/socks5.ts'
import type { ConvertUpstream } from './modes/convert.ts'
import type { TransparentUpstream } from './modes/transparent.ts'
import type { FailoverController } from './failover/failover-controller.ts'
import type { SteeringController } from './steering/steering-controller.ts'

export type OnLanConnection = (lan: net.Socket, destination: OriginalDestination) => void

export interface CpeDeps {
  log: Logger
  /** The agent's registry; default a new one with default metrics and build info. */
  registry?: Registry
  version?: string
  commit?: string
  /** Bind the management server on `management.listen` (default true; tests use `mgmt.inject()`). */
  listenManagement?: boolean
  /** POST /api/v1/reload: re-read + validate the file, then `reload()` (runDaemonCli supplies it). */
  requestReload?: () => Promise<void>
  kernelMib?: boolean
  /** Tests: replace the uplink manager / interceptor / dial. */
  startUplinks?: (config: Config, log: Logger, journal: JournalRecorder) => Promise<UplinkSource>
  startInterceptor?: (config: Config, log: Logger, onConnection: OnLanConnection, onRefused: RefusedHandler,
    journal: JournalRecorder) => Promise<InterceptorLike>
  dial?: DialFn
  pathSampleMs?: number
  clock?: () => number
}

/** What the agent uses of an Interceptor. */
export interface InterceptorLike {
  readonly listening: boolean
  readonly tableInstalled: boolean
  updateRuleset: (config: { intercept: Config['intercept'], concentrator: { host: string }, udp?: Config['udp'] }) => Promise<void>
  stopAccepting: () => void
  stop: () => Promise<void>
  on: (event: 'holderExit', fn: () => void) => unknown
}

/** The per-connection object of each mode, as the admission tracks it (drain, shedding). */
export type LanUpstream = Socks5Upstream | TransparentUpstream | ConvertUpstream

/** Built once in createCpe; live for the agent's whole life. */
export interface CpeServices {
  readonly deps: CpeDeps
  /** The agent's own logger (component `cpe`). */
  readonly log: Logger
  readonly now: () => number
  readonly startedAt: number
  readonly registry: Registry
  readonly metrics: CpeMetrics
  readonly sessions: CpeSessionTable
  readonly pathMonitor: PathMonitor
  readonly health: PathHealth | undefined
  readonly pipelining: PipeliningMemory
  readonly converterMemory: ConverterMemory
  readonly redials: PendingDials
  /** Who moves the relayed bytes (docs/data-plane.md). */
  readonly dataPlane: DataPlane
  readonly overload: OverloadManager
  readonly admission: Admission<LanUpstream>
}

/** Filled in by the start parts, swapped (config, upstream) by a reload, emptied by stop. */
export interface CpeState {
  /** The configuration connections read now; a reload replaces it. */
  config: Config
  /** The configuration the agent started with (restart-only keys). */
  readonly initial: Config
  upstream: EffectiveUpstream | undefined
  caps: ConnectionCaps | undefined
  uplinks: UplinkSource | undefined
  interceptor: InterceptorLike | undefined
  failover: FailoverController | undefined
  steering: SteeringController | undefined
  /** LAN UDP over CONNECT-UDP (udp.enabled; docs/udp.md). */
  udp: UdpAgent | undefined
  /** What start changes in the namespace, on disk (crash-journal.ts). */
  journal: CrashJournal | undefined
  started: boolean
}

export function initialState (config: Config): CpeState {
  return {
    config,
    initial: config,
    upstream: undefined,
    caps: undefined,
    uplinks: undefined,
    interceptor: undefined,
    failover: undefined,
    steering: undefined,
    udp: undefined,
    journal: undefined,
    started: false
  }
}
