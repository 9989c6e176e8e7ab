/**
 * Wiring of the steering controller into the agent (kept out of the composition root): builds its
 * options from the configuration, adapts path health, and hands failover the failback pulse.
 */
import { childFor, type Logger } from '../../../shared/src/log.ts'
import type { Config } from '../config/config.ts'
import type { PathHealth } from '../health/path-health.ts'
import type { CpeMetrics } from '../metrics.ts'
import type { UplinkSource } from '../paths/uplink-observer.ts'
import { uplinkSpecs } from '../uplink/uplink-plan.ts'
import { SteeringController, type SteeringHealth } from './steering-controller.ts'

function adaptHealth (h: PathHealth | undefined): SteeringHealth | undefined {
  if (h === undefined) return undefined
  return {
    isUp: (p) => h.isUp(p),
    rttMs: (p) => h.view(p)?.rttMs ?? undefined,
    on: (event, fn) => h.on(event, fn),
    off: (event, fn) => h.off(event, fn)
  }
}

/** Start the steering controller (always: with `steering.mode` unset it only serves the failback pulse and the API). */
export async function startSteering (config: Config, source: UplinkSource, health: PathHealth | undefined, metrics: CpeMetrics,
  log: Logger): Promise<SteeringController> {
  const specs = uplinkSpecs(config.uplinks, config.multipath)
  const uplinks = specs.map((u) => ({ name: u.name, interface: u.interface, table: u.table, primary: !u.endpoints }))
  const primary = specs.find((u) => !u.endpoints)
  return SteeringController.start({
    config: config.steering,
    uplinks,
    source,
    managed: config.multipath.rules === 'managed' ? { mode: config.multipath.mode } : undefined,
    health: adaptHealth(health),
    capabilities: { healthEnabled: health !== undefined, primaryIsDsl: primary?.role === 'dsl', others: specs.length - 1 },
    metrics,
    log: childFor(log, 'steering')
  })
}
