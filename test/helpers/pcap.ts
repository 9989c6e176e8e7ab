/**
 * A tiny, pure reader of classic libpcap capture files (`tcpdump -w`), enough for the end-to-end
 * tests to look into TCP segments: link types Ethernet (1, with 802.1Q tags), Linux cooked SLL
 * (113, `-i any` on older tcpdump) and SLL2 (276), IPv4 and IPv6 (extension headers skipped),
 * TCP header with flags, options and payload. Both byte orders and the nanosecond variant of the
 * file header are accepted. Never throws on packet contents: a packet it cannot parse is returned
 * without `tcp` (and counted as such by the caller); only a bad file header throws.
 */

export const LinkType = { ethernet: 1, linuxSll: 113, linuxSll2: 276 } as const

export const TcpFlag = { fin: 0x01, syn: 0x02, rst: 0x04, psh: 0x08, ack: 0x10, urg: 0x20 } as const

export interface TcpSegment {
  readonly family: 4 | 6
  readonly src: string
  readonly dst: string
  readonly srcPort: number
  readonly dstPort: number
  readonly seq: number
  readonly ack: number
  /** Raw flag byte (TcpFlag bits). */
  readonly flags: number
  readonly syn: boolean
  readonly hasAck: boolean
  readonly fin: boolean
  readonly rst: boolean
  /** TCP option kinds present, in order (NOP and EOL left out). */
  readonly optionKinds: readonly number[]
  /** The options area raw (after the 20-byte fixed header). */
  readonly options: Uint8Array
  /** Segment payload (only what was captured: may be cut by the snap length). */
  readonly payload: Uint8Array
}

export interface PcapPacket {
  /** Capture time in seconds since the epoch (fractional). */
  readonly time: number
  readonly capturedLength: number
  readonly originalLength: number
  readonly data: Uint8Array
  /** Set when the packet is IPv4/IPv6 carrying TCP and the headers parse. */
  readonly tcp?: TcpSegment
}

export interface PcapFile {
  readonly linkType: number
  readonly snapLength: number
  readonly nanosecond: boolean
  readonly packets: readonly PcapPacket[]
}

const MAGIC_US = 0xa1b2c3d4
const MAGIC_NS = 0xa1b23c4d
const ETH_IPV4 = 0x0800
const ETH_IPV6 = 0x86dd
const ETH_VLAN = [0x8100, 0x88a8]
const PROTO_TCP = 6
const IPV6_EXT_HEADERS = new Set([0, 43, 60]) // hop-by-hop, routing, destination options

/** Parse a whole capture file. Throws on a bad or truncated file header; a truncated last record ends the list. */
export function readPcap (bytes: Uint8Array): PcapFile {
  if (bytes.length < 24) throw new Error('pcap: shorter than the 24-byte file header')
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const be = view.getUint32(0, false)
  const le = view.getUint32(0, true)
  const little = le === MAGIC_US || le === MAGIC_NS
  if (!little && be !== MAGIC_US && be !== MAGIC_NS) throw new Error(`pcap: bad magic 0x${be.toString(16)} (pcapng is not supported)`)
  const magic = little ? le : be
  const u32 = (at: number): number => view.getUint32(at, little)
  const snapLength = u32(16)
  const linkType = u32(20) & 0x0fff_ffff
  const nanosecond = magic === MAGIC_NS
  const packets: PcapPacket[] = []
  for (let at = 24; at + 16 <= bytes.length;) {
    const caplen = u32(at + 8)
    const start = at + 16
    if (start + caplen > bytes.length) break
    const data = bytes.subarray(start, start + caplen)
    const time = u32(at) + u32(at + 4) / (nanosecond ? 1e9 : 1e6)
    const tcp = parseLinkLayer(linkType, data)
    packets.push({ time, capturedLength: caplen, originalLength: u32(at + 12), data, ...(tcp === undefined ? {} : { tcp }) })
    at = start + caplen
  }
  return { linkType, snapLength, nanosecond, packets }
}

/** The TCP segment of one link-layer frame, or undefined. */
export function parseLinkLayer (linkType: number, frame: Uint8Array): TcpSegment | undefined {
  const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength)
  let etherType: number
  let offset: number
  if (linkType === LinkType.ethernet) {
    if (frame.length < 14) return undefined
    etherType = v.getUint16(12)
    offset = 14
    while (ETH_VLAN.includes(etherType) && frame.length >= offset + 4) {
      etherType = v.getUint16(offset + 2)
      offset += 4
    }
  } else if (linkType === LinkType.linuxSll) {
    if (frame.length < 16) return undefined
    etherType = v.getUint16(14)
    offset = 16
  } else if (linkType === LinkType.linuxSll2) {
    if (frame.length < 20) return undefined
    etherType = v.getUint16(0)
    offset = 20
  } else {
    return undefined
  }
  if (etherType === ETH_IPV4) return parseIpv4(frame.subarray(offset))
  if (etherType === ETH_IPV6) return parseIpv6(frame.subarray(offset))
  return undefined
}

function parseIpv4 (p: Uint8Array): TcpSegment | undefined {
  if (p.length < 20 || (p[0]! >> 4) !== 4) return undefined
  const ihl = (p[0]! & 0x0f) * 4
  const total = (p[2]! << 8) | p[3]!
  const fragment = ((p[6]! & 0x1f) << 8) | p[7]!
  if (ihl < 20 || p[9] !== PROTO_TCP || fragment !== 0) return undefined
  const end = Math.min(p.length, total >= ihl ? total : p.length)
  return parseTcp(4, ipv4Text(p.subarray(12, 16)), ipv4Text(p.subarray(16, 20)), p.subarray(ihl, end))
}

function parseIpv6 (p: Uint8Array): TcpSegment | undefined {
  if (p.length < 40 || (p[0]! >> 4) !== 6) return undefined
  const payloadLength = (p[4]! << 8) | p[5]!
  const end = Math.min(p.length, 40 + payloadLength)
  let next = p[6]!
  let at = 40
  while (IPV6_EXT_HEADERS.has(next)) {
    if (at + 8 > end) return undefined
    const len = (p[at + 1]! + 1) * 8
    next = p[at]!
    at += len
  }
  if (next !== PROTO_TCP || at > end) return undefined
  return parseTcp(6, ipv6Text(p.subarray(8, 24)), ipv6Text(p.subarray(24, 40)), p.subarray(at, end))
}

function parseTcp (family: 4 | 6, src: string, dst: string, t: Uint8Array): TcpSegment | undefined {
  if (t.length < 20) return undefined
  const v = new DataView(t.buffer, t.byteOffset, t.byteLength)
  const dataOffset = (t[12]! >> 4) * 4
  if (dataOffset < 20 || dataOffset > t.length) return undefined
  const flags = t[13]!
  const options = t.subarray(20, dataOffset)
  return {
    family,
    src,
    dst,
    srcPort: v.getUint16(0),
    dstPort: v.getUint16(2),
    seq: v.getUint32(4),
    ack: v.getUint32(8),
    flags,
    syn: (flags & TcpFlag.syn) !== 0,
    hasAck: (flags & TcpFlag.ack) !== 0,
    fin: (flags & TcpFlag.fin) !== 0,
    rst: (flags & TcpFlag.rst) !== 0,
    optionKinds: tcpOptionKinds(options),
    options,
    payload: t.subarray(dataOffset)
  }
}

/** Kinds of the options in a TCP options area (stops at EOL or a malformed length). */
export function tcpOptionKinds (opts: Uint8Array): number[] {
  const kinds: number[] = []
  for (let i = 0; i < opts.length;) {
    const kind = opts[i]!
    if (kind === 0) break
    if (kind === 1) { i++; continue }
    const len = opts[i + 1]
    if (len === undefined || len < 2 || i + len > opts.length) break
    kinds.push(kind)
    i += len
  }
  return kinds
}

function ipv4Text (b: Uint8Array): string {
  return Array.from(b).join('.')
}

/** RFC 5952 text (longest zero run ≥ 2 groups compressed, lower case). */
function ipv6Text (b: Uint8Array): string {
  const groups: number[] = []
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!)
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen) { best = i; bestLen = j - i }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (best < 0) return hex.join(':')
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`
}
