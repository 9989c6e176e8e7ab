import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { decodeProbe, echoOf, encodeProbe, ProbeHeaderBytes, ProbeMaxBytes, ProbeType } from '../../../../shared/src/codec/path-probe.ts'

test('golden vector', () => {
  const buf = encodeProbe({ type: ProbeType.Request, sequence: 0x01020304, timestampUs: 0x0a0b0c0d0e, paddingBytes: 0 })
  assert.equal(buf.toString('hex'), '48505242' + '01' + '01' + '0000' + '01020304' + '0000000a0b0c0d0e')
})

test('round trip keeps every field', () => {
  fc.assert(fc.property(
    fc.integer({ min: 0, max: 0xffffffff }), fc.maxSafeNat(), fc.integer({ min: 0, max: ProbeMaxBytes - ProbeHeaderBytes }),
    fc.constantFrom(ProbeType.Request, ProbeType.Reply),
    (sequence, timestampUs, paddingBytes, type) => {
      const msg = { type, sequence, timestampUs, paddingBytes }
      assert.deepEqual(decodeProbe(encodeProbe(msg)), { ok: true, value: msg })
    }))
})

test('malformed input is a fault value', () => {
  const good = encodeProbe({ type: ProbeType.Request, sequence: 1, timestampUs: 2, paddingBytes: 0 })
  const with_ = (i: number, v: number): Buffer => { const b = Buffer.from(good); b[i] = v; return b }
  assert.deepEqual(decodeProbe(good.subarray(0, 19)), { ok: false, fault: 'short' })
  assert.deepEqual(decodeProbe(Buffer.alloc(0)), { ok: false, fault: 'short' })
  assert.deepEqual(decodeProbe(Buffer.alloc(ProbeMaxBytes + 1)), { ok: false, fault: 'oversized' })
  assert.deepEqual(decodeProbe(with_(0, 0x49)), { ok: false, fault: 'bad_magic' })
  assert.deepEqual(decodeProbe(with_(4, 2)), { ok: false, fault: 'bad_version' })
  assert.deepEqual(decodeProbe(with_(5, 3)), { ok: false, fault: 'bad_type' })
  assert.deepEqual(decodeProbe(with_(7, 1)), { ok: false, fault: 'bad_flags' })
  assert.deepEqual(decodeProbe(with_(12, 0xff)), { ok: false, fault: 'bad_timestamp' })
})

test('random bytes never throw', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
    const r = decodeProbe(bytes)
    assert.equal(typeof r.ok, 'boolean')
  }))
})

test('echo: same length, type reply, other bytes kept', () => {
  const req = encodeProbe({ type: ProbeType.Request, sequence: 7, timestampUs: 99, paddingBytes: 30 })
  const reply = echoOf(req)
  assert.equal(reply.length, req.length)
  assert.deepEqual(decodeProbe(reply), { ok: true, value: { type: ProbeType.Reply, sequence: 7, timestampUs: 99, paddingBytes: 30 } })
  assert.equal(req[5], ProbeType.Request, 'request untouched')
})

test('encoder rejects out-of-range fields', () => {
  assert.throws(() => encodeProbe({ type: ProbeType.Request, sequence: -1, timestampUs: 0, paddingBytes: 0 }), RangeError)
  assert.throws(() => encodeProbe({ type: ProbeType.Request, sequence: 0, timestampUs: 0, paddingBytes: 300 }), RangeError)
})
