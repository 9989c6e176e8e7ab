/**
 * Pure encoders and decoders for the kernel's socket address structs (Linux, every architecture
 * Node targets). No I/O: `net/sockopt.ts` passes these buffers to bind/getsockopt through FFI.
 *
 * ```
 * sockaddr_in  (16 bytes)          sockaddr_in6 (28 bytes)
 *  0  u16 LE family = 2 (AF_INET)   0  u16 LE family = 10 (AF_INET6)
 *  2  u16 BE port                   2  u16 BE port
 *  4  4 address bytes               4  u32 flowinfo (BE, as on the wire)
 *  8  8 zero bytes                  8  16 address bytes
 *                                  24  u32 scope id (host order, LE here)
 * sockaddr_storage (128 bytes): family first, then one of the above.
 * ```
 * The family is in host byte order (little-endian on every Node target), the port in network order.
 *
 * These are fixed-layout kernel structs whose length the kernel reports (optlen), not stream
 * framing, so decoders return the value itself, or `undefined` when the bytes are too short or
 * carry an unknown family (AF_UNSPEC for an unused slot). They never throw.
 */
import ipaddr from 'ipaddr.js'
import { HybridError } from '../errors.ts'

export const AddressFamily = { Inet: 2, Inet6: 10 } as const
export type AddressFamily = typeof AddressFamily[keyof typeof AddressFamily]

export const SockaddrSize = { in: 16, in6: 28, storage: 128 } as const

export interface SocketAddress {
  family: 4 | 6
  address: string
  port: number
  /** IPv6 only: flow label field as the kernel stores it. */
  flowInfo?: number
  /** IPv6 only: interface index of a link-local address. */
  scopeId?: number
}

export interface IpLiteral {
  family: 4 | 6
  bytes: Uint8Array
  /** Numeric zone (`fe80::1%3`), IPv6 only. */
  scopeId?: number
}

/**
 * Parse an IPv4 dotted quad or an IPv6 literal (optionally `%<numeric zone>`); `undefined` for
 * anything else, host names included. Brackets (`[::1]`) are not accepted.
 */
export function parseIpLiteral (host: string): IpLiteral | undefined {
  if (ipaddr.IPv4.isValidFourPartDecimal(host)) {
    return { family: 4, bytes: Uint8Array.from(ipaddr.IPv4.parse(host).toByteArray()) }
  }
  if (!host.includes(':') || !ipaddr.IPv6.isValid(host)) return undefined
  const parsed = ipaddr.IPv6.parse(host)
  const bytes = Uint8Array.from(parsed.toByteArray())
  if (parsed.zoneId === undefined) return { family: 6, bytes }
  if (!/^\d{1,10}$/.test(parsed.zoneId)) return undefined
  return { family: 6, bytes, scopeId: Number(parsed.zoneId) }
}

/** The family of an IP literal, or `undefined` for a name or garbage. */
export function ipFamily (host: string): 4 | 6 | undefined {
  return parseIpLiteral(host)?.family
}

/**
 * Encode `host:port` as `sockaddr_in` (IPv4 literal) or `sockaddr_in6` (IPv6 literal).
 * Throws `HYBRID_ERR_SOCKET_ADDRESS` for a host name, a malformed literal or a bad port: this
 * validates our own configuration or API input, never network bytes.
 */
export function encodeSockaddr (host: string, port: number): Buffer {
  const ip = parseIpLiteral(host)
  if (ip === undefined) {
    throw new HybridError('HYBRID_ERR_SOCKET_ADDRESS', `not an IP literal: ${JSON.stringify(host)} (resolve names before creating an MPTCP socket)`)
  }
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new HybridError('HYBRID_ERR_SOCKET_ADDRESS', `port out of range: ${String(port)}`)
  }
  if (ip.family === 4) {
    const b = Buffer.alloc(SockaddrSize.in)
    b.writeUInt16LE(AddressFamily.Inet, 0)
    b.writeUInt16BE(port, 2)
    b.set(ip.bytes, 4)
    return b
  }
  const b = Buffer.alloc(SockaddrSize.in6)
  b.writeUInt16LE(AddressFamily.Inet6, 0)
  b.writeUInt16BE(port, 2)
  b.set(ip.bytes, 8)
  b.writeUInt32LE(ip.scopeId ?? 0, 24)
  return b
}

function view (bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** Decode a `sockaddr_in` (at least 8 bytes: the zero padding may be cut off). */
export function decodeSockaddrIn (bytes: Uint8Array): SocketAddress | undefined {
  if (bytes.length < 8) return undefined
  const dv = view(bytes)
  if (dv.getUint16(0, true) !== AddressFamily.Inet) return undefined
  return { family: 4, address: formatIpv4(bytes.subarray(4, 8)), port: dv.getUint16(2, false) }
}

/** Decode a `sockaddr_in6` (24 bytes without the scope id are accepted; scope id then 0). */
export function decodeSockaddrIn6 (bytes: Uint8Array): SocketAddress | undefined {
  if (bytes.length < 24) return undefined
  const dv = view(bytes)
  if (dv.getUint16(0, true) !== AddressFamily.Inet6) return undefined
  return {
    family: 6,
    address: formatIpv6(bytes.subarray(8, 24)),
    port: dv.getUint16(2, false),
    flowInfo: dv.getUint32(4, false),
    scopeId: bytes.length >= 28 ? dv.getUint32(24, true) : 0
  }
}

/** Decode a `sockaddr_storage` (or any sockaddr) by its family field. */
export function decodeSockaddr (bytes: Uint8Array): SocketAddress | undefined {
  if (bytes.length < 2) return undefined
  const family = view(bytes).getUint16(0, true)
  if (family === AddressFamily.Inet) return decodeSockaddrIn(bytes)
  if (family === AddressFamily.Inet6) return decodeSockaddrIn6(bytes)
  return undefined
}

export function formatIpv4 (b: Uint8Array): string {
  return `${b[0] ?? 0}.${b[1] ?? 0}.${b[2] ?? 0}.${b[3] ?? 0}`
}

/**
 * RFC 5952 text form exactly as glibc's inet_ntop prints it (and so Node's `remoteAddress`):
 * lower-case hex, the first longest run of two or more zero groups as `::`, and a dotted tail for
 * IPv4-mapped (`::ffff:192.0.2.1`) and IPv4-compatible (`::192.0.2.1`) addresses.
 */
export function formatIpv6 (b: Uint8Array): string {
  const groups: number[] = []
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] ?? 0) << 8) | (b[i + 1] ?? 0))
  const [start, len] = longestZeroRun(groups)
  if (start === 0 && (len === 6 || (len === 5 && groups[5] === 0xffff))) {
    return `::${len === 5 ? 'ffff:' : ''}${formatIpv4(b.subarray(12, 16))}`
  }
  const hex = groups.map((g) => g.toString(16))
  if (len < 2) return hex.join(':')
  return `${hex.slice(0, start).join(':')}::${hex.slice(start + len).join(':')}`
}

function longestZeroRun (groups: readonly number[]): [number, number] {
  let best: [number, number] = [0, 0]
  let runStart = -1
  for (let i = 0; i <= groups.length; i++) {
    if (i < groups.length && groups[i] === 0) {
      if (runStart < 0) runStart = i
      continue
    }
    if (runStart >= 0 && i - runStart > best[1]) best = [runStart, i - runStart]
    runStart = -1
  }
  return best
}
