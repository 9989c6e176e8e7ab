/**
 * What a reload may change in a running concentrator (pure). Applied in place (concentrator.ts):
 * log level, limits, auth, policy, convert, listeners (changed ones re-bound). Read at start only:
 * `management`, `mptcp`, `transparent`, `join`, `probe`, `kernel`, `stateDir`, `dataPlane`, `workers`, `udp`
 * and `policy.hostAddresses.refuse` — a reload that changes one of them is refused as a whole with
 * HYBRID_ERR_CONFIG_INVALID naming the first key that differs ("needs a restart"), and the running
 * configuration stays (the CPE's reload plan does the same: cpe/src/config/reload-plan.ts).
 */
import { firstStartOnlyChange, refuseStartOnlyChange, type StartOnlyKeys } from '../../../shared/src/config/start-only.ts'
import type { ConcentratorConfig } from './config.ts'

const FIXED: StartOnlyKeys<ConcentratorConfig> = [
  ['management', (c) => c.management],
  ['mptcp', (c) => c.mptcp],
  ['transparent', (c) => c.transparent],
  ['join', (c) => c.join],
  ['probe', (c) => c.probe],
  ['kernel', (c) => c.kernel],
  ['stateDir', (c) => c.stateDir],
  ['dataPlane', (c) => c.dataPlane],
  // The supervisor forks the workers at start (concentrator/src/workers/supervisor.ts).
  ['workers', (c) => c.workers],
  ['udp', (c) => c.udp],
  // Whether the host's addresses are read and watched at all (the `except` list reloads).
  ['policy.hostAddresses.refuse', (c) => c.policy.hostAddresses.refuse]
]

/** The first start-only key that differs between the two configurations, if any. */
export function startOnlyChange (current: ConcentratorConfig, next: ConcentratorConfig): string | undefined {
  return firstStartOnlyChange(FIXED, current, next)
}

/** Throws ConfigError (detail.key) when `next` changes something only a restart can apply. */
export function checkReload (current: ConcentratorConfig, next: ConcentratorConfig): void {
  refuseStartOnlyChange(FIXED, current, next)
}
