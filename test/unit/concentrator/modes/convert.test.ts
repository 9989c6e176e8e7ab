import { test } from 'node:test'
import assert from 'node:assert/strict'
import { errnoToConvertError } from '../../../../concentrator/src/modes/convert-errno.ts'
import { ConvertCookieKeys } from '../../../../concentrator/src/modes/convert-cookie.ts'
import { SourceTokenBucket } from '../../../../concentrator/src/modes/convert-rate-limit.ts'
import { downstreamPlan } from '../../../../concentrator/src/modes/convert-downstream.ts'
import { ConverterState } from '../../../../concentrator/src/modes/convert-state.ts'

test('errno → Convert Error code and value (issue 6 mapping)', () => {
  const cases: Array<[string | undefined, number, number]> = [
    ['ECONNREFUSED', 96, 0], ['ECONNRESET', 96, 0],
    ['EHOSTUNREACH', 97, 1], ['EHOSTDOWN', 97, 1], ['ENETUNREACH', 97, 0],
    ['ETIMEDOUT', 65, 0],
    ['EMFILE', 64, 0], ['ENFILE', 64, 0], ['ENOBUFS', 64, 0], ['ENOMEM', 64, 0],
    ['EACCES', 32, 0], ['EPERM', 32, 0],
    ['ENETDOWN', 65, 0], ['EADDRNOTAVAIL', 65, 0], [undefined, 65, 0], ['EIO', 65, 0]
  ]
  for (const [errno, code, value] of cases) assert.deepEqual(errnoToConvertError(errno), { code, value }, String(errno))
})

function keys (now: { t: number }, rotationMs = 1000): ConvertCookieKeys {
  let n = 0
  return new ConvertCookieKeys({ rotationMs, lengthBytes: 8, now: () => now.t, newKey: () => Buffer.alloc(32, ++n) })
}

test('cookie: HMAC-SHA-256 over the source, truncated, bound to the address', () => {
  const now = { t: 0 }
  const k = keys(now)
  const c = k.issue('192.0.2.10')
  assert.equal(c.length, 8)
  assert.deepEqual(k.issue('192.0.2.10'), c, 'deterministic within a key period')
  assert.ok(k.verify('192.0.2.10', c))
  assert.ok(!k.verify('192.0.2.11', c), 'another source')
  assert.ok(!k.verify('192.0.2.10', c.subarray(0, 4)), 'wrong length')
  const flipped = Buffer.from(c)
  flipped[0] = (flipped[0] ?? 0) ^ 1
  assert.ok(!k.verify('192.0.2.10', flipped))
})

test('cookie rotation: current and previous key accepted, older refused', () => {
  const now = { t: 0 }
  const k = keys(now)
  const first = k.issue('2001:db8::1')
  now.t = 1000 // one rotation
  const second = k.issue('2001:db8::1')
  assert.notDeepEqual(second, first)
  assert.ok(k.verify('2001:db8::1', first), 'previous key still accepted')
  assert.ok(k.verify('2001:db8::1', second))
  now.t = 2000 // another rotation: `first` is two keys old
  assert.ok(!k.verify('2001:db8::1', first))
  assert.ok(k.verify('2001:db8::1', second))
  now.t = 10_000 // long idle: both old keys dropped
  assert.ok(!k.verify('2001:db8::1', second))
})

test('cookie length must be a multiple of 4 in 4–32', () => {
  assert.throws(() => new ConvertCookieKeys({ rotationMs: 1000, lengthBytes: 6 }), RangeError)
  assert.throws(() => new ConvertCookieKeys({ rotationMs: 1000, lengthBytes: 36 }), RangeError)
})

test('Error rate limiter: token bucket per source, refill, bounded table', () => {
  const now = { t: 0 }
  const b = new SourceTokenBucket({ perSecond: 2, burst: 3, maxSources: 2, now: () => now.t })
  assert.deepEqual([b.take('a'), b.take('a'), b.take('a'), b.take('a')], [true, true, true, false])
  assert.ok(b.take('b'), 'other sources have their own bucket')
  now.t = 499
  assert.ok(!b.take('a'), 'refill 2/s: < 1 token after 499 ms')
  now.t = 1000
  assert.ok(b.take('a'))
  assert.ok(b.take('c'))
  assert.ok(b.size <= 2, 'oldest evicted at maxSources')
  now.t = 100_000
  b.sweep()
  assert.equal(b.size, 0, 'full buckets forgotten')
})

test('downstream plan: MPTCP only when requested and allowed; TFO only with early data', () => {
  const opt = (kind: number) => ({ kind, data: new Uint8Array(0) })
  const data = Buffer.from('x')
  assert.deepEqual(downstreamPlan({ options: [], earlyData: data, allowMptcp: true }), { mptcp: false, fastOpen: false })
  assert.deepEqual(downstreamPlan({ options: [opt(30)], earlyData: data, allowMptcp: false }), { mptcp: false, fastOpen: false })
  assert.deepEqual(downstreamPlan({ options: [opt(30)], earlyData: data, allowMptcp: true }), { mptcp: true, fastOpen: false })
  assert.deepEqual(downstreamPlan({ options: [opt(34)], earlyData: data, allowMptcp: false }), { mptcp: false, fastOpen: true })
  assert.deepEqual(downstreamPlan({ options: [opt(34)], earlyData: Buffer.alloc(0), allowMptcp: false }), { mptcp: false, fastOpen: false })
})

test('converter state keeps cookie keys over a reload that does not change them', () => {
  const base = {
    cookie: { required: true, keyRotationSeconds: 3600, lengthBytes: 8 },
    errorRateLimit: { perSecond: 10, burst: 20 },
    privateTypes: [200],
    downstreamMptcp: false
  }
  const s = new ConverterState(base)
  const c = s.cookies?.issue('192.0.2.1')
  assert.ok(c !== undefined)
  s.update({ ...base, privateTypes: [201] })
  assert.ok(s.cookies?.verify('192.0.2.1', c))
  assert.deepEqual([...s.privateTypes], [201])
  s.update({ ...base, cookie: { ...base.cookie, required: false } })
  assert.equal(s.cookies, undefined)
})
