/**
 * Metrics both daemons export (docs/metrics.md, "Common metrics").
 * `createCommonMetrics(registry)` registers them on the daemon's own registry and returns a typed
 * object whose label arguments only accept the closed vocabularies of ./labels.ts.
 */
import type { Registry } from 'prom-client'
import { ConfigError } from '../errors.ts'
import {
  CloseReason, ConvertDirection, ConvertErrorLabel, FallbackReason, MgmtRefusalReason, Mode, OverloadAction, OverloadResource,
  RejectReason, ReloadResult, Side, UpstreamFailureReason
} from './labels.ts'
import {
  createCounter, createGauge, createHistogram, createPlainGauge, metricSpec
} from './metric-spec.ts'
import type { LabeledGauge, MetricSpec, PlainGauge } from './metric-spec.ts'

/** 1 ms – 10 s: handshakes and upstream connects. */
export const LatencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const
/** 1 s – 24 h: lifetime of a relayed connection. */
export const ConnectionDurationBuckets = [1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 43200, 86400] as const

const mode = { mode: Mode }

export const commonMetricSpecs = {
  configReloads: metricSpec({
    name: 'hybrid_config_reloads_total',
    type: 'counter',
    unit: 'reloads',
    help: 'Configuration reloads (SIGHUP or API) by result; a failed reload keeps the old configuration.',
    labels: { result: ReloadResult }
  }),
  configLastReloadSuccess: metricSpec({
    name: 'hybrid_config_last_reload_success_timestamp_seconds',
    type: 'gauge',
    unit: 'seconds since the Unix epoch',
    help: 'Time of the last successful configuration load or reload.',
    labels: {}
  }),
  connectionsAccepted: metricSpec({
    name: 'hybrid_connections_accepted_total',
    type: 'counter',
    unit: 'connections',
    help: 'Connections accepted on a proxy listener, by signalling mode.',
    labels: mode
  }),
  connectionsActive: metricSpec({
    name: 'hybrid_connections_active',
    type: 'gauge',
    unit: 'connections',
    help: 'Connections currently open (handshake or relay), by signalling mode.',
    labels: mode
  }),
  connectionsRejected: metricSpec({
    name: 'hybrid_connections_rejected_total',
    type: 'counter',
    unit: 'connections',
    help: 'Connections refused before relaying, by mode and reason.',
    labels: { mode: Mode, reason: RejectReason }
  }),
  connectionsClosed: metricSpec({
    name: 'hybrid_connections_closed_total',
    type: 'counter',
    unit: 'connections',
    help: 'Relayed connections that ended, by mode and reason. peer_timeout: a leg\'s peer vanished (keepalive or TCP_USER_TIMEOUT, or an MPTCP leg lost every subflow); overload: closed idle by the overload manager. Every reason but normal closes both legs with RST.',
    labels: { mode: Mode, reason: CloseReason }
  }),
  handshakeDuration: metricSpec({
    name: 'hybrid_handshake_duration_seconds',
    type: 'histogram',
    unit: 'seconds',
    help: 'Time from accept to the end of the signalling handshake (SOCKS5 or Convert reply sent).',
    labels: mode,
    buckets: LatencyBuckets
  }),
  upstreamConnectDuration: metricSpec({
    name: 'hybrid_upstream_connect_duration_seconds',
    type: 'histogram',
    unit: 'seconds',
    help: 'Time to connect to the next hop (concentrator or destination server).',
    labels: mode,
    buckets: LatencyBuckets
  }),
  upstreamConnectFailures: metricSpec({
    name: 'hybrid_upstream_connect_failures_total',
    type: 'counter',
    unit: 'connects',
    help: 'Failed connects to the next hop, by reason.',
    labels: { reason: UpstreamFailureReason }
  }),
  connectionDuration: metricSpec({
    name: 'hybrid_connection_duration_seconds',
    type: 'histogram',
    unit: 'seconds',
    help: 'Lifetime of relayed connections, observed on close.',
    labels: mode,
    buckets: ConnectionDurationBuckets
  }),
  bytesReceived: metricSpec({
    name: 'hybrid_bytes_received_total',
    type: 'counter',
    unit: 'bytes',
    help: 'Payload bytes read from a relay leg, by mode and side.',
    labels: { mode: Mode, side: Side }
  }),
  bytesSent: metricSpec({
    name: 'hybrid_bytes_sent_total',
    type: 'counter',
    unit: 'bytes',
    help: 'Payload bytes written to a relay leg, by mode and side.',
    labels: { mode: Mode, side: Side }
  }),
  bufferedBytes: metricSpec({
    name: 'hybrid_buffered_bytes',
    type: 'gauge',
    unit: 'bytes',
    help: 'Bytes queued in user space waiting for a slow leg, by the side they are written to.',
    labels: { side: Side }
  }),
  backpressurePauses: metricSpec({
    name: 'hybrid_backpressure_pauses_total',
    type: 'counter',
    unit: 'pauses',
    help: 'Times a relay paused reading because the side written to was full.',
    labels: { side: Side }
  }),
  halfClosedConnections: metricSpec({
    name: 'hybrid_half_closed_connections',
    type: 'gauge',
    unit: 'connections',
    help: 'Relayed connections with one direction finished (FIN seen) and the other still open.',
    labels: {}
  }),
  convertErrors: metricSpec({
    name: 'hybrid_convert_errors_total',
    type: 'counter',
    unit: 'messages',
    help: 'RFC 8803 Convert Error TLVs sent or received, by IANA code name.',
    labels: { direction: ConvertDirection, code: ConvertErrorLabel }
  }),
  overloadActive: metricSpec({
    name: 'hybrid_overload_active',
    type: 'gauge',
    unit: '1',
    help: 'Overload protection actions currently in force (1 active, 0 not); docs/overload.md.',
    labels: { action: OverloadAction }
  }),
  overloadActivations: metricSpec({
    name: 'hybrid_overload_activations_total',
    type: 'counter',
    unit: 'activations',
    help: 'Times an overload action started (catches actions shorter than a scrape interval).',
    labels: { action: OverloadAction }
  }),
  overloadPressure: metricSpec({
    name: 'hybrid_overload_pressure',
    type: 'gauge',
    unit: 'ratio',
    help: 'Resource use divided by its overload limit (1 = the limit); the highest drives the overload actions.',
    labels: { resource: OverloadResource }
  }),
  mptcpConnectionsActive: metricSpec({
    name: 'hybrid_mptcp_connections_active',
    type: 'gauge',
    unit: 'connections',
    help: 'Open proxied connections that negotiated MPTCP (no fallback).',
    labels: {}
  }),
  mptcpFallbacks: metricSpec({
    name: 'hybrid_mptcp_fallbacks_total',
    type: 'counter',
    unit: 'connections',
    help: 'Connections that fell back to plain TCP (no bonding), by reason; the key health signal.',
    labels: { reason: FallbackReason }
  }),
  mgmtConnectionsRefused: metricSpec({
    name: 'hybrid_mgmt_connections_refused_total',
    type: 'counter',
    unit: 'connections',
    help: 'Management API connections closed at accept because management.limits.maxConnections (max_conns) or perSourceMaxConnections (per_source_limit) was reached.',
    labels: { reason: MgmtRefusalReason }
  })
} as const

export const mptcpSubflowsSpec = metricSpec({
  name: 'hybrid_mptcp_subflows_active',
  type: 'gauge',
  unit: 'subflows',
  help: 'Established MPTCP subflows of proxied connections (per configured path on the CPE).',
  labels: {}
})
export const mptcpSubflowsByPathSpec = metricSpec({
  ...mptcpSubflowsSpec,
  labels: { path: { describe: 'configured link name (≤ 4, e.g. dsl, lte)' } }
})

export type SubflowGauge<P extends string> = [P] extends [never] ? PlainGauge : LabeledGauge<{ path: readonly P[] }>

export interface CommonMetricsOptions<P extends string> {
  /** Configured link names (CPE only, ≤ 4): `hybrid_mptcp_subflows_active` gets a `path` label. */
  paths?: readonly P[]
}

/** Uplink (path) names usable as the `path` metric label; the CPE config check refuses others at load. */
export const PATH_NAME = /^[a-z][a-z0-9_]{0,15}$/
export const MAX_PATHS = 4

function checkPaths (paths: readonly string[]): void {
  if (paths.length > MAX_PATHS) throw new ConfigError('HYBRID_ERR_CONFIG_INVALID', `at most ${MAX_PATHS} paths may be labelled, got ${paths.length}`)
  for (const p of paths) {
    if (!PATH_NAME.test(p)) throw new ConfigError('HYBRID_ERR_CONFIG_INVALID', `path name ${JSON.stringify(p)} must match ${PATH_NAME.source}`)
  }
}

function createSubflowGauge<P extends string> (registry: Registry, paths: readonly P[] | undefined): SubflowGauge<P> {
  if (paths === undefined) return createPlainGauge(registry, mptcpSubflowsSpec) as SubflowGauge<P>
  checkPaths(paths)
  const spec: MetricSpec<{ path: readonly P[] }> = { ...mptcpSubflowsByPathSpec, labels: { path: paths } }
  return createGauge(registry, spec) as SubflowGauge<P>
}

/** Registers the common metrics on `registry`; call once per registry. */
export function createCommonMetrics<P extends string = never> (registry: Registry, options: CommonMetricsOptions<P> = {}) {
  const s = commonMetricSpecs
  return {
    configReloads: createCounter(registry, s.configReloads),
    configLastReloadSuccess: createPlainGauge(registry, s.configLastReloadSuccess),
    connectionsAccepted: createCounter(registry, s.connectionsAccepted),
    connectionsActive: createGauge(registry, s.connectionsActive),
    connectionsRejected: createCounter(registry, s.connectionsRejected),
    connectionsClosed: createCounter(registry, s.connectionsClosed),
    handshakeDuration: createHistogram(registry, s.handshakeDuration),
    upstreamConnectDuration: createHistogram(registry, s.upstreamConnectDuration),
    upstreamConnectFailures: createCounter(registry, s.upstreamConnectFailures),
    connectionDuration: createHistogram(registry, s.connectionDuration),
    bytesReceived: createCounter(registry, s.bytesReceived),
    bytesSent: createCounter(registry, s.bytesSent),
    bufferedBytes: createGauge(registry, s.bufferedBytes),
    backpressurePauses: createCounter(registry, s.backpressurePauses),
    halfClosedConnections: createPlainGauge(registry, s.halfClosedConnections),
    convertErrors: createCounter(registry, s.convertErrors),
    overloadActive: createGauge(registry, s.overloadActive),
    overloadActivations: createCounter(registry, s.overloadActivations),
    overloadPressure: createGauge(registry, s.overloadPressure),
    mptcpConnectionsActive: createPlainGauge(registry, s.mptcpConnectionsActive),
    mptcpSubflowsActive: createSubflowGauge(registry, options.paths),
    mptcpFallbacks: createCounter(registry, s.mptcpFallbacks),
    mgmtConnectionsRefused: createCounter(registry, s.mgmtConnectionsRefused)
  }
}

export type CommonMetrics<P extends string = never> = ReturnType<typeof createCommonMetrics<P>>
