import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { decodeIpUdp, encodeIpUdp } from '../../../../shared/src/codec/ip-udp.ts'

const hex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex')

// 192.0.2.1:1234 → 198.51.100.7:53, TTL 64, DF, payload "hi". The two checksums (0x4e93 header,
// 0xa62d UDP) were computed independently with the RFC 1071 reference sum in Python.
const v4Golden = hex(`
  4500 001e 0000 4000 4011 4e93 c000 0201 c633 6407
  04d2 0035 000a a62d 6869`)

test('IPv4 golden packet: encoded byte for byte, decoded back', () => {
  const spec = { src: '192.0.2.1', dst: '198.51.100.7', srcPort: 1234, dstPort: 53, payload: Buffer.from('hi') }
  assert.equal(encodeIpUdp(spec).toString('hex'), v4Golden.toString('hex'))
  const d = decodeIpUdp(v4Golden)
  assert.ok(d.ok)
  assert.deepEqual({ ...d.packet, payload: Buffer.from(d.packet.payload).toString() },
    { family: 4, src: '192.0.2.1', dst: '198.51.100.7', srcPort: 1234, dstPort: 53, ttl: 64, dscp: 0, payload: 'hi' })
})

test('round trip in both families, any ports, TTL, DSCP and payload', () => {
  fc.assert(fc.property(
    fc.oneof(fc.tuple(fc.ipV4(), fc.ipV4()), fc.tuple(fc.ipV6(), fc.ipV6())),
    fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 1, max: 255 }), fc.integer({ min: 0, max: 63 }),
    fc.uint8Array({ maxLength: 1500 }),
    ([src, dst], srcPort, dstPort, ttl, dscp, payload) => {
      const d = decodeIpUdp(encodeIpUdp({ src, dst, srcPort, dstPort, ttl, dscp, payload }))
      assert.ok(d.ok, JSON.stringify(d))
      assert.equal(d.packet.family, src.includes(':') ? 6 : 4)
      assert.deepEqual([d.packet.srcPort, d.packet.dstPort, d.packet.ttl, d.packet.dscp], [srcPort, dstPort, ttl, dscp])
      assert.deepEqual(Buffer.from(d.packet.payload), Buffer.from(payload))
      assert.equal(encodeIpUdp({ ...d.packet, src: d.packet.src, dst: d.packet.dst }).length, (src.includes(':') ? 48 : 28) + payload.length)
    }))
})

test('IPv6 addresses come back in RFC 5952 form; traffic class carries the DSCP', () => {
  const p = encodeIpUdp({ src: '2001:0db8:0:0:0:0:0:1', dst: '2001:db8::a:0:0:2', srcPort: 5000, dstPort: 443, dscp: 46, payload: Buffer.alloc(3) })
  assert.equal(p[0], 0x6b)
  assert.equal(p[1], 0x80)
  const d = decodeIpUdp(p)
  assert.ok(d.ok)
  assert.deepEqual([d.packet.src, d.packet.dst, d.packet.dscp], ['2001:db8::1', '2001:db8::a:0:0:2', 46])
})

test('every single-bit flip in a packet is refused or changes what is decoded (checksums cover it all)', () => {
  const base = encodeIpUdp({ src: '192.0.2.1', dst: '198.51.100.7', srcPort: 1234, dstPort: 53, payload: Buffer.from('hello') })
  const ref = decodeIpUdp(base)
  for (let bit = 0; bit < base.length * 8; bit++) {
    const p = Buffer.from(base)
    p[bit >> 3] = (p[bit >> 3] as number) ^ (1 << (bit & 7))
    const d = decodeIpUdp(p)
    // TTL (byte 8) and TOS (byte 1) are covered by the header checksum only; any flip is caught somewhere
    assert.ok(!d.ok || JSON.stringify(d) !== JSON.stringify(ref), `bit ${bit} went unnoticed`)
    assert.equal(d.ok, false, `bit ${bit}: a corrupted packet decoded`)
  }
})

/** Recomputes an IPv4 header checksum after a test edited the header. */
function refix (p: Buffer): Buffer {
  p.writeUInt16BE(0, 10)
  let s = 0
  for (let i = 0; i < 20; i += 2) s += p.readUInt16BE(i)
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16)
  p.writeUInt16BE(0xffff - s, 10)
  return p
}

test('refusals: fragments, other protocols, extension headers, bad lengths and checksums', () => {
  const v4 = encodeIpUdp({ src: '192.0.2.1', dst: '198.51.100.7', srcPort: 1, dstPort: 2, payload: Buffer.from('x') })
  const mf = refix(Buffer.from(v4)); mf.writeUInt16BE(0x2000, 6); refix(mf)
  const off = refix(Buffer.from(v4)); off.writeUInt16BE(0x0001, 6); refix(off)
  const tcp = Buffer.from(v4); tcp[9] = 6; refix(tcp)
  const longer = Buffer.concat([v4, Buffer.alloc(4)]) // trailing bytes past total length are ignored
  const noSum = Buffer.from(v4); noSum.writeUInt16BE(0, 26)
  const badLen = Buffer.from(v4); badLen.writeUInt16BE(10, 24)
  assert.deepEqual(decodeIpUdp(mf), { ok: false, fault: 'fragment' })
  assert.deepEqual(decodeIpUdp(off), { ok: false, fault: 'fragment' })
  assert.deepEqual(decodeIpUdp(tcp), { ok: false, fault: 'not_udp' })
  assert.equal(decodeIpUdp(longer).ok, true)
  assert.equal(decodeIpUdp(noSum).ok, true, 'IPv4 UDP checksum 0 = none')
  assert.deepEqual(decodeIpUdp(badLen), { ok: false, fault: 'bad_length' })
  assert.deepEqual(decodeIpUdp(v4.subarray(0, 25)), { ok: false, fault: 'bad_length' })
  assert.deepEqual(decodeIpUdp(Buffer.alloc(0)), { ok: false, fault: 'short' })
  assert.deepEqual(decodeIpUdp(hex('45')), { ok: false, fault: 'short' })
  assert.deepEqual(decodeIpUdp(hex('50')), { ok: false, fault: 'bad_version' })

  const v6 = encodeIpUdp({ src: '2001:db8::1', dst: '2001:db8::2', srcPort: 1, dstPort: 2, payload: Buffer.from('x') })
  const v6NoSum = Buffer.from(v6); v6NoSum.writeUInt16BE(0, 46)
  const withHbh = Buffer.concat([v6.subarray(0, 40), hex('1100 0000 0000 0000'), v6.subarray(40)])
  withHbh[6] = 0; withHbh.writeUInt16BE(v6.length - 40 + 8, 4)
  const withFrag = Buffer.from(withHbh); withFrag[6] = 44
  const withEsp = Buffer.from(withHbh); withEsp[40] = 50
  assert.deepEqual(decodeIpUdp(v6NoSum), { ok: false, fault: 'bad_checksum' }, 'IPv6 forbids checksum 0')
  assert.equal(decodeIpUdp(withHbh).ok, true, 'a Hop-by-Hop header is walked')
  assert.deepEqual(decodeIpUdp(withFrag), { ok: false, fault: 'fragment' })
  assert.deepEqual(decodeIpUdp(withEsp), { ok: false, fault: 'ext_header' })
  assert.deepEqual(decodeIpUdp(v6.subarray(0, 30)), { ok: false, fault: 'short' })
})

test('decode never throws on arbitrary bytes', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), fc.constantFrom(0x45, 0x46, 0x60), (b, first) => {
    const p = Buffer.from(b)
    if (p.length > 0) p[0] = first
    assert.equal(typeof decodeIpUdp(p).ok, 'boolean')
  }))
})

test('encoder refuses bad specs (caller bug)', () => {
  const ok = { src: '192.0.2.1', dst: '198.51.100.7', srcPort: 1, dstPort: 2, payload: Buffer.alloc(0) }
  assert.throws(() => encodeIpUdp({ ...ok, dst: '2001:db8::1' }), RangeError)
  assert.throws(() => encodeIpUdp({ ...ok, srcPort: 65536 }), RangeError)
  assert.throws(() => encodeIpUdp({ ...ok, ttl: 0 }), RangeError)
  assert.throws(() => encodeIpUdp({ ...ok, dscp: 64 }), RangeError)
  assert.throws(() => encodeIpUdp({ ...ok, payload: Buffer.alloc(65_508) }), RangeError)
})
