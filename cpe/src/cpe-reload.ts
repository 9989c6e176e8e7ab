/**
 * reload(config): checked by planReload (restart-only keys refuse the whole reload), then the new
 * settings are swapped in for later connections, the ruleset replaced atomically if bypass lists,
 * LAN interfaces or the concentrator changed, and the multipath mode switched. Established relays
 * are never touched. A refusal keeps the previous configuration and is counted.
 */
import { effectiveMaxConnections } from '../../shared/src/net/connection-caps.ts'
import type { Config, CpeConfig } from './config/config.ts'
import { checkConcentratorPath } from './concentrator-checks.ts'
import { checkMode } from './cpe-parts.ts'
import type { CpeServices, CpeState } from './cpe-state.ts'
import { planReload } from './config/reload-plan.ts'

export interface Reloader {
  reload: (config: CpeConfig) => Promise<void>
  reloadFailed: (err: unknown) => void
}

/** The frozen configuration is never mutated; the components take the schema's (mutable) types. */
export const asConfig = (c: CpeConfig): Config => c as Config

export function cpeReloader (s: CpeServices, state: CpeState): Reloader {
  const { metrics, log } = s
  const reloadFailed = (err: unknown): void => {
    metrics.configReloads.inc({ result: 'failure' })
    log.error({ err }, 'reload refused; keeping the previous configuration')
  }
  const apply = async (next: Config): Promise<void> => {
    checkMode(next)
    const plan = planReload(state.config, next)
    const nextUpstream = checkConcentratorPath(next, log)
    if (plan.rulesetChanged && state.interceptor !== undefined) {
      await state.interceptor.updateRuleset({ intercept: next.intercept, concentrator: { host: next.concentrator.host }, udp: next.udp })
    }
    if (plan.modeChanged && state.uplinks !== undefined) await state.uplinks.setMode(next.multipath.mode)
    state.config = next
    state.upstream = nextUpstream
    state.caps?.setLimits({
      maxConnections: effectiveMaxConnections(next.limits.maxConnections),
      perSourceMaxConnections: next.limits.perSourceMaxConnections
    })
    s.overload.update(next.overload)
    s.deps.log.level = next.log.level
  }
  const reload = async (frozenNext: CpeConfig): Promise<void> => {
    try {
      await apply(asConfig(frozenNext))
    } catch (err) {
      reloadFailed(err)
      throw err
    }
    metrics.configReloads.inc({ result: 'success' })
    metrics.configLastReloadSuccess.setToCurrentTime()
    log.info('configuration reloaded')
  }
  return { reload, reloadFailed }
}
