import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Registry } from 'prom-client'
import { createCommonMetrics } from '../../../../shared/src/metrics/common-metrics.ts'
import { countRelayEnd, relayMetricHooks } from '../../../../shared/src/metrics/relay-hooks.ts'

async function value (registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((x) => x.name === name)
  const v = metric?.values.find((s) => Object.entries(labels).every(([k, l]) => s.labels[k] === l) && !('le' in s.labels))
  return v?.value ?? NaN
}

test('countRelayEnd: reason, duration and bytes on both legs of the right mode', async () => {
  const registry = new Registry()
  const m = createCommonMetrics(registry)
  countRelayEnd(m, 'convert', { reason: 'idle_timeout', durationMs: 2500, bytesUp: 100, bytesDown: 7000 })
  assert.equal(await value(registry, 'hybrid_connections_closed_total', { mode: 'convert', reason: 'idle_timeout' }), 1)
  assert.equal(await value(registry, 'hybrid_bytes_received_total', { mode: 'convert', side: 'client' }), 100)
  assert.equal(await value(registry, 'hybrid_bytes_sent_total', { mode: 'convert', side: 'server' }), 100)
  assert.equal(await value(registry, 'hybrid_bytes_received_total', { mode: 'convert', side: 'server' }), 7000)
  assert.equal(await value(registry, 'hybrid_bytes_sent_total', { mode: 'convert', side: 'client' }), 7000)
  assert.equal(await value(registry, 'hybrid_bytes_sent_total', { mode: 'socks5', side: 'client' }), 0)
  const duration = (await registry.getMetricsAsJSON()).find((x) => x.name === 'hybrid_connection_duration_seconds')
  assert.equal(duration?.values.find((s) => (s as { metricName?: string }).metricName === 'hybrid_connection_duration_seconds_sum' && s.labels['mode'] === 'convert')?.value, 2.5)
})

test('relayMetricHooks: one shared hooks object per metrics set; half-close brackets the gauge', async () => {
  const registry = new Registry()
  const m = createCommonMetrics(registry)
  const hooks = relayMetricHooks(m)
  assert.equal(relayMetricHooks(m), hooks)
  hooks.onHalfClose()
  assert.equal(await value(registry, 'hybrid_half_closed_connections', {}), 1)
  hooks.onHalfCloseEnd()
  hooks.onBackpressure('client')
  assert.equal(await value(registry, 'hybrid_half_closed_connections', {}), 0)
  assert.equal(await value(registry, 'hybrid_backpressure_pauses_total', { side: 'client' }), 1)
})
