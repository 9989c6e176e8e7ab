/**
 * Canonicalisation of destination strings (SOCKS5 DOMAINNAME / IPv4 / IPv6, Convert, transparent).
 *
 * Why our own parser: the C library's `inet_aton` (used by `net.connect` via getaddrinfo, curl,
 * ping …) accepts `2130706433`, `0x7f.1`, `0177.0.0.1` and `127.1` as 127.0.0.1, so a check that
 * only knows dotted-quad lets them through. Every such form is parsed here as the IPv4 address it
 * denotes. A name whose last label is a number (the WHATWG URL "ends in a number" rule) but is not
 * a valid inet_aton form is refused rather than sent to DNS. ipaddr.js is deliberately not used
 * for IPv6 bytes: it reads the deprecated `::a.b.c.d` as `::ffff:a.b.c.d`; `net.isIPv6` validates
 * and the small parser below produces the 16 bytes (the unit tests cross-check it with ipaddr.js).
 *
 * Pure functions: no I/O, never throw on input.
 */
import { isIPv6 } from 'node:net'
import { parseInetAtonBytes } from '../../../shared/src/codec/inet-aton.ts'

/** An IP address as bytes (4 or 16) plus its canonical text (RFC 5952 for IPv6). */
export interface IpAddress {
  readonly family: 4 | 6
  readonly bytes: Uint8Array
  readonly text: string
}

export type CanonicalDestination =
  | { readonly kind: 'ip', readonly ip: IpAddress }
  | { readonly kind: 'name', readonly name: string }
  | { readonly kind: 'scoped', readonly detail: string }
  | { readonly kind: 'invalid', readonly detail: string }

const MAX_NAME_LENGTH = 253
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/
const NUMERIC_LABEL = /^(?:[0-9]+|0x[0-9a-f]*)$/i

/**
 * Classify a destination string: an IP literal (any inet_aton or IPv6 form, brackets removed), a
 * normalised host name (lowercase, one trailing dot removed, LDH labels), a scoped IPv6 literal
 * (zone id, refused by the policy) or invalid.
 */
export function canonicaliseDestination (input: string): CanonicalDestination {
  if (input.length === 0) return { kind: 'invalid', detail: 'empty destination' }
  if (input.length > 1024) return { kind: 'invalid', detail: 'destination too long' }
  let s = input
  const bracketed = s.startsWith('[') && s.endsWith(']')
  if (bracketed) s = s.slice(1, -1)
  if (bracketed || s.includes(':')) return classifyIpv6(s)
  if (s.includes('%')) return { kind: 'invalid', detail: 'invalid character in name' }
  if (s.endsWith('.')) s = s.slice(0, -1)
  // ASCII only: String#toLowerCase maps e.g. the Kelvin sign U+212A to 'k'.
  s = s.replace(/[A-Z]/g, (c) => c.toLowerCase())
  const labels = s.split('.')
  const last = labels[labels.length - 1] ?? ''
  if (NUMERIC_LABEL.test(last)) {
    const ip = parseInetAton(s)
    return ip === undefined ? { kind: 'invalid', detail: 'numeric name is not a valid IPv4 address' } : { kind: 'ip', ip }
  }
  if (s.length === 0 || s.length > MAX_NAME_LENGTH) return { kind: 'invalid', detail: 'name length out of range' }
  if (!labels.every((l) => LABEL.test(l))) return { kind: 'invalid', detail: 'name is not a valid host name' }
  return { kind: 'name', name: s }
}

function classifyIpv6 (s: string): CanonicalDestination {
  if (s.includes('%')) return { kind: 'scoped', detail: 'scoped IPv6 address (zone id)' }
  const ip = parseIpv6(s)
  return ip === undefined ? { kind: 'invalid', detail: 'not a valid IPv6 address' } : { kind: 'ip', ip }
}

/**
 * Every form the C library's inet_aton accepts (shared/src/codec/inet-aton.ts), as an IpAddress.
 * undefined if invalid.
 */
export function parseInetAton (s: string): IpAddress | undefined {
  const bytes = parseInetAtonBytes(s)
  return bytes === undefined ? undefined : ipv4FromBytes(bytes)
}

/** Strict dotted-quad decimal (used inside IPv6 literals and configuration). */
function parseDottedQuad (s: string): number[] | undefined {
  const parts = s.split('.')
  if (parts.length !== 4 || !parts.every((p) => /^(?:0|[1-9][0-9]{0,2})$/.test(p))) return undefined
  const values = parts.map(Number)
  return values.every((v) => v <= 255) ? values : undefined
}

function parseGroups (s: string): number[] | undefined {
  if (s.length === 0) return []
  const out: number[] = []
  const parts = s.split(':')
  for (const [i, p] of parts.entries()) {
    if (p.includes('.')) {
      const q = i === parts.length - 1 ? parseDottedQuad(p) : undefined
      if (q === undefined) return undefined
      out.push(((q[0] ?? 0) << 8) | (q[1] ?? 0), ((q[2] ?? 0) << 8) | (q[3] ?? 0))
    } else if (/^[0-9a-f]{1,4}$/i.test(p)) {
      out.push(parseInt(p, 16))
    } else {
      return undefined
    }
  }
  return out
}

/** IPv6 text (no brackets, no zone id) → address; undefined if `net.isIPv6` or the parser disagree. */
export function parseIpv6 (s: string): IpAddress | undefined {
  if (!isIPv6(s) || s.includes('%')) return undefined
  const dc = s.indexOf('::')
  let groups: number[] | undefined
  if (dc < 0) {
    groups = parseGroups(s)
  } else {
    const head = parseGroups(s.slice(0, dc))
    const tail = s.slice(dc + 2).includes('::') ? undefined : parseGroups(s.slice(dc + 2))
    if (head === undefined || tail === undefined || head.length + tail.length > 7) return undefined
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail]
  }
  if (groups?.length !== 8) return undefined
  const bytes = new Uint8Array(16)
  groups.forEach((g, i) => { bytes[2 * i] = g >> 8; bytes[2 * i + 1] = g & 0xff })
  return ipv6FromBytes(bytes)
}

export function ipv4FromBytes (bytes: Uint8Array): IpAddress {
  const b = Uint8Array.from(bytes.subarray(0, 4))
  return { family: 4, bytes: b, text: Array.from(b).join('.') }
}

export function ipv6FromBytes (bytes: Uint8Array): IpAddress {
  const b = Uint8Array.from(bytes.subarray(0, 16))
  return { family: 6, bytes: b, text: formatIpv6(b) }
}

/** Wire bytes (4 or 16, e.g. a Convert Connect TLV or SOCKS5 ATYP 1/4) → address; else undefined. */
export function ipFromBytes (bytes: Uint8Array): IpAddress | undefined {
  if (bytes.length === 4) return ipv4FromBytes(bytes)
  if (bytes.length === 16) return ipv6FromBytes(bytes)
  return undefined
}

/** RFC 5952 text: lowercase, no leading zeros, the longest run (≥ 2) of zero groups as `::`. */
function formatIpv6 (b: Uint8Array): string {
  const g: number[] = []
  for (let i = 0; i < 16; i += 2) g.push(((b[i] ?? 0) << 8) | (b[i + 1] ?? 0))
  let bestStart = -1
  let bestLen = 1
  for (let i = 0; i < 8;) {
    let j = i
    while (j < 8 && g[j] === 0) j++
    if (j - i > bestLen) { bestStart = i; bestLen = j - i }
    i = j === i ? i + 1 : j
  }
  const hex = g.map((x) => x.toString(16))
  if (bestStart < 0) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`
}

/** Which IPv4-in-IPv6 form an address uses, if any. */
export type EmbeddingKind = 'mapped' | 'compatible' | 'translated' | 'nat64' | '6to4'

function isZero (b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false
  return true
}

/** Each embedding: does the address use it, and where the IPv4 address sits. */
const Embeddings: ReadonlyArray<{ kind: EmbeddingKind, test: (b: Uint8Array) => boolean, at: number }> = [
  { kind: 'mapped', at: 12, test: (b) => isZero(b, 0, 10) && b[10] === 0xff && b[11] === 0xff },
  { kind: 'compatible', at: 12, test: (b) => isZero(b, 0, 12) },
  { kind: 'translated', at: 12, test: (b) => isZero(b, 0, 8) && b[8] === 0xff && b[9] === 0xff && isZero(b, 10, 12) },
  { kind: 'nat64', at: 12, test: (b) => b[0] === 0 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && isZero(b, 4, 12) },
  { kind: '6to4', at: 2, test: (b) => b[0] === 0x20 && b[1] === 0x02 }
]

/**
 * The IPv4 address embedded in an IPv6 address: mapped `::ffff:0:0/96`, compatible `::/96`,
 * translated `::ffff:0:0:0/96` (RFC 6145), NAT64 `64:ff9b::/96` and 6to4 `2002::/16`.
 */
export function embeddedIpv4 (ip: IpAddress): { kind: EmbeddingKind, ip: IpAddress } | undefined {
  if (ip.family !== 6) return undefined
  const e = Embeddings.find((x) => x.test(ip.bytes))
  return e === undefined ? undefined : { kind: e.kind, ip: ipv4FromBytes(ip.bytes.subarray(e.at, e.at + 4)) }
}
