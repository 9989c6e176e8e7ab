import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { encodeVarint, readVarint, varintLength, writeVarint } from '../../../../shared/src/codec/quic-varint.ts'

const hex = (h: string): Buffer => Buffer.from(h, 'hex')

test('RFC 9000 appendix A.1 sample decodings', () => {
  assert.deepEqual(readVarint(hex('9d7f3e7d')), { value: 494878333, length: 4 })
  assert.deepEqual(readVarint(hex('7bbd')), { value: 15293, length: 2 })
  assert.deepEqual(readVarint(hex('25')), { value: 37, length: 1 })
  assert.deepEqual(readVarint(hex('4025')), { value: 37, length: 2 }, 'a non-minimal encoding is accepted')
  // 151 288 809 941 952 652 is above 2^53 − 1: not representable as a number, reported as Infinity.
  assert.deepEqual(readVarint(hex('c2197c5eff14e88c')), { value: Infinity, length: 8 })
})

test('encoder writes the shortest form (RFC 9000 vectors, and each length boundary)', () => {
  assert.equal(encodeVarint(494878333).toString('hex'), '9d7f3e7d')
  assert.equal(encodeVarint(15293).toString('hex'), '7bbd')
  assert.equal(encodeVarint(37).toString('hex'), '25')
  assert.equal(encodeVarint(63).toString('hex'), '3f')
  assert.equal(encodeVarint(64).toString('hex'), '4040')
  assert.equal(encodeVarint(16383).toString('hex'), '7fff')
  assert.equal(encodeVarint(16384).toString('hex'), '80004000')
  assert.equal(encodeVarint(2 ** 30 - 1).toString('hex'), 'bfffffff')
  assert.equal(encodeVarint(2 ** 30).toString('hex'), 'c000000040000000')
  assert.equal(encodeVarint(2 ** 40).toString('hex'), 'c000010000000000')
  assert.equal(encodeVarint(Number.MAX_SAFE_INTEGER).toString('hex'), 'c01fffffffffffff')
})

test('round trip over every safe value, at any offset', () => {
  fc.assert(fc.property(fc.maxSafeNat(), fc.nat(8), (v, pad) => {
    const buf = Buffer.alloc(pad + 8, 0xee)
    const end = writeVarint(v, buf, pad)
    assert.equal(end - pad, varintLength(v))
    assert.deepEqual(readVarint(buf, pad), { value: v, length: varintLength(v) })
  }))
})

test('a varint cut short is undefined, never a wrong value', () => {
  for (const h of ['', '40', '80ffff', 'c0000000000000']) assert.equal(readVarint(hex(h)), undefined, h)
  assert.equal(readVarint(hex('25'), 1), undefined)
  assert.equal(readVarint(hex('25'), -1), undefined)
})

test('encoder refuses what no varint can carry (caller bug, RangeError)', () => {
  for (const v of [-1, 1.5, Number.MAX_SAFE_INTEGER + 1, NaN, Infinity]) assert.throws(() => encodeVarint(v), RangeError, String(v))
  assert.throws(() => writeVarint(64, Buffer.alloc(1), 0), RangeError)
})
