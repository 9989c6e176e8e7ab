import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  CapsuleReader, CapsuleType, decodeHttpDatagram, encodeCapsule, encodeDatagramCapsule, MaxUdpPayloadBytes
} from '../../../../shared/src/codec/capsule.ts'
import type { Capsule, CapsuleNext } from '../../../../shared/src/codec/capsule.ts'

const hex = (h: string): Buffer => Buffer.from(h, 'hex')

function drain (r: CapsuleReader): { capsules: Array<{ type: number, value: string }>, last: CapsuleNext } {
  const capsules: Array<{ type: number, value: string }> = []
  for (;;) {
    const n = r.next()
    if (!('capsule' in n)) return { capsules, last: n }
    capsules.push({ type: n.capsule.type, value: Buffer.from(n.capsule.value).toString('hex') })
  }
}

test('golden vectors: DATAGRAM capsules (context 0) and an unknown (GREASE) capsule type', () => {
  // type 0x00, length 3, context ID 0, payload "hi"
  assert.equal(encodeDatagramCapsule(Buffer.from('hi')).toString('hex'), '00' + '03' + '00' + '6869')
  // 64-byte payload: value length 65 takes the 2-byte varint 0x4041
  assert.equal(encodeDatagramCapsule(Buffer.alloc(64, 0xab)).toString('hex'), '00' + '4041' + '00' + 'ab'.repeat(64))
  // empty UDP payload is legal: length 1 (the context ID only)
  assert.equal(encodeDatagramCapsule(Buffer.alloc(0)).toString('hex'), '000100')
  // 0x17 = 0x29 × 0 + 0x17, a reserved GREASE type (RFC 9297 §5.4)
  assert.equal(encodeCapsule(0x17, Buffer.alloc(0)).toString('hex'), '1700')
})

test('reader: whole capsules in order, unknown types returned for the caller to skip', () => {
  const r = new CapsuleReader()
  r.push(hex('1700' + '0003006869' + '1702beef'))
  const { capsules, last } = drain(r)
  assert.deepEqual(capsules, [{ type: 0x17, value: '' }, { type: CapsuleType.Datagram, value: '006869' }, { type: 0x17, value: 'beef' }])
  assert.deepEqual(last, { need: true })
  assert.equal(r.end(), undefined)
})

test('reader: the same capsules whatever the split of the stream', () => {
  fc.assert(fc.property(
    fc.array(fc.record({ type: fc.integer({ min: 0, max: 2 ** 40 }), value: fc.uint8Array({ maxLength: 300 }) }), { maxLength: 8 }),
    fc.array(fc.integer({ min: 1, max: 50 }), { maxLength: 40 }),
    (caps, cuts) => {
      const wire = Buffer.concat(caps.map((c) => encodeCapsule(c.type, c.value)))
      const r = new CapsuleReader(300)
      const got: Capsule[] = []
      let at = 0
      for (const n of [...cuts, wire.length]) {
        r.push(wire.subarray(at, Math.min(wire.length, at + n)))
        at = Math.min(wire.length, at + n)
        for (let x = r.next(); 'capsule' in x; x = r.next()) got.push({ type: x.capsule.type, value: Buffer.from(x.capsule.value) })
      }
      assert.deepEqual(got.map((c) => [c.type, Buffer.from(c.value).toString('hex')]), caps.map((c) => [c.type, Buffer.from(c.value).toString('hex')]))
      assert.equal(r.end(), undefined)
    }))
})

test('reader: a length above the budget is a fault before its value is buffered; the fault is sticky', () => {
  const r = new CapsuleReader(1000)
  r.push(hex('00' + '8000ffff')) // DATAGRAM announcing 65 535 bytes
  assert.deepEqual(r.next(), { fault: 'too_large' })
  assert.equal(r.buffered, 0)
  r.push(hex('000100'))
  assert.deepEqual(r.next(), { fault: 'too_large' })
  assert.equal(r.end(), 'too_large')
  const huge = new CapsuleReader()
  huge.push(hex('00' + 'ffffffffffffffff')) // 2^62 − 1
  assert.deepEqual(huge.next(), { fault: 'too_large' })
})

test('reader: a stream that ends inside a capsule (header or value) is truncated', () => {
  for (const h of ['40', '00', '0003', '000300']) {
    const r = new CapsuleReader()
    r.push(hex(h))
    assert.deepEqual(r.next(), { need: true }, h)
    assert.equal(r.end(), 'truncated', h)
  }
})

test('HTTP Datagram payload: context ID and UDP payload; oversized UDP payload and empty value refused', () => {
  assert.deepEqual(decodeHttpDatagram(hex('006869')), { ok: true, contextId: 0, payload: hex('6869') })
  assert.deepEqual(decodeHttpDatagram(hex('02ff')), { ok: true, contextId: 2, payload: hex('ff') })
  assert.deepEqual(decodeHttpDatagram(hex('')), { ok: false, fault: 'short' })
  assert.deepEqual(decodeHttpDatagram(hex('40')), { ok: false, fault: 'short' })
  assert.deepEqual(decodeHttpDatagram(Buffer.concat([hex('00'), Buffer.alloc(MaxUdpPayloadBytes + 1)])), { ok: false, fault: 'oversized' })
  assert.equal((decodeHttpDatagram(Buffer.concat([hex('00'), Buffer.alloc(MaxUdpPayloadBytes)])) as { ok: boolean }).ok, true)
  assert.throws(() => encodeDatagramCapsule(Buffer.alloc(MaxUdpPayloadBytes + 1)), RangeError)
})

test('datagram round trip through the reader', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 2000 }), fc.integer({ min: 0, max: 2 ** 31 }), (payload, ctx) => {
    const r = new CapsuleReader()
    r.push(encodeDatagramCapsule(payload, ctx))
    const n = r.next()
    assert.ok('capsule' in n)
    assert.equal(n.capsule.type, CapsuleType.Datagram)
    assert.deepEqual(decodeHttpDatagram(n.capsule.value), { ok: true, contextId: ctx, payload: Buffer.from(payload) })
  }))
})
