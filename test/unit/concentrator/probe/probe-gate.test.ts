import { test } from 'node:test'
import assert from 'node:assert/strict'
import { encodeProbe, echoOf, ProbeType } from '../../../../shared/src/codec/path-probe.ts'
import { ProbeGate } from '../../../../concentrator/src/probe/probe-gate.ts'

const request = encodeProbe({ type: ProbeType.Request, sequence: 1, timestampUs: 5, paddingBytes: 0 })
const gate = (now: () => number, extra: Partial<ConstructorParameters<typeof ProbeGate>[0]> = {}): ProbeGate =>
  new ProbeGate({ trusted: (s) => s.startsWith('192.0.2.'), ratePerSecond: 10, burst: 3, now, ...extra })

test('trusted valid request is answered; untrusted, malformed, oversized and replies are dropped', () => {
  const g = gate(() => 0)
  assert.deepEqual(g.decide('192.0.2.2', request), { answer: true })
  assert.deepEqual(g.decide('198.51.100.9', request), { answer: false, reason: 'untrusted' })
  assert.deepEqual(g.decide('192.0.2.2', Buffer.from('hello')), { answer: false, reason: 'malformed' })
  assert.deepEqual(g.decide('192.0.2.2', Buffer.alloc(1500)), { answer: false, reason: 'oversized' })
  assert.deepEqual(g.decide('192.0.2.2', echoOf(request)), { answer: false, reason: 'not_request' },
    'a reply is never answered (no ping-pong between responders)')
})

test('untrusted sources spend no state', () => {
  const g = gate(() => 0)
  for (let i = 0; i < 100; i++) g.decide(`198.51.100.${i}`, request)
  assert.equal(g.sources, 0)
})

test('per-source token bucket: burst, then the rate', () => {
  let t = 0
  const g = gate(() => t)
  const answered = (): number => [0, 1, 2, 3, 4].filter(() => g.decide('192.0.2.2', request).answer).length
  assert.equal(answered(), 3, 'burst of 3')
  assert.deepEqual(g.decide('192.0.2.2', request), { answer: false, reason: 'rate_limited' })
  assert.equal(g.decide('192.0.2.3', request).answer, true, 'other sources unaffected')
  t += 100 // 10/s → one token
  assert.equal(answered(), 1)
  t += 10_000
  assert.equal(answered(), 3, 'refill capped at the burst')
})

test('source table is bounded', () => {
  const g = gate(() => 0, { maxSources: 4 })
  for (let i = 0; i < 20; i++) g.decide(`192.0.2.${i}`, request)
  assert.equal(g.sources, 4)
})

test('the reply is never larger than the request', () => {
  for (const paddingBytes of [0, 1, 100, 236]) {
    const req = encodeProbe({ type: ProbeType.Request, sequence: 9, timestampUs: 1, paddingBytes })
    assert.ok(echoOf(req).length <= req.length)
  }
})
