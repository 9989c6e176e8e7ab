/**
 * test/helpers/pcap.ts on synthesised capture files: Ethernet (+802.1Q), SLL and SLL2 link types,
 * IPv4 and IPv6 (with an extension header), both byte orders, nanosecond timestamps, flags,
 * options, payload; truncated records; garbage never throws.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { LinkType, parseLinkLayer, readPcap, tcpOptionKinds } from '../../helpers/pcap.ts'

const SYN_OPTIONS = [2, 4, 0x05, 0xb4, 1, 1, 34, 2, 30, 4, 0x01, 0x81] // MSS, NOP, NOP, TFO (empty), MP_CAPABLE (len 4)

function tcpHeader (opts: number[], flags: number, payload: Uint8Array): Uint8Array {
  const padded = [...opts]
  while (padded.length % 4 !== 0) padded.push(0)
  const h = new Uint8Array(20 + padded.length + payload.length)
  const v = new DataView(h.buffer)
  v.setUint16(0, 40_000)
  v.setUint16(2, 1234)
  v.setUint32(4, 0x01020304)
  v.setUint32(8, 0)
  h[12] = ((20 + padded.length) / 4) << 4
  h[13] = flags
  h.set(padded, 20)
  h.set(payload, 20 + padded.length)
  return h
}

function ipv4 (tcp: Uint8Array): Uint8Array {
  const p = new Uint8Array(20 + tcp.length)
  p[0] = 0x45
  new DataView(p.buffer).setUint16(2, p.length)
  p[8] = 64
  p[9] = 6
  p.set([198, 51, 100, 2], 12)
  p.set([203, 0, 113, 200], 16)
  p.set(tcp, 20)
  return p
}

function ipv6 (tcp: Uint8Array, withHopByHop = false): Uint8Array {
  const ext = withHopByHop ? Uint8Array.of(6, 0, 1, 4, 0, 0, 0, 0) : new Uint8Array(0)
  const p = new Uint8Array(40 + ext.length + tcp.length)
  p[0] = 0x60
  new DataView(p.buffer).setUint16(4, ext.length + tcp.length)
  p[6] = withHopByHop ? 0 : 6
  p[7] = 64
  p.set([0x20, 0x01, 0x0d, 0xb8, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], 8)
  p.set([0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 24)
  p.set(ext, 40)
  p.set(tcp, 40 + ext.length)
  return p
}

const concat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(parts.flatMap((p) => [...p]))
const ethernet = (ip: Uint8Array, type: number, vlan = false): Uint8Array =>
  concat(new Uint8Array(12), vlan ? Uint8Array.of(0x81, 0x00, 0, 7) : new Uint8Array(0), Uint8Array.of(type >> 8, type & 0xff), ip)
const sll = (ip: Uint8Array, type: number): Uint8Array => concat(new Uint8Array(14), Uint8Array.of(type >> 8, type & 0xff), ip)
const sll2 = (ip: Uint8Array, type: number): Uint8Array => concat(Uint8Array.of(type >> 8, type & 0xff), new Uint8Array(18), ip)

function pcapFile (linkType: number, frames: Uint8Array[], opts: { little?: boolean, nano?: boolean, snap?: number } = {}): Uint8Array {
  const little = opts.little ?? true
  const chunks: number[] = []
  const u32 = (n: number): void => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n, little); chunks.push(...b) }
  const u16 = (n: number): void => { const b = new Uint8Array(2); new DataView(b.buffer).setUint16(0, n, little); chunks.push(...b) }
  u32(opts.nano === true ? 0xa1b23c4d : 0xa1b2c3d4); u16(2); u16(4); u32(0); u32(0); u32(opts.snap ?? 262_144); u32(linkType)
  frames.forEach((f, i) => { u32(1_700_000_000 + i); u32(500_000); u32(f.length); u32(f.length); chunks.push(...f) })
  return Uint8Array.from(chunks)
}

const payload = new TextEncoder().encode('GET /1k HTTP/1.1\r\n')

test('Ethernet IPv4 SYN with data: addresses, ports, flags, option kinds, payload', () => {
  const file = readPcap(pcapFile(LinkType.ethernet, [ethernet(ipv4(tcpHeader(SYN_OPTIONS, 0x02, payload)), 0x0800)]))
  assert.equal(file.linkType, 1)
  assert.equal(file.packets.length, 1)
  const p = file.packets[0]!
  assert.equal(p.time, 1_700_000_000.5)
  const t = p.tcp
  assert.ok(t)
  assert.deepEqual([t.family, t.src, t.dst, t.srcPort, t.dstPort, t.seq], [4, '198.51.100.2', '203.0.113.200', 40_000, 1234, 0x01020304])
  assert.deepEqual([t.syn, t.hasAck, t.fin, t.rst], [true, false, false, false])
  assert.deepEqual(t.optionKinds, [2, 34, 30])
  assert.deepEqual(Buffer.from(t.payload).toString(), 'GET /1k HTTP/1.1\r\n')
})

test('802.1Q-tagged Ethernet, SLL and SLL2; IPv6 with a hop-by-hop header; big-endian and nanosecond files', () => {
  const v4 = ipv4(tcpHeader([], 0x12, new Uint8Array(0)))
  const v6 = ipv6(tcpHeader(SYN_OPTIONS, 0x02, payload), true)
  const tagged = readPcap(pcapFile(LinkType.ethernet, [ethernet(v4, 0x0800, true)], { little: false }))
  assert.deepEqual([tagged.packets[0]?.tcp?.syn, tagged.packets[0]?.tcp?.hasAck], [true, true])
  const cooked = readPcap(pcapFile(LinkType.linuxSll, [sll(v6, 0x86dd)]))
  assert.equal(cooked.packets[0]?.tcp?.src, '2001:db8:10::2')
  assert.equal(cooked.packets[0]?.tcp?.dst, '2001:db8:ffff::1')
  assert.equal(Buffer.from(cooked.packets[0]?.tcp?.payload ?? []).toString(), 'GET /1k HTTP/1.1\r\n')
  const nano = readPcap(pcapFile(LinkType.linuxSll2, [sll2(v4, 0x0800), sll2(v6, 0x86dd)], { nano: true }))
  assert.equal(nano.nanosecond, true)
  assert.equal(nano.packets.length, 2)
  assert.equal(nano.packets[0]?.time, 1_700_000_000.0005)
  assert.equal(nano.packets[1]?.tcp?.family, 6)
})

test('non-TCP frames come back without tcp; a truncated last record ends the list; bad header throws', () => {
  const udp = ipv4(new Uint8Array(8))
  udp[9] = 17
  const arp = ethernet(new Uint8Array(28), 0x0806)
  const good = ethernet(ipv4(tcpHeader([], 0x10, payload)), 0x0800)
  const bytes = pcapFile(LinkType.ethernet, [ethernet(udp, 0x0800), arp, good])
  const file = readPcap(bytes.subarray(0, bytes.length - 5))
  assert.equal(file.packets.length, 2)
  assert.equal(file.packets[0]?.tcp, undefined)
  assert.equal(file.packets[1]?.tcp, undefined)
  assert.equal(readPcap(bytes).packets[2]?.tcp?.hasAck, true)
  assert.throws(() => readPcap(new Uint8Array(10)), /24-byte/)
  assert.throws(() => readPcap(new Uint8Array(24)), /bad magic/)
})

test('snap-length cut: payload is what was captured; option walk stops at EOL or a bad length', () => {
  const frame = ethernet(ipv4(tcpHeader(SYN_OPTIONS, 0x02, payload)), 0x0800)
  const cut = frame.subarray(0, frame.length - 4)
  const t = parseLinkLayer(LinkType.ethernet, cut)
  assert.equal(Buffer.from(t?.payload ?? []).toString(), 'GET /1k HTTP/1')
  assert.deepEqual(tcpOptionKinds(Uint8Array.of(2, 4, 5, 180, 0, 34, 2)), [2])
  assert.deepEqual(tcpOptionKinds(Uint8Array.of(34, 9, 1, 2)), [])
})

test('arbitrary frames and link types never throw', () => {
  fc.assert(fc.property(fc.constantFrom(1, 113, 276, 0), fc.uint8Array({ maxLength: 120 }), (link, bytes) => {
    parseLinkLayer(link, bytes)
  }), { numRuns: 2000 })
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (tail) => {
    readPcap(concat(pcapFile(LinkType.ethernet, []), tail))
  }), { numRuns: 500 })
})
