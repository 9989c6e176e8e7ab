import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConnectionCaps, connectionsForFdLimit, effectiveMaxConnections, fdBudget, parseOpenFilesLimit } from '../../../../shared/src/net/connection-caps.ts'
import { SourcePrefixes, sourceKey } from '../../../../concentrator/src/accept/source-address.ts'
import { capSourceKey } from '../../../../shared/src/net/source-prefix.ts'

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

test('reserved fds (the splice pipe budget) come off the derived cap, not off an explicit one', () => {
  assert.equal(connectionsForFdLimit(20000, 2502), 8717)
  assert.equal(effectiveMaxConnections(0, () => 20000, 2502), 8717)
  assert.equal(effectiveMaxConnections(9968, () => 20000, 2502), 9968)
  assert.equal(effectiveMaxConnections(0, () => 20000), 9968)
})

test('fd budget: 2 per connection + reserved + 64 against RLIMIT_NOFILE, with what to change when it does not fit', () => {
  assert.deepEqual(fdBudget(8717, 20000, 2502), { needed: 20_000, nofile: 20000, fits: true })
  const over = fdBudget(9968, 20000, 2502)
  assert.equal(over.fits, false)
  assert.equal(over.needed, 22_502)
  assert.match(over.message ?? '', /limits\.maxConnections 9968 × 2 sockets \+ 2502 reserved \(splice pipes\) \+ 64 = 22502 fds, but RLIMIT_NOFILE is 20000/)
  assert.match(over.message ?? '', /raise LimitNOFILE to at least 22502 or set limits\.maxConnections ≤ 8717/)
  assert.equal(fdBudget(1_000_000, Infinity, 0).fits, true)
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

test('unauthenticated connections have their own budget; authenticated() frees it, idempotently', () => {
  const caps = new ConnectionCaps({ maxConnections: 4, perSourceMaxConnections: 4, unauthenticatedMaxConnections: 2 })
  const a = caps.tryAcquire('a')
  const b = caps.tryAcquire('b')
  assert.deepEqual(caps.tryAcquire('c'), { ok: false, reason: 'unauthenticated_limit' })
  assert.ok(a.ok && b.ok)
  assert.equal(caps.unauthenticated, 2)
  a.authenticated()
  a.authenticated()
  assert.equal(caps.unauthenticated, 1)
  const c = caps.tryAcquire('c')
  assert.ok(c.ok)
  assert.equal(caps.tryAcquire('d', { authenticated: true }).ok, true, 'an authenticated slot is not in the budget')
  assert.deepEqual(caps.tryAcquire('e', { authenticated: true }), { ok: false, reason: 'max_conns' })
  b.release()
  assert.equal(caps.unauthenticated, 1, 'releasing a pending slot frees its budget')
  a.release()
  c.release()
  assert.equal(caps.unauthenticated, 0)
  assert.equal(caps.total, 1)
})

test('cap keys: IPv6 aggregated by the configured prefix, IPv4 and mapped IPv6 stay /32', () => {
  assert.equal(capSourceKey(sourceKey('2001:db8:1:2::1'), 64), '2001:db8:1:2::/64')
  assert.equal(capSourceKey(sourceKey('2001:db8:1:2:ffff:ffff:ffff:ffff'), 64), '2001:db8:1:2::/64')
  assert.notEqual(capSourceKey('2001:db8:1:3::1', 64), capSourceKey('2001:db8:1:2::1', 64))
  assert.equal(capSourceKey('2001:db8:1:2:3:4:5:6', 56), '2001:db8:1::/56')
  assert.equal(capSourceKey('2001:db8:1:2:3:4:5:6', 128), '2001:db8:1:2:3:4:5:6')
  assert.equal(capSourceKey('2001:db8:1:2:3:4:5:6', 1), '::/1')
  assert.equal(capSourceKey(sourceKey('::ffff:192.0.2.7'), 64), '192.0.2.7')
  assert.equal(capSourceKey('192.0.2.7', 64), '192.0.2.7')
  assert.equal(capSourceKey('unknown', 64), 'unknown')
  // the probe's fault: 12 addresses of one /64 are one source for the per-source cap
  const caps = new ConnectionCaps({ maxConnections: 9968, perSourceMaxConnections: 1024 })
  let refused = 0
  for (let host = 1; host <= 12; host++) {
    for (let i = 0; i < 900; i++) if (!caps.tryAcquire(capSourceKey(`2001:db8:0:1::${host.toString(16)}`, 64)).ok) refused++
  }
  assert.equal(caps.total, 1024)
  assert.equal(refused, 12 * 900 - 1024)
  assert.equal(caps.tryAcquire(capSourceKey('2001:db8:0:2::1', 64)).ok, true, 'another /64 still gets a slot')
})
