/**
 * What the concentrator's modules share: the dependencies a caller (main.ts, a worker, tests)
 * injects, the long-lived services built once (concentrator-services.ts) and the state the start
 * parts (concentrator-parts.ts) fill in and a reload (concentrator-reload.ts) swaps. One object
 * each, passed explicitly: no module-level state.
 */
import type { Registry } from 'prom-client'
import type { Logger } from '../../shared/src/log.ts'
import type { CommandRunner } from '../../shared/src/sys/command.ts'
import type { ConnectionCaps } from '../../shared/src/net/connection-caps.ts'
import type { OverloadManager } from '../../shared/src/daemon/overload.ts'
import type { Admission } from '../../shared/src/daemon/admission.ts'
import type { DataPlane } from '../../shared/src/net/data-plane.ts'
import type { AddressMembership, HostAddresses } from '../../shared/src/net/host-addresses.ts'
import type { RateLimitedLog } from '../../shared/src/rate-limited-log.ts'
import type { ListenerSet } from './accept/listener-set.ts'
import type { BuildRuntimeDeps } from './build-runtime.ts'
import type { ConcentratorConfig } from './config/config.ts'
import type { MachineSetup } from './machine-setup.ts'
import type { ConcentratorMetrics } from './metrics.ts'
import type { SessionTable } from './mgmt/session-table.ts'
import type { ConvertConnection } from './modes/convert.ts'
import type { ConverterState } from './modes/convert-state.ts'
import type { ConnectionDeps, Socks5Connection } from './modes/socks5.ts'
import type { TransparentConnection } from './modes/transparent-connection.ts'
import type { TransparentMode } from './modes/transparent-mode.ts'
import type { ProbeResponder } from './probe/probe-responder.ts'
import type { Runtime } from './runtime.ts'
import type { SupervisorMetrics } from './workers/supervisor-metrics.ts'

export interface ConcentratorDeps {
  log: Logger
  /** The daemon's registry; metrics are registered on it. Default: a new one with default metrics. */
  registry?: Registry
  clock?: () => number
  version?: string
  commit?: string
  /** Bind the management server on `management.listen` (default true; tests use `mgmt.inject()`). */
  listenManagement?: boolean
  /** POST /api/v1/reload: re-read + validate the file, then `reload()` (runDaemonCli supplies it). */
  requestReload?: () => Promise<void>
  /** Export the kernel MPTCP MIB (default true). */
  kernelMib?: boolean
  resolver?: BuildRuntimeDeps['resolver']
  openFilesLimit?: () => number
  /** Runner of the `sysctl` commands of the kernel profile (`kernel.*`). Default runCommand. */
  run?: CommandRunner
  /** Tests: the host's addresses; default HostAddresses (read and watched) when `policy.hostAddresses.refuse`. */
  hostAddresses?: AddressMembership
  /**
   * Set in a worker of a supervisor (`workers` > 1, workers/worker.ts): the listeners are bound with
   * SO_REUSEPORT, and the machine-wide parts (crash journal, kernel profile, join endpoints) are left
   * to the supervisor; the probe responder runs in worker 0 only (one UDP socket per address).
   */
  worker?: { index: number }
}

/** Every accept path's connection object, as the admission tracks it (drain, shedding). */
export type ConcentratorConnection = Socks5Connection | ConvertConnection | TransparentConnection

/** Built once in createConcentrator; live for the daemon's whole life. */
export interface ConcentratorServices {
  readonly deps: ConcentratorDeps
  /** The daemon's own logger (component `concentrator`). */
  readonly log: Logger
  /** The connections' base logger (component `socks5`, the name it always had). */
  readonly connLog: Logger
  readonly now: () => number
  readonly startedAt: number
  readonly registry: Registry
  readonly metrics: ConcentratorMetrics
  readonly sessions: SessionTable
  readonly dataPlane: DataPlane
  readonly errorLog: RateLimitedLog
  readonly converter: ConverterState
  /** Crash journal, kernel profile, join endpoints (machine-setup.ts): a worker leaves them to its supervisor. */
  readonly machine: MachineSetup
  readonly inWorker: boolean
  readonly runtimeDeps: BuildRuntimeDeps
  /** The runtime in force; throws before start. */
  readonly current: () => Runtime
  /** What every SOCKS5 / Convert connection gets. */
  readonly connDeps: ConnectionDeps
  readonly overload: OverloadManager
  readonly admission: Admission<ConcentratorConnection>
  readonly listeners: ListenerSet
  /** The workers series of a single process (1 worker), so the dashboards read alike; undefined in a worker. */
  readonly processMetrics: SupervisorMetrics | undefined
}

/** Filled in by the start parts, swapped (config, runtime) by a reload. */
export interface ConcentratorState {
  config: ConcentratorConfig
  readonly initial: ConcentratorConfig
  runtime: Runtime | undefined
  caps: ConnectionCaps | undefined
  /** Transparent mode (docs/transparent.md), when enabled. */
  transparent: TransparentMode | undefined
  /** UDP path-health responder (docs/path-health.md), read at start only. */
  probe: ProbeResponder | undefined
  /** Own addresses of the namespace (policy.hostAddresses). */
  hostAddresses: HostAddresses | undefined
  sweepTimer: NodeJS.Timeout | undefined
  /** start() was called (readiness needs it). */
  starting: boolean
}

export function initialState (config: ConcentratorConfig): ConcentratorState {
  return {
    config,
    initial: config,
    runtime: undefined,
    caps: undefined,
    transparent: undefined,
    probe: undefined,
    hostAddresses: undefined,
    sweepTimer: undefined,
    starting: false
  }
}
