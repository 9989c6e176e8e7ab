import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  dataFrame, decodeReport, decodeRequest, encodeReport, encodeRequest, END_FRAME, FrameCounter, mbps,
  REQUEST_SIZE
} from '../../../lab/flow-protocol.ts'

test('request round trip, short input and invalid input', () => {
  const buf = encodeRequest({ direction: 'upload', durationMs: 8000 })
  assert.equal(buf.length, REQUEST_SIZE)
  assert.equal(buf.toString('hex'), '4841464c020000000000' + '1f40'.padStart(4, '0'))
  assert.deepEqual(decodeRequest(buf), { direction: 'upload', durationMs: 8000 })
  assert.equal(decodeRequest(buf.subarray(0, 11)), undefined)
  assert.equal(decodeRequest(Buffer.from('XXXX\x01\0\0\0\0\0\0\x01', 'latin1')), 'bad magic')
  assert.equal(decodeRequest(Buffer.from('HAFL\x07\0\0\0\0\0\0\x01', 'latin1')), 'unknown op 7')
})

test('report round trip', () => {
  const r = { totalBytes: 2 ** 40 + 5, elapsedMs: 9_876, warmBytes: 1_234_567 }
  assert.deepEqual(decodeReport(encodeReport(r)), r)
  assert.equal(decodeReport(encodeReport(r).subarray(0, 19)), undefined)
})

test('FrameCounter counts payload across any chunking and returns what follows the end frame', () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 5, max: 300 }), { maxLength: 8 }),
    fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 20 }), (sizes, cuts) => {
      const trailer = Buffer.from('next-request')
      const stream = Buffer.concat([...sizes.map((s) => dataFrame(s)), END_FRAME, trailer])
      const c = new FrameCounter()
      const rest: Buffer[] = []
      let off = 0
      let i = 0
      while (off < stream.length) {
        const n = cuts[i++ % cuts.length]!
        const r = c.push(stream.subarray(off, off + n))
        if (r.length > 0) rest.push(r)
        off += n
        if (c.done) { rest.push(stream.subarray(off)); break }
      }
      assert.equal(c.done, true)
      assert.equal(c.payloadBytes, sizes.reduce((s, x) => s + x - 4, 0))
      assert.deepEqual(Buffer.concat(rest), trailer)
    }))
})

test('a data frame carries at least one byte (length 0 is the end frame)', () => {
  assert.throws(() => dataFrame(4), RangeError)
})

test('mbps', () => {
  assert.equal(mbps(1_250_000, 1000), 10)
  assert.equal(mbps(100, 0), 0)
})
