/**
 * UDP flow metrics (docs/udp.md), one set for both daemons: the CPE counts the flows it carries
 * from the LAN, the concentrator those it proxies. Label values are closed sets.
 */
import type { Registry } from 'prom-client'
import { createCounter, createPlainCounter, createPlainGauge, metricSpec } from './metric-spec.ts'
import type { MetricSpec } from './metric-spec.ts'

export const UdpDirection = ['up', 'down'] as const
/** Why a flow ended: idle timeout, refused by the far end or a cap, its stream closed, the daemon stopped. */
export const UdpEndReason = ['idle', 'refused', 'closed', 'stopped'] as const
export type UdpEndReason = (typeof UdpEndReason)[number]
/** Why a new flow was refused. */
export const UdpRefusal = ['global_cap', 'source_cap', 'policy', 'auth', 'unavailable', 'upstream_error', 'malformed'] as const
export type UdpRefusal = (typeof UdpRefusal)[number]
/** Why a datagram was dropped. */
export const UdpDrop = [
  'malformed', 'fragment', 'queue_full', 'backpressure', 'flow_refused', 'cap', 'oversized', 'unknown_context', 'unknown_capsule', 'send_error'
] as const
export type UdpDrop = (typeof UdpDrop)[number]

export const udpMetricSpecs = {
  udpFlowsActive: metricSpec({
    name: 'hybrid_udp_flows_active',
    type: 'gauge',
    unit: 'flows',
    help: 'UDP flows (5-tuples) open now.',
    labels: {}
  }),
  udpFlowsCreated: metricSpec({
    name: 'hybrid_udp_flows_created_total',
    type: 'counter',
    unit: 'flows',
    help: 'UDP flows created (the first datagram of a 5-tuple that was admitted).',
    labels: {}
  }),
  udpFlowsEnded: metricSpec({
    name: 'hybrid_udp_flows_ended_total',
    type: 'counter',
    unit: 'flows',
    help: 'UDP flows ended, by reason: idle timeout, refused (cap, policy, authorisation, far end unavailable), their stream closed, the daemon stopped.',
    labels: { reason: UdpEndReason }
  }),
  udpFlowsRefused: metricSpec({
    name: 'hybrid_udp_flows_refused_total',
    type: 'counter',
    unit: 'flows',
    help: 'New UDP flows refused, by reason: flow caps, destination policy (403), authorisation (407), concentrator unavailable, another upstream error status, a malformed request.',
    labels: { reason: UdpRefusal }
  }),
  udpDatagrams: metricSpec({
    name: 'hybrid_udp_datagrams_total',
    type: 'counter',
    unit: 'datagrams',
    help: 'UDP datagrams carried: up = towards the destination, down = back to the client.',
    labels: { direction: UdpDirection }
  }),
  udpBytes: metricSpec({
    name: 'hybrid_udp_bytes_total',
    type: 'counter',
    unit: 'bytes',
    help: 'UDP payload bytes carried (no IP/UDP headers, no capsule framing), by direction.',
    labels: { direction: UdpDirection }
  }),
  udpDropped: metricSpec({
    name: 'hybrid_udp_datagrams_dropped_total',
    type: 'counter',
    unit: 'datagrams',
    help: 'UDP datagrams dropped, by reason: malformed packet, IP fragment, open queue full, stream backpressure, flow refused, flow cap, oversized, unknown context ID or capsule type, send error (the concentrator\'s UDP socket refused it, or ICMP unreachable).',
    labels: { reason: UdpDrop }
  })
} as const

export const udpMetricSpecList: readonly MetricSpec[] = Object.values(udpMetricSpecs)

export function createUdpMetrics (registry: Registry) {
  const s = udpMetricSpecs
  return {
    udpFlowsActive: createPlainGauge(registry, s.udpFlowsActive),
    udpFlowsCreated: createPlainCounter(registry, s.udpFlowsCreated),
    udpFlowsEnded: createCounter(registry, s.udpFlowsEnded),
    udpFlowsRefused: createCounter(registry, s.udpFlowsRefused),
    udpDatagrams: createCounter(registry, s.udpDatagrams),
    udpBytes: createCounter(registry, s.udpBytes),
    udpDropped: createCounter(registry, s.udpDropped)
  }
}

export type UdpMetrics = ReturnType<typeof createUdpMetrics>
