import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConnectionCaps, connectionsForFdLimit, effectiveMaxConnections, parseOpenFilesLimit } from '../../../../shared/src/net/connection-caps.ts'
import { SourcePrefixes, sourceKey } from '../../../../concentrator/src/accept/source-address.ts'

test('global and per-source caps; release is idempotent; lowered limits affect new connections only', () => {
  const caps = new ConnectionCaps({ maxConnections: 3, perSourceMaxConnections: 2 })
  const a1 = caps.tryAcquire('a')
  const a2 = caps.tryAcquire('a')
  assert.deepEqual(caps.tryAcquire('a'), { ok: false, reason: 'per_source_limit' })
  const b1 = caps.tryAcquire('b')
  assert.deepEqual(caps.tryAcquire('c'), { ok: false, reason: 'max_conns' })
  assert.ok(a1.ok && a2.ok && b1.ok)
  a1.release()
  a1.release()
  assert.equal(caps.total, 2)
  assert.equal(caps.countFor('a'), 1)
  caps.setLimits({ maxConnections: 1, perSourceMaxConnections: 1 })
  assert.deepEqual(caps.tryAcquire('d'), { ok: false, reason: 'max_conns' })
  a2.release()
  b1.release()
  assert.equal(caps.total, 0)
  assert.equal(caps.sources, 0)
})

test('fd limit: parsed from /proc/self/limits, cap = floor((n - 64) / 2)', () => {
  const text = 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            20000                1048576              files\n'
  assert.equal(parseOpenFilesLimit(text), 20000)
  assert.equal(parseOpenFilesLimit('Max open files unlimited unlimited files'), Infinity)
  assert.equal(parseOpenFilesLimit('nothing'), undefined)
  assert.equal(connectionsForFdLimit(1024), 480)
  assert.equal(connectionsForFdLimit(Infinity), 1_048_576)
  assert.equal(effectiveMaxConnections(0, () => 20000), 9968)
  assert.equal(effectiveMaxConnections(10, () => 20000), 10)
})

test('source keys fold IPv4-mapped IPv6; prefixes match both families', () => {
  assert.equal(sourceKey('::ffff:192.0.2.7'), '192.0.2.7')
  assert.equal(sourceKey('2001:DB8::1'), '2001:db8::1')
  assert.equal(sourceKey(undefined), 'unknown')
  const p = new SourcePrefixes('auth.trustedPrefixes', ['192.0.2.0/24', '2001:db8::/32'])
  assert.equal(p.has('192.0.2.9'), true)
  assert.equal(p.has('198.51.100.1'), false)
  assert.equal(p.has('2001:db8::5'), true)
  assert.equal(new SourcePrefixes('k', []).has('192.0.2.9'), false)
  assert.throws(() => new SourcePrefixes('auth.trustedPrefixes', ['nope']), { code: 'HYBRID_ERR_CONFIG_INVALID' })
})
