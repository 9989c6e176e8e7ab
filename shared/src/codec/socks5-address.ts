/**
 * SOCKS5 address codec: the `ATYP ADDR PORT` tail shared by requests and replies (RFC 1928 §4–§6).
 *
 *   +------+----------+----------+
 *   | ATYP |   ADDR   |   PORT   |
 *   +------+----------+----------+
 *   |  1   | Variable |    2     |
 *   +------+----------+----------+
 *
 *   ATYP 01: ADDR is 4 octets (IPv4)
 *   ATYP 03: ADDR is LEN (1 octet) then LEN octets of name, no terminating NUL
 *   ATYP 04: ADDR is 16 octets (IPv6)
 *   PORT is in network byte order.
 */
import ipaddr from 'ipaddr.js'
import { HybridError } from '../errors.ts'
import type { ByteWriter } from './byte-writer.ts'
import { ByteReader } from './byte-reader.ts'
import { Socks5Atyp, Socks5Reply, fault } from './socks5-constants.ts'
import type { Decoded, Socks5Address } from './socks5-constants.ts'
import { classifyDomainName } from './socks5-domain-name.ts'

/**
 * `strict` is for destinations the server will dial: unknown ATYP, bad names and port 0 are faults,
 * and names that spell addresses become addresses. `lenient` is for bound addresses in replies, which
 * we only report: the name is kept as sent (latin1) and port 0 is fine.
 */
export type AddressMode = 'strict' | 'lenient'

/** Bytes `writeAddress` will produce (validates like `writeAddress`). */
export function addressLength (address: Socks5Address): number {
  const lengthOctet = address.type === 'domain' ? 1 : 0
  return 1 + lengthOctet + addressBytes(address).length + 2
}

/** Append `ATYP ADDR PORT`. Throws `HYBRID_ERR_SOCKS5_ENCODE` for a value that cannot be sent. */
export function writeAddress (w: ByteWriter, address: Socks5Address): void {
  const bytes = addressBytes(address)
  if (!Number.isInteger(address.port) || address.port < 0 || address.port > 0xffff) {
    throw new HybridError('HYBRID_ERR_SOCKS5_ENCODE', `port out of range: ${address.port}`)
  }
  if (address.type === 'domain') {
    w.u8(Socks5Atyp.DomainName).u8(bytes.length)
  } else {
    w.u8(address.type === 'ipv4' ? Socks5Atyp.Ipv4 : Socks5Atyp.Ipv6)
  }
  w.bytes(bytes).u16(address.port)
}

function addressBytes (address: Socks5Address): Uint8Array {
  switch (address.type) {
    case 'ipv4':
      if (!ipaddr.IPv4.isValidFourPartDecimal(address.host)) throw encodeError('not a dotted-quad IPv4 address', address.host)
      return Uint8Array.from(ipaddr.IPv4.parse(address.host).toByteArray())
    case 'ipv6':
      if (!ipaddr.IPv6.isValid(address.host) || address.host.includes('%')) throw encodeError('not an IPv6 address', address.host)
      return Uint8Array.from(ipaddr.IPv6.parse(address.host).toByteArray())
    case 'domain': {
      // A name is sent as ASCII; non-ASCII names must be converted to punycode by the caller.
      if (!/^[\x21-\x7e]{1,255}$/.test(address.host)) throw encodeError('domain must be 1–255 printable ASCII characters', address.host)
      return Buffer.from(address.host, 'latin1')
    }
  }
}

function encodeError (what: string, host: string): HybridError {
  return new HybridError('HYBRID_ERR_SOCKS5_ENCODE', `${what}: ${JSON.stringify(host.slice(0, 300))}`)
}

/** Decode `ATYP ADDR PORT` from the start of `bytes`; checks fields in wire order. Never throws. */
export function decodeAddress (bytes: Uint8Array, mode: AddressMode): Decoded<Socks5Address> {
  const r = new ByteReader(bytes)
  const atyp = r.u8()
  if (atyp === undefined) return undefined
  let head: { type: Socks5Address['type'], host: string } | undefined
  switch (atyp) {
    case Socks5Atyp.Ipv4: {
      const a = r.bytes(4)
      if (a === undefined) return undefined
      head = { type: 'ipv4', host: a.join('.') }
      break
    }
    case Socks5Atyp.Ipv6: {
      const a = r.bytes(16)
      if (a === undefined) return undefined
      head = { type: 'ipv6', host: new ipaddr.IPv6(Array.from(a)).toRFC5952String() }
      break
    }
    case Socks5Atyp.DomainName: {
      const name = decodeName(r, mode)
      if (name === undefined || !('type' in name)) return name
      head = name
      break
    }
    default:
      return fault('HYBRID_ERR_SOCKS5_ADDRESS_TYPE_NOT_SUPPORTED', Socks5Reply.AddressTypeNotSupported, `ATYP ${atyp} is not 1, 3 or 4`)
  }
  const port = r.u16()
  if (port === undefined) return undefined
  if (port === 0 && mode === 'strict') return fault('HYBRID_ERR_SOCKS5_BAD_PORT', Socks5Reply.NotAllowed, 'destination port 0')
  return { ok: true, value: { type: head.type, host: head.host, port }, bytesRead: r.offset }
}

type NameResult = { type: Socks5Address['type'], host: string } | Exclude<Decoded<never>, undefined>

function decodeName (r: ByteReader, mode: AddressMode): NameResult | undefined {
  const len = r.u8()
  if (len === undefined) return undefined
  if (len === 0 && mode === 'strict') return fault('HYBRID_ERR_SOCKS5_BAD_DOMAIN', Socks5Reply.HostUnreachable, 'DOMAINNAME length 0')
  const octets = r.bytes(len)
  if (octets === undefined) return undefined
  if (mode === 'lenient') return { type: 'domain', host: Buffer.from(octets).toString('latin1') }
  const c = classifyDomainName(octets)
  if (!c.ok) return fault('HYBRID_ERR_SOCKS5_BAD_DOMAIN', Socks5Reply.HostUnreachable, c.detail)
  return { type: c.type, host: c.host }
}
