/**
 * reload(config): refused when a start-only key changed (config/reload-plan.ts); else build the new
 * runtime first (policy, credentials, prefixes; failure keeps the old one), swap it, apply caps,
 * re-bind only the listeners that changed. Established relays are never touched; handshakes in
 * progress finish with the runtime they started with.
 */
import type { ConcentratorConfig } from './config/config.ts'
import { checkReload } from './config/reload-plan.ts'
import { buildRuntime } from './build-runtime.ts'
import { capLimits, checkConfig } from './concentrator-services.ts'
import type { ConcentratorServices, ConcentratorState } from './concentrator-state.ts'
import { listenerStatus } from './mgmt/status.ts'
import type { Runtime } from './runtime.ts'

export interface Reloader {
  reload: (config: ConcentratorConfig) => Promise<void>
  reloadFailed: (err: unknown) => void
}

export function updateListenerGauge (s: ConcentratorServices): void {
  for (const protocol of ['mptcp', 'tcp'] as const) {
    s.metrics.listenersBound.set({ protocol }, s.listeners.listeners.filter((l) => l.protocol === protocol).length)
  }
}

export function concentratorReloader (s: ConcentratorServices, state: ConcentratorState): Reloader {
  const { metrics, log } = s
  const reloadFailed = (err: unknown): void => {
    metrics.configReloads.inc({ result: 'failure' })
    log.error({ err }, 'reload refused; keeping the previous configuration')
  }
  /** The old policy's lookups may still be answering requests in flight: close it later. */
  const retire = (old: Runtime, next: ConcentratorConfig): void => {
    if (old.policy !== state.runtime?.policy) setTimeout(() => { old.policy.close() }, next.policy.dns.deadlineMs + 1000).unref()
  }
  const apply = async (next: ConcentratorConfig): Promise<Runtime> => {
    checkReload(state.config, next)
    checkConfig(next)
    const built = await buildRuntime(next, s.runtimeDeps, state.runtime)
    const old = state.runtime
    state.runtime = built
    state.config = next
    s.converter.update(next.convert)
    s.overload.update(next.overload)
    state.caps?.setLimits(capLimits(built))
    metrics.connectionsMax.set(built.limits.maxConnections)
    s.deps.log.level = next.log.level
    if (old !== undefined) retire(old, next)
    await s.listeners.reconcile(next.listeners)
    updateListenerGauge(s)
    return built
  }
  const reload = async (next: ConcentratorConfig): Promise<void> => {
    let built: Runtime
    try {
      built = await apply(next)
    } catch (err) {
      reloadFailed(err)
      throw err
    }
    metrics.configReloads.inc({ result: 'success' })
    metrics.configLastReloadSuccess.setToCurrentTime()
    log.info({ maxConnections: built.limits.maxConnections, listeners: listenerStatus(s) }, 'configuration reloaded')
  }
  return { reload, reloadFailed }
}
