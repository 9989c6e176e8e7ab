/**
 * Feeds the relay into the common data-plane metrics: while it runs, backpressure pauses by side and
 * the number of half-closed relays (one hooks object per registry, shared by every connection, no
 * closures per connection); when it ends, the close reason, duration and bytes by side
 * (`countRelayEnd`, the same for every signalling mode in both daemons).
 */
import type { RelayEndReason, RelayOptions } from '../net/relay.ts'
import type { CommonMetrics } from './common-metrics.ts'
import type { Mode } from './labels.ts'

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

/** The metrics a finished relay updates (any CommonMetrics, whatever its path labels). */
export type RelayEndSink = Pick<CommonMetrics, 'connectionsClosed' | 'connectionDuration' | 'bytesReceived' | 'bytesSent'>

export interface RelayEndCounts {
  reason: RelayEndReason
  durationMs: number
  /** Client → server bytes (read from the client leg, written to the server leg). */
  bytesUp: number
  /** Server → client bytes. */
  bytesDown: number
}

/** Count one finished relay: close reason, lifetime, and bytes read and written on each leg. */
export function countRelayEnd (m: RelayEndSink, mode: Mode, r: RelayEndCounts): void {
  m.connectionsClosed.inc({ mode, reason: r.reason })
  m.connectionDuration.observe({ mode }, r.durationMs / 1000)
  m.bytesReceived.inc({ mode, side: 'client' }, r.bytesUp)
  m.bytesSent.inc({ mode, side: 'server' }, r.bytesUp)
  m.bytesReceived.inc({ mode, side: 'server' }, r.bytesDown)
  m.bytesSent.inc({ mode, side: 'client' }, r.bytesDown)
}
