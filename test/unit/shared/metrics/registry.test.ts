import { test } from 'node:test'
import assert from 'node:assert/strict'
import { register as globalRegister } from 'prom-client'
import { createRegistry } from '../../../../shared/src/metrics/registry.ts'

test('hybrid_build_info is 1 with daemon, version, commit and node_version', async () => {
  const registry = createRegistry({ daemon: 'concentrator', version: '1.2.3', commit: 'abc1234' })
  const text = await registry.metrics()
  assert.ok(text.includes(`hybrid_build_info{daemon="concentrator",version="1.2.3",commit="abc1234",node_version="${process.version}"} 1`), text)
})

test('default process metrics are registered on the daemon registry, not the global one', async () => {
  const registry = createRegistry({ daemon: 'cpe', version: '0', commit: 'x' })
  const names = registry.getMetricsAsArray().map((m) => m.name)
  for (const name of ['process_resident_memory_bytes', 'process_open_fds', 'process_max_fds', 'nodejs_eventloop_lag_p99_seconds',
    'nodejs_heap_size_used_bytes', 'nodejs_gc_duration_seconds']) {
    assert.ok(names.includes(name), name)
  }
  assert.equal(globalRegister.getMetricsAsArray().length, 0)
  assert.equal((await globalRegister.metrics()).trim(), '')
})

test('two registries in one process are independent', async () => {
  const a = createRegistry({ daemon: 'cpe', version: 'a', commit: 'a' })
  const b = createRegistry({ daemon: 'concentrator', version: 'b', commit: 'b' })
  assert.notEqual(a, b)
  assert.ok(!(await a.metrics()).includes('version="b"'))
})

test('defaultMetrics: false leaves only build info', () => {
  const registry = createRegistry({ daemon: 'cpe', version: '0', commit: 'x', defaultMetrics: false })
  assert.deepEqual(registry.getMetricsAsArray().map((m) => m.name), ['hybrid_build_info'])
})
