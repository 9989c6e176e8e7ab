/**
 * Metrics of the CONNECT-UDP proxy (docs/udp-wire.md). The flow, datagram, byte, drop and refusal
 * series are the UDP set both daemons share (shared/src/metrics/udp-metrics.ts; `up` is client →
 * target); the proxy's finer reasons below map onto its labels, and the destination policy's
 * refusals are counted once more by policy reason (`hybrid_udp_policy_refusals_total`). Every
 * label value is from a closed set, never from the network.
 */
import type { Registry } from 'prom-client'
import { createUdpMetrics, type UdpEndReason, type UdpRefusal } from '../../../shared/src/metrics/udp-metrics.ts'
import { createCounter, metricSpec } from '../../../shared/src/metrics/metric-spec.ts'
import { RefusalReason } from '../policy/refusal.ts'

/** Why a flow ended (one end path: udp-flow.ts); logged, and counted as its `UdpEndReason`. */
export const UdpFlowEndReason = ['idle_timeout', 'client_closed', 'stream_reset', 'capsule_fault', 'socket_error', 'shutdown'] as const
export type UdpFlowEndReason = (typeof UdpFlowEndReason)[number]

/** Why a CONNECT-UDP request got no flow: request checks, authorisation, caps, the policy's reasons, the socket. */
export const UdpRefusalReason = [
  'bad_request', 'not_found', 'method_not_allowed', 'auth_required', 'not_trusted', 'max_flows', 'subscriber_max_flows',
  ...Object.values(RefusalReason), 'socket_error'
] as const
export type UdpRefusalReason = (typeof UdpRefusalReason)[number]

export function endLabel (r: UdpFlowEndReason): UdpEndReason {
  if (r === 'idle_timeout') return 'idle'
  return r === 'shutdown' ? 'stopped' : 'closed'
}

const RefusalLabel: Readonly<Record<UdpRefusalReason, UdpRefusal>> = {
  bad_request: 'malformed',
  not_found: 'malformed',
  method_not_allowed: 'malformed',
  auth_required: 'auth',
  not_trusted: 'auth',
  max_flows: 'global_cap',
  subscriber_max_flows: 'source_cap',
  invalid_destination: 'policy',
  ssrf_blocked: 'policy',
  acl_denied: 'policy',
  port_denied: 'policy',
  dns_failed: 'policy',
  dns_timeout: 'policy',
  dns_busy: 'policy',
  socket_error: 'unavailable'
}

export function refusalLabel (r: UdpRefusalReason): UdpRefusal {
  return RefusalLabel[r]
}

export function isPolicyRefusal (r: UdpRefusalReason): r is RefusalReason {
  return (Object.values(RefusalReason) as string[]).includes(r)
}

export const udpProxyMetricSpecs = {
  udpPolicyRefusals: metricSpec({
    name: 'hybrid_udp_policy_refusals_total',
    type: 'counter',
    unit: 'requests',
    help: 'CONNECT-UDP requests the destination policy refused, by policy reason (403; DNS failures 502/504/503); also in hybrid_udp_flows_refused_total{reason="policy"}.',
    labels: { reason: Object.values(RefusalReason) }
  })
} as const

/** The shared UDP set plus the proxy's own counter (tests; the daemon gets them from createConcentratorMetrics). */
export function createUdpProxyMetrics (registry: Registry) {
  return {
    ...createUdpMetrics(registry),
    udpPolicyRefusals: createCounter(registry, udpProxyMetricSpecs.udpPolicyRefusals)
  }
}

export type UdpProxyMetrics = ReturnType<typeof createUdpProxyMetrics>
