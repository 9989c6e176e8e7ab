/**
 * The Connect TLV's Remote Peer IP Address: always 16 bytes on the wire, IPv4 as IPv4-mapped
 * `::ffff:a.b.c.d` (RFC 8803, Connect TLV: the 16-byte field as in libconvert, the IPv4-mapped form as
 * in draft-05, see docs/convert.md; IPv4-mapped per RFC 4291 §2.5.5.2).
 */
import ipaddr from 'ipaddr.js'

/** A destination as the rest of the code sees it: IPv4-mapped addresses are unwrapped to family 4. */
export interface ConvertDestination {
  readonly family: 4 | 6
  /** Dotted quad, or RFC 5952 text (lower case, longest zero run compressed). */
  readonly address: string
}

/** Address classes a Connect must never name; answered with Error 1 (draft-05 example, O10). */
export const ForbiddenAddressClass = {
  Unspecified: 'unspecified',
  Loopback: 'loopback',
  Multicast: 'multicast',
  Broadcast: 'broadcast'
} as const
export type ForbiddenAddressClass = (typeof ForbiddenAddressClass)[keyof typeof ForbiddenAddressClass]

function isV4Mapped (b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false
  return b[10] === 0xff && b[11] === 0xff
}

/** 16 wire bytes → destination (never throws). */
export function destinationFromBytes (b: Uint8Array): ConvertDestination {
  if (isV4Mapped(b)) return { family: 4, address: `${b[12]}.${b[13]}.${b[14]}.${b[15]}` }
  const v6 = ipaddr.fromByteArray(Array.from(b.subarray(0, 16))) as ipaddr.IPv6
  return { family: 6, address: v6.toRFC5952String() }
}

/** Destination → 16 wire bytes, or undefined when the text is not a plain IP literal of that family. */
export function destinationToBytes (d: ConvertDestination): Uint8Array | undefined {
  if (d.family === 4) {
    if (!ipaddr.IPv4.isValidFourPartDecimal(d.address)) return undefined
    const out = new Uint8Array(16)
    out[10] = 0xff
    out[11] = 0xff
    out.set(ipaddr.IPv4.parse(d.address).toByteArray(), 12)
    return out
  }
  if (!ipaddr.IPv6.isValid(d.address)) return undefined
  const v6 = ipaddr.IPv6.parse(d.address)
  if (v6.zoneId !== undefined) return undefined
  return Uint8Array.from(v6.toByteArray())
}

/** The forbidden class of a wire address, if any (IPv4-mapped addresses are judged as IPv4). */
export function forbiddenAddressClass (b: Uint8Array): ForbiddenAddressClass | undefined {
  if (isV4Mapped(b)) return forbiddenV4Class(b[12] ?? 0, b[13] ?? 0, b[14] ?? 0, b[15] ?? 0)
  if (b[0] === 0xff) return 'multicast'
  for (let i = 0; i < 15; i++) if (b[i] !== 0) return undefined
  if (b[15] === 0) return 'unspecified'
  if (b[15] === 1) return 'loopback'
  return undefined
}

function forbiddenV4Class (x0: number, x1: number, x2: number, x3: number): ForbiddenAddressClass | undefined {
  if ((x0 | x1 | x2 | x3) === 0) return 'unspecified'
  if (x0 === 127) return 'loopback'
  if (x0 >= 224 && x0 <= 239) return 'multicast'
  if ((x0 & x1 & x2 & x3) === 255) return 'broadcast'
  return undefined
}
