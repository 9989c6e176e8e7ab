/**
 * Composition root of the concentrator: listeners → caps → SOCKS5 connections → policy → egress →
 * relay, plus metrics and the management API. `createConcentrator(config, deps)` returns a
 * service with idempotent `start()` / `stop()` and `reload(config)`; main.ts owns the process.
 *
 * start(): the parts of concentrator-parts.ts in order — the kernel profile (`kernel.*`, sysctls
 * saved and set) first, then runtime, listeners, transparent mode, probe responder, management; a
 * failing start undoes all of it (profile restored). The services are built in
 * concentrator-services.ts, the accept path is accept/accept-connection.ts.
 * stop(): readiness off → stop accepting (MPTCP listeners stay open so draining connections keep
 * their MP_JOINs) → drain ≤ limits.drainTimeoutMs → destroy the rest (reason 'drain') → close
 * listeners, management server and resolver → restore the kernel profile.
 * reload(config): concentrator-reload.ts.
 */
import type { Registry } from 'prom-client'
import type { MgmtApp } from '../../shared/src/mgmt/mgmt-server.ts'
import { StartStop } from '../../shared/src/daemon/start-stop.ts'
import type { ConcentratorConfig } from './config/config.ts'
import { concentratorParts } from './concentrator-parts.ts'
import { concentratorReloader } from './concentrator-reload.ts'
import { createServices } from './concentrator-services.ts'
import { initialState, type ConcentratorDeps } from './concentrator-state.ts'
import type { ConcentratorMetrics } from './metrics.ts'
import { buildConcentratorMgmt } from './mgmt/concentrator-mgmt.ts'
import type { SessionTable } from './mgmt/session-table.ts'
import { concentratorReady, concentratorStatus, listenerStatus, type ListenerStatus } from './mgmt/status.ts'
import type { ConcentratorStatus } from './mgmt/status-schema.ts'

export type { ConcentratorDeps } from './concentrator-state.ts'
export type { ListenerStatus } from './mgmt/status.ts'

export interface Concentrator {
  start: () => Promise<void>
  stop: () => Promise<void>
  reload: (config: ConcentratorConfig) => Promise<void>
  /** A reload refused before reaching `reload()` (file did not validate): counted as a failure. */
  reloadFailed: (err: unknown) => void
  readonly mgmt: MgmtApp
  readonly registry: Registry
  readonly metrics: ConcentratorMetrics
  readonly sessions: SessionTable
  listeners: () => ListenerStatus[]
  ready: () => boolean
  status: () => ConcentratorStatus
  /** Connections open (handshake or relay). */
  activeConnections: () => number
}

export function createConcentrator (initial: ConcentratorConfig, deps: ConcentratorDeps): Concentrator {
  const state = initialState(initial)
  const s = createServices(state, deps)
  const { log, admission, listeners } = s
  const reloader = concentratorReloader(s, state)
  const mgmt = buildConcentratorMgmt(s, state, reloader.reload)
  const parts = new StartStop(log)
  let startPromise: Promise<void> | undefined
  let stopPromise: Promise<void> | undefined

  const doStart = async (): Promise<void> => {
    await parts.start(concentratorParts(s, state, mgmt))
    log.info({ maxConnections: s.current().limits.maxConnections, listeners: listenerStatus(s) }, 'concentrator ready')
  }
  const doStop = async (): Promise<void> => {
    admission.stopAdmitting() // synchronously: readiness is false from the moment stop() is called
    s.processMetrics?.workersUp.set(0)
    listeners.setAccepting(false)
    if (startPromise !== undefined) await startPromise.catch(() => {})
    const { drainTimeoutMs } = state.config.limits
    log.info({ active: admission.size, drainTimeoutMs }, 'draining')
    // Transparent mode's listeners and nft rules stay until its connections are gone (their MP_JOINs).
    await admission.drain(drainTimeoutMs)
    await parts.stop()
    log.info('concentrator stopped')
  }

  return {
    start: async () => { state.starting = true; startPromise ??= doStart(); await startPromise },
    stop: async () => { stopPromise ??= doStop(); await stopPromise },
    ...reloader,
    mgmt,
    registry: s.registry,
    metrics: s.metrics,
    sessions: s.sessions,
    listeners: () => listenerStatus(s),
    ready: () => concentratorReady(s, state),
    status: () => concentratorStatus(s, state),
    activeConnections: () => admission.size
  }
}
