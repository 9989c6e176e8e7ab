/**
 * UDP in IPv4 (RFC 791, RFC 768) and IPv6 (RFC 8200) packets, as a TUN device (IFF_TUN | IFF_NO_PI)
 * hands them over: the CPE's UDP interception routes LAN UDP into a TUN device, reads whole IP
 * packets and writes the replies back with the original destination as their source
 * (docs/udp-wire.md). Pure: no I/O, never throws on a packet.
 *
 * What is refused, and why:
 * - fragments (IPv4 MF or a fragment offset, an IPv6 Fragment header): a flow table keyed by ports
 *   cannot place a non-first fragment; the kernel reassembles before routing when conntrack runs;
 * - IPv6 extension headers other than Hop-by-Hop, Routing and Destination Options (which are
 *   walked), and any header chain longer than the packet;
 * - a UDP length that disagrees with the IP payload length, and a bad UDP checksum (IPv4 may carry
 *   checksum 0 = none; IPv6 may not, RFC 8200 §8.1).
 */
import ipaddr from 'ipaddr.js'

export type IpFamily = 4 | 6

export interface UdpPacket {
  readonly family: IpFamily
  readonly src: string
  readonly dst: string
  readonly srcPort: number
  readonly dstPort: number
  /** IPv4 TTL or IPv6 hop limit. */
  readonly ttl: number
  /** The 6-bit DSCP of the TOS / traffic-class byte (RFC 2474). */
  readonly dscp: number
  /** A view into the packet (no copy). */
  readonly payload: Uint8Array
}

export type IpUdpFault = 'short' | 'bad_version' | 'not_udp' | 'fragment' | 'ext_header' | 'bad_length' | 'bad_checksum' | 'bad_header_checksum'
export type IpUdpDecode = { readonly ok: true, readonly packet: UdpPacket } | { readonly ok: false, readonly fault: IpUdpFault }

const UDP = 17
const IPV6_WALKED = new Set([0, 43, 60]) // Hop-by-Hop, Routing, Destination Options
const IPV6_FRAGMENT = 44
const UdpHeaderBytes = 8

/** One's-complement sum of 16-bit big-endian words (odd tail padded with zero). */
function sum16 (b: Uint8Array, start: number, end: number, acc = 0): number {
  let s = acc
  let i = start
  for (; i + 1 < end; i += 2) s += ((b[i] as number) << 8) | (b[i + 1] as number)
  if (i < end) s += (b[i] as number) << 8
  return s
}

function fold (s: number): number {
  let x = s
  while (x > 0xffff) x = (x & 0xffff) + Math.floor(x / 0x10000)
  return x
}

/** The UDP checksum over the pseudo-header and the UDP header + payload at `udp` … `udp + len`. */
function udpChecksum (b: Uint8Array, srcAt: number, addrLen: number, udp: number, len: number): number {
  let s = sum16(b, srcAt, srcAt + 2 * addrLen)
  s += UDP + len
  s = sum16(b, udp, udp + len, s)
  return fold(s)
}

export function decodeIpUdp (p: Uint8Array): IpUdpDecode {
  if (p.length < 1) return { ok: false, fault: 'short' }
  const v = (p[0] as number) >>> 4
  if (v === 4) return decode4(p)
  if (v === 6) return decode6(p)
  return { ok: false, fault: 'bad_version' }
}

function decode4 (p: Uint8Array): IpUdpDecode {
  if (p.length < 20) return { ok: false, fault: 'short' }
  const ihl = ((p[0] as number) & 0x0f) * 4
  const total = ((p[2] as number) << 8) | (p[3] as number)
  if (ihl < 20 || total < ihl || total > p.length) return { ok: false, fault: 'bad_length' }
  if (fold(sum16(p, 0, ihl)) !== 0xffff) return { ok: false, fault: 'bad_header_checksum' }
  if (p[9] !== UDP) return { ok: false, fault: 'not_udp' }
  const frag = ((p[6] as number) << 8) | (p[7] as number)
  if ((frag & 0x2000) !== 0 || (frag & 0x1fff) !== 0) return { ok: false, fault: 'fragment' }
  return udpAt(p, 4, 12, ihl, total, p[8] as number, (p[1] as number) >>> 2)
}

function decode6 (p: Uint8Array): IpUdpDecode {
  if (p.length < 40) return { ok: false, fault: 'short' }
  const payloadLen = ((p[4] as number) << 8) | (p[5] as number)
  const total = 40 + payloadLen
  if (total > p.length) return { ok: false, fault: 'bad_length' }
  let next = p[6] as number
  let at = 40
  while (IPV6_WALKED.has(next)) {
    if (at + 8 > total) return { ok: false, fault: 'bad_length' }
    const len = 8 + (p[at + 1] as number) * 8
    next = p[at] as number
    at += len
  }
  if (next === IPV6_FRAGMENT) return { ok: false, fault: 'fragment' }
  if (next !== UDP) return { ok: false, fault: at === 40 ? 'not_udp' : 'ext_header' }
  const tc = (((p[0] as number) & 0x0f) << 4) | ((p[1] as number) >>> 4)
  return udpAt(p, 6, 8, at, total, p[7] as number, tc >>> 2)
}

function udpAt (p: Uint8Array, family: IpFamily, srcAt: number, udp: number, total: number, ttl: number, dscp: number): IpUdpDecode {
  if (udp + UdpHeaderBytes > total) return { ok: false, fault: 'short' }
  const len = ((p[udp + 4] as number) << 8) | (p[udp + 5] as number)
  if (len < UdpHeaderBytes || udp + len !== total) return { ok: false, fault: 'bad_length' }
  const sum = ((p[udp + 6] as number) << 8) | (p[udp + 7] as number)
  const addrLen = family === 4 ? 4 : 16
  if (sum === 0 ? family === 6 : udpChecksum(p, srcAt, addrLen, udp, len) !== 0xffff) return { ok: false, fault: 'bad_checksum' }
  return {
    ok: true,
    packet: {
      family,
      src: addressOf(p.subarray(srcAt, srcAt + addrLen)),
      dst: addressOf(p.subarray(srcAt + addrLen, srcAt + 2 * addrLen)),
      srcPort: ((p[udp] as number) << 8) | (p[udp + 1] as number),
      dstPort: ((p[udp + 2] as number) << 8) | (p[udp + 3] as number),
      ttl,
      dscp,
      payload: p.subarray(udp + UdpHeaderBytes, total)
    }
  }
}

function addressOf (b: Uint8Array): string {
  return b.length === 4 ? `${b[0]}.${b[1]}.${b[2]}.${b[3]}` : (ipaddr.fromByteArray(Array.from(b)) as ipaddr.IPv6).toRFC5952String()
}

export interface UdpPacketSpec {
  readonly src: string
  readonly dst: string
  readonly srcPort: number
  readonly dstPort: number
  readonly payload: Uint8Array
  /** Default 64. */
  readonly ttl?: number
  /** Default 0. */
  readonly dscp?: number
  /** IPv4 DF bit; default true. Off lets the router fragment a reply larger than the next link's MTU. */
  readonly dontFragment?: boolean
  /** IPv4 identification (0 … 65535); default 0, which RFC 6864 allows only with DF. Give a counter when DF is off. */
  readonly id?: number
}

/** Largest UDP payload that fits one IPv4 packet (65 535 − 20 − 8). */
export const MaxIpv4UdpPayload = 65_507

/**
 * Builds one IPv4 or IPv6 packet (the family from the addresses) with a valid UDP checksum and, for
 * IPv4, DF set by default with ID 0 (RFC 6864: atomic datagrams), and a header checksum. Throws RangeError on an
 * invalid spec (caller bug).
 */
export function encodeIpUdp (s: UdpPacketSpec): Buffer {
  const { src, dst, ttl, dscp } = checkSpec(s)
  const v4 = src.length === 4
  const ipLen = v4 ? 20 : 40
  const udpLen = UdpHeaderBytes + s.payload.length
  if (udpLen > 0xffff || (v4 && ipLen + udpLen > 0xffff)) throw new RangeError('UDP payload too large for one packet')
  const out = Buffer.alloc(ipLen + udpLen)
  if (v4) writeIpv4Header(out, src, dst, ttl, dscp, udpLen, s.dontFragment ?? true, s.id ?? 0)
  else writeIpv6Header(out, src, dst, ttl, dscp, udpLen)
  out.writeUInt16BE(s.srcPort, ipLen)
  out.writeUInt16BE(s.dstPort, ipLen + 2)
  out.writeUInt16BE(udpLen, ipLen + 4)
  out.set(s.payload, ipLen + UdpHeaderBytes)
  const c = 0xffff - udpChecksum(out, v4 ? 12 : 8, src.length, ipLen, udpLen)
  out.writeUInt16BE(c === 0 ? 0xffff : c, ipLen + 6) // 0 is sent as 0xffff (RFC 768)
  return out
}

function checkSpec (s: UdpPacketSpec): { src: number[], dst: number[], ttl: number, dscp: number } {
  const src = ipaddr.parse(s.src).toByteArray()
  const dst = ipaddr.parse(s.dst).toByteArray()
  if (src.length !== dst.length) throw new RangeError('source and destination families differ')
  for (const port of [s.srcPort, s.dstPort]) if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`port out of range: ${port}`)
  const ttl = s.ttl ?? 64
  const dscp = s.dscp ?? 0
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > 255) throw new RangeError(`ttl out of range: ${ttl}`)
  if (!Number.isInteger(dscp) || dscp < 0 || dscp > 63) throw new RangeError(`dscp out of range: ${dscp}`)
  return { src, dst, ttl, dscp }
}

function writeIpv4Header (out: Buffer, src: number[], dst: number[], ttl: number, dscp: number, udpLen: number, df: boolean, id: number): void {
  out[0] = 0x45
  out[1] = dscp << 2
  out.writeUInt16BE(20 + udpLen, 2)
  out.writeUInt16BE(id & 0xffff, 4)
  out.writeUInt16BE(df ? 0x4000 : 0, 6)
  out[8] = ttl
  out[9] = UDP
  out.set(src, 12)
  out.set(dst, 16)
  out.writeUInt16BE(0xffff - fold(sum16(out, 0, 20)), 10)
}

function writeIpv6Header (out: Buffer, src: number[], dst: number[], ttl: number, dscp: number, udpLen: number): void {
  out[0] = 0x60 | (dscp >>> 2)
  out[1] = (dscp & 0x03) << 6
  out.writeUInt16BE(udpLen, 4)
  out[6] = UDP
  out[7] = ttl
  out.set(src, 8)
  out.set(dst, 24)
}
