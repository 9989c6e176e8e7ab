import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Registry, register as globalRegister } from 'prom-client'
import { ConfigError } from '../../../../shared/src/errors.ts'
import { commonMetricSpecs, ConnectionDurationBuckets, createCommonMetrics, LatencyBuckets } from '../../../../shared/src/metrics/common-metrics.ts'

// Every metric both daemons export (docs/metrics.md, "Common metrics"), except build info (registry.ts) and the kernel MIB (kernel-mib.ts),
// plus the management listener's refused connections (docs/management-api.md).
const TABLE = [
  'hybrid_config_reloads_total', 'hybrid_config_last_reload_success_timestamp_seconds',
  'hybrid_connections_accepted_total', 'hybrid_connections_active', 'hybrid_connections_rejected_total',
  'hybrid_connections_closed_total', 'hybrid_handshake_duration_seconds', 'hybrid_upstream_connect_duration_seconds',
  'hybrid_upstream_connect_failures_total', 'hybrid_connection_duration_seconds', 'hybrid_bytes_received_total',
  'hybrid_bytes_sent_total', 'hybrid_buffered_bytes', 'hybrid_backpressure_pauses_total',
  'hybrid_half_closed_connections', 'hybrid_convert_errors_total', 'hybrid_overload_active',
  'hybrid_overload_activations_total', 'hybrid_overload_pressure',
  'hybrid_mptcp_connections_active', 'hybrid_mptcp_subflows_active', 'hybrid_mptcp_fallbacks_total',
  'hybrid_mgmt_connections_refused_total'
]

const freshRegistry = (): Registry => new Registry()

test('registers exactly the common metrics of the table, on the given registry only', () => {
  const registry = freshRegistry()
  createCommonMetrics(registry)
  assert.deepEqual(registry.getMetricsAsArray().map((m) => m.name).sort(), [...TABLE].sort())
  assert.equal(globalRegister.getMetricsAsArray().length, 0)
})

test('names follow the rules: hybrid_ prefix, counters end in _total, others do not', () => {
  for (const spec of Object.values(commonMetricSpecs)) {
    assert.match(spec.name, /^hybrid_[a-z0-9_]+$/)
    assert.equal(spec.name.endsWith('_total'), spec.type === 'counter', spec.name)
    if (spec.type === 'histogram') assert.ok(spec.name.endsWith('_seconds'), spec.name)
  }
})

test('histogram buckets: handshake 1 ms–10 s, connection duration 1 s–24 h', () => {
  assert.equal(LatencyBuckets[0], 0.001)
  assert.equal(LatencyBuckets.at(-1), 10)
  assert.equal(ConnectionDurationBuckets[0], 1)
  assert.equal(ConnectionDurationBuckets.at(-1), 86_400)
  for (const b of [LatencyBuckets, ConnectionDurationBuckets]) assert.deepEqual([...b], [...b].sort((x, y) => x - y))
  assert.deepEqual(commonMetricSpecs.handshakeDuration.buckets, LatencyBuckets)
  assert.deepEqual(commonMetricSpecs.connectionDuration.buckets, ConnectionDurationBuckets)
})

test('counters and labelled gauges start at 0 for every closed label combination', async () => {
  const registry = freshRegistry()
  createCommonMetrics(registry)
  const json = await registry.getMetricsAsJSON()
  const series = (name: string): number => json.find((m) => m.name === name)?.values.length ?? -1
  assert.equal(series('hybrid_connections_rejected_total'), 3 * 11)
  assert.equal(series('hybrid_connections_closed_total'),
    3 * 8) // normal, idle_timeout, half_close_timeout, max_duration, error, drain, peer_timeout, overload
  assert.equal(series('hybrid_bytes_sent_total'), 3 * 2)
  assert.equal(series('hybrid_convert_errors_total'), 2 * 12)
  assert.equal(series('hybrid_mptcp_fallbacks_total'), 6)
  assert.equal(series('hybrid_overload_active'), 3)
  assert.equal(series('hybrid_overload_pressure'), 4)
  const text = await registry.metrics()
  assert.ok(text.includes('hybrid_connections_rejected_total{mode="socks5",reason="ssrf_blocked"} 0'))
})

test('the typed object updates the series it names', async () => {
  const registry = freshRegistry()
  const m = createCommonMetrics(registry)
  m.connectionsAccepted.inc({ mode: 'convert' })
  m.connectionsActive.inc({ mode: 'convert' })
  m.bytesSent.inc({ mode: 'socks5', side: 'server' }, 1500)
  m.handshakeDuration.observe({ mode: 'transparent' }, 0.003)
  m.halfClosedConnections.set(2)
  m.configLastReloadSuccess.setToCurrentTime()
  m.mptcpSubflowsActive.set(4)
  const stop = m.upstreamConnectDuration.startTimer({ mode: 'socks5' })
  assert.ok(stop() >= 0)
  const text = await registry.metrics()
  assert.ok(text.includes('hybrid_connections_accepted_total{mode="convert"} 1'))
  assert.ok(text.includes('hybrid_connections_active{mode="convert"} 1'))
  assert.ok(text.includes('hybrid_bytes_sent_total{mode="socks5",side="server"} 1500'))
  assert.ok(text.includes('hybrid_handshake_duration_seconds_bucket{le="0.005",mode="transparent"} 1'))
  assert.ok(text.includes('hybrid_half_closed_connections 2'))
  assert.ok(text.includes('hybrid_mptcp_subflows_active 4'))
  assert.ok(text.includes('hybrid_upstream_connect_duration_seconds_count{mode="socks5"} 1'))
})

test('label values are closed unions at compile time (an address is a type error)', () => {
  const m = createCommonMetrics(freshRegistry())
  const assertTypeError = (fn: () => void): void => { assert.throws(fn) }
  // @ts-expect-error: 'http' is not a Mode
  m.connectionsAccepted.inc({ mode: 'http' })
  // @ts-expect-error: no label may carry a client address (unknown label name, throws at run time too)
  assertTypeError(() => { m.connectionsAccepted.inc({ mode: 'socks5', src: '192.0.2.1' }) })
  // @ts-expect-error: a free string is not a RejectReason
  m.connectionsRejected.inc({ mode: 'socks5', reason: String('203.0.113.9') })
  // @ts-expect-error: the concentrator's subflow gauge has no labels
  assertTypeError(() => { m.mptcpSubflowsActive.set({ path: 'dsl' }, 1) })
})

test('on the CPE the subflow gauge is labelled with the configured paths', async () => {
  const registry = freshRegistry()
  const m = createCommonMetrics(registry, { paths: ['dsl', 'lte'] })
  m.mptcpSubflowsActive.set({ path: 'lte' }, 3)
  // @ts-expect-error: 'wifi' is not a configured path
  m.mptcpSubflowsActive.set({ path: 'wifi' }, 1)
  const text = await registry.metrics()
  assert.ok(text.includes('hybrid_mptcp_subflows_active{path="dsl"} 0'))
  assert.ok(text.includes('hybrid_mptcp_subflows_active{path="lte"} 3'))
})

test('path names are checked: ≤ 4, lower-case identifiers', () => {
  assert.throws(() => createCommonMetrics(freshRegistry(), { paths: ['a', 'b', 'c', 'd', 'e'] }), ConfigError)
  assert.throws(() => createCommonMetrics(freshRegistry(), { paths: ['192.0.2.1'] }), ConfigError)
  assert.throws(() => createCommonMetrics(freshRegistry(), { paths: ['DSL'] }), ConfigError)
})

test('calling it twice on one registry fails loudly (one set per registry)', () => {
  const registry = freshRegistry()
  createCommonMetrics(registry)
  assert.throws(() => createCommonMetrics(registry), /already been registered/)
})
