/**
 * Metrics of the CONNECT-UDP proxy (docs/udp-wire.md): flows, datagrams and bytes per direction,
 * drops and refusals by reason. `up` is client → target, `down` target → client. Every label
 * value is from the closed sets below, never from the network.
 */
import type { Registry } from 'prom-client'
import { createCounter, createPlainCounter, createPlainGauge, metricSpec } from '../../../shared/src/metrics/metric-spec.ts'
import { RefusalReason } from '../policy/refusal.ts'

export const UdpDirection = ['up', 'down'] as const
export type UdpDirection = (typeof UdpDirection)[number]

/** Why a flow ended (one end path: udp-flow.ts). */
export const UdpFlowEndReason = ['idle_timeout', 'client_closed', 'stream_reset', 'capsule_fault', 'socket_error', 'shutdown'] as const
export type UdpFlowEndReason = (typeof UdpFlowEndReason)[number]

/** Why a datagram (or a capsule that is no datagram) was not relayed. */
export const UdpDropReason = ['oversized', 'unknown_context', 'unknown_capsule', 'malformed', 'backpressure', 'send_error'] as const
export type UdpDropReason = (typeof UdpDropReason)[number]

/** Why a CONNECT-UDP request got no flow: request checks, authorisation, caps, the policy's reasons, the socket. */
export const UdpRefusalReason = [
  'bad_request', 'not_found', 'method_not_allowed', 'auth_required', 'not_trusted', 'max_flows', 'subscriber_max_flows',
  ...Object.values(RefusalReason), 'socket_error'
] as const
export type UdpRefusalReason = (typeof UdpRefusalReason)[number]

export const udpMetricSpecs = {
  udpFlowsActive: metricSpec({ name: 'hybrid_udp_flows_active', type: 'gauge', unit: 'flows', help: 'CONNECT-UDP flows open (one UDP socket each).', labels: {} }),
  udpFlowsCreated: metricSpec({ name: 'hybrid_udp_flows_created_total', type: 'counter', unit: 'flows', help: 'CONNECT-UDP flows opened (answered 200).', labels: {} }),
  udpFlowsEnded: metricSpec({
    name: 'hybrid_udp_flows_ended_total',
    type: 'counter',
    unit: 'flows',
    help: 'CONNECT-UDP flows ended, by reason (idle timeout, client closed its stream, stream reset, capsule fault, UDP socket error, shutdown).',
    labels: { reason: UdpFlowEndReason }
  }),
  udpRequestsRefused: metricSpec({
    name: 'hybrid_udp_requests_refused_total',
    type: 'counter',
    unit: 'requests',
    help: 'CONNECT-UDP requests refused, by reason: request checks (400/404/405), authorisation (407/403), caps (503/429), the destination policy\'s reasons (403, DNS 502/504/503), socket (503).',
    labels: { reason: UdpRefusalReason }
  }),
  udpDatagrams: metricSpec({
    name: 'hybrid_udp_datagrams_total',
    type: 'counter',
    unit: 'datagrams',
    help: 'UDP datagrams relayed by the CONNECT-UDP proxy, by direction (up: client to target).',
    labels: { direction: UdpDirection }
  }),
  udpBytes: metricSpec({
    name: 'hybrid_udp_bytes_total',
    type: 'counter',
    unit: 'bytes',
    help: 'UDP payload bytes relayed by the CONNECT-UDP proxy, by direction (up: client to target).',
    labels: { direction: UdpDirection }
  }),
  udpDropped: metricSpec({
    name: 'hybrid_udp_datagrams_dropped_total',
    type: 'counter',
    unit: 'datagrams',
    help: 'Datagrams and capsules the CONNECT-UDP proxy dropped, by direction and reason (oversized, unknown context ID, unknown capsule type, malformed, backpressure, send error).',
    labels: { direction: UdpDirection, reason: UdpDropReason }
  })
} as const

export function createUdpMetrics (registry: Registry) {
  const s = udpMetricSpecs
  return {
    udpFlowsActive: createPlainGauge(registry, s.udpFlowsActive),
    udpFlowsCreated: createPlainCounter(registry, s.udpFlowsCreated),
    udpFlowsEnded: createCounter(registry, s.udpFlowsEnded),
    udpRequestsRefused: createCounter(registry, s.udpRequestsRefused),
    udpDatagrams: createCounter(registry, s.udpDatagrams),
    udpBytes: createCounter(registry, s.udpBytes),
    udpDropped: createCounter(registry, s.udpDropped)
  }
}

export type UdpMetrics = ReturnType<typeof createUdpMetrics>
