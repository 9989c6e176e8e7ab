import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeIfreqName, encodeIfreq, IFF_NO_PI, IFF_TUN, IFREQ_SIZE } from '../../../../shared/src/net/tun.ts'

test('ifreq for TUNSETIFF: 40 bytes, NUL-padded name, flags as little-endian short at 16', () => {
  const b = encodeIfreq('dl100u', IFF_TUN | IFF_NO_PI)
  assert.equal(b.length, IFREQ_SIZE)
  assert.equal(b.toString('latin1', 0, 6), 'dl100u')
  assert.ok(b.subarray(6, 16).every((x) => x === 0))
  assert.equal(b.readUInt16LE(16), 0x1001)
  assert.equal(decodeIfreqName(b), 'dl100u')
  assert.equal(decodeIfreqName(encodeIfreq('abcdefghijklmno', 1)), 'abcdefghijklmno')
})

test('ifreq rejects names the kernel would reject or truncate', () => {
  for (const bad of ['', 'abcdefghijklmnop', 'a b', 'a/b', 'ä']) assert.throws(() => encodeIfreq(bad, IFF_TUN), RangeError)
})
