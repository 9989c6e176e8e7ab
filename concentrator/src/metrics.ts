/**
 * The concentrator's metrics: the common set (shared/src/metrics), the kernel MPTCP MIB and the
 * concentrator-only metrics (docs/metrics.md). One registry per daemon instance; label
 * values come from the closed sets below, never from the network.
 */
import type { Registry } from 'prom-client'
import { createCommonMetrics, LatencyBuckets } from '../../shared/src/metrics/common-metrics.ts'
import { registerKernelMib } from '../../shared/src/metrics/kernel-mib.ts'
import {
  createCounter, createGauge, createHistogram, createPlainCounter, createPlainGauge,
  metricSpec
} from '../../shared/src/metrics/metric-spec.ts'
import type { MetricSpec } from '../../shared/src/metrics/metric-spec.ts'
import type { DaemonMetricsReference } from '../../shared/src/metrics/metrics-reference.ts'
import { createRegistry } from '../../shared/src/metrics/registry.ts'
import { ProbeDropReason } from './probe/probe-gate.ts'
import { createUdpMetrics } from '../../shared/src/metrics/udp-metrics.ts'
import { udpProxyMetricSpecs } from './udp/udp-metrics.ts'

/** SOCKS5 REP values 0–8 (RFC 1928 §6) as label values. */
export const Socks5RepLabel = ['0', '1', '2', '3', '4', '5', '6', '7', '8'] as const
export type Socks5RepLabel = (typeof Socks5RepLabel)[number]

export const AuthMethodLabel = ['none', 'userpass', 'cookie'] as const
export type AuthMethodLabel = (typeof AuthMethodLabel)[number]

/** `throttled`: refused without checking because the source is in back-off. */
export const AuthResultLabel = ['success', 'failure', 'throttled'] as const
export type AuthResultLabel = (typeof AuthResultLabel)[number]

export const DnsResultLabel = ['ok', 'nxdomain', 'timeout', 'error'] as const
export type DnsResultLabel = (typeof DnsResultLabel)[number]

export const concentratorMetricSpecs = {
  socks5Replies: metricSpec({
    name: 'hybrid_socks5_replies_total',
    type: 'counter',
    unit: 'replies',
    help: 'SOCKS5 CONNECT replies sent, by REP code (0 succeeded … 8 address type not supported).',
    labels: { rep: Socks5RepLabel }
  }),
  authAttempts: metricSpec({
    name: 'hybrid_auth_attempts_total',
    type: 'counter',
    unit: 'attempts',
    help: 'Client authorisations: none (trusted source prefix) or RFC 1929 username/password, by result.',
    labels: { method: AuthMethodLabel, result: AuthResultLabel }
  }),
  dnsLookupDuration: metricSpec({
    name: 'hybrid_dns_lookup_duration_seconds',
    type: 'histogram',
    unit: 'seconds',
    help: 'Destination name lookups that reached DNS (cache hits excluded), by result.',
    labels: { result: DnsResultLabel },
    buckets: LatencyBuckets
  }),
  sourcesThrottled: metricSpec({
    name: 'hybrid_sources_throttled',
    type: 'gauge',
    unit: 'sources',
    help: 'Source addresses currently in authentication back-off.',
    labels: {}
  }),
  connectionsMax: metricSpec({
    name: 'hybrid_connections_max',
    type: 'gauge',
    unit: 'connections',
    help: 'Configured (or fd-limit derived) cap on concurrent connections over all listeners.',
    labels: {}
  }),
  probesAnswered: metricSpec({
    name: 'hybrid_probe_replies_total',
    type: 'counter',
    unit: 'probes',
    help: 'Path-health probes answered by the UDP probe responder (docs/path-health.md).',
    labels: {}
  }),
  probesDropped: metricSpec({
    name: 'hybrid_probe_dropped_total',
    type: 'counter',
    unit: 'probes',
    help: 'Datagrams the probe responder dropped unanswered, by reason (untrusted source, oversized, malformed, not a request, per-source rate limit).',
    labels: { reason: ProbeDropReason }
  }),
  listenersBound: metricSpec({
    name: 'hybrid_listeners_bound',
    type: 'gauge',
    unit: 'listeners',
    help: 'Proxy listeners currently bound, by socket protocol actually in use.',
    labels: { protocol: ['mptcp', 'tcp'] }
  }),
  ...udpProxyMetricSpecs
} as const

/** Specs for docs/metrics.md (scripts/metrics-reference.mjs). */
export const concentratorMetricSpecList: readonly MetricSpec[] = Object.values(concentratorMetricSpecs)

/** Registers only the concentrator-specific metrics (the common ones are created by the caller). */
function createOwnMetrics (registry: Registry) {
  const s = concentratorMetricSpecs
  return {
    socks5Replies: createCounter(registry, s.socks5Replies),
    authAttempts: createCounter(registry, s.authAttempts),
    dnsLookupDuration: createHistogram(registry, s.dnsLookupDuration),
    sourcesThrottled: createPlainGauge(registry, s.sourcesThrottled),
    connectionsMax: createPlainGauge(registry, s.connectionsMax),
    listenersBound: createGauge(registry, s.listenersBound),
    probesAnswered: createPlainCounter(registry, s.probesAnswered),
    probesDropped: createCounter(registry, s.probesDropped),
    udpPolicyRefusals: createCounter(registry, s.udpPolicyRefusals)
  }
}

/** Input of docs/metrics.md: the concentrator's section (see shared/src/metrics/metrics-reference.ts). */
export const concentratorMetricsReference: DaemonMetricsReference = {
  register: (registry) => { createOwnMetrics(registry) },
  section: {
    title: 'Concentrator metrics',
    intro: 'Created by `createConcentratorMetrics(registry)` (concentrator/src/metrics.ts) next to the common metrics and the kernel MIB. The CONNECT-UDP proxy also exports the UDP set both daemons share (`hybrid_udp_*`, shared/src/metrics/udp-metrics.ts), listed once, in the CPE section below.',
    specs: concentratorMetricSpecList
  }
}

export function createConcentratorMetrics (registry: Registry, options: { kernelMib?: boolean } = {}) {
  const common = createCommonMetrics(registry)
  if (options.kernelMib !== false) registerKernelMib(registry)
  return { ...common, ...createOwnMetrics(registry), ...createUdpMetrics(registry) }
}

export type ConcentratorMetrics = ReturnType<typeof createConcentratorMetrics>

/** A registry with build info, default process metrics and every concentrator metric. */
export function createConcentratorRegistry (version: string, commit: string,
  defaultMetrics = true): { registry: Registry, metrics: ConcentratorMetrics } {
  const registry = createRegistry({ daemon: 'concentrator', version, commit, defaultMetrics })
  return { registry, metrics: createConcentratorMetrics(registry) }
}

export function repLabel (rep: number): Socks5RepLabel {
  return Socks5RepLabel[rep] ?? '1'
}
