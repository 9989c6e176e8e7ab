/**
 * Feeds the relay's events into the common data-plane metrics: backpressure pauses by side and the
 * number of half-closed relays. One hooks object per registry, shared by every connection (no
 * closures per connection).
 */
import type { RelayOptions } from '../net/relay.ts'
import type { CommonMetrics } from './common-metrics.ts'

export type RelayMetricHooks = Required<Pick<RelayOptions, 'onBackpressure' | 'onHalfClose' | 'onHalfCloseEnd'>>

/** The two metrics the hooks feed (any CommonMetrics, whatever its path labels). */
export type RelayMetricSink = Pick<CommonMetrics, 'backpressurePauses' | 'halfClosedConnections'>

const cache = new WeakMap<RelayMetricSink, RelayMetricHooks>()

export function relayMetricHooks (m: RelayMetricSink): RelayMetricHooks {
  let hooks = cache.get(m)
  if (hooks === undefined) {
    hooks = {
      onBackpressure: (side) => { m.backpressurePauses.inc({ side }) },
      onHalfClose: () => { m.halfClosedConnections.inc() },
      onHalfCloseEnd: () => { m.halfClosedConnections.dec() }
    }
    cache.set(m, hooks)
  }
  return hooks
}
