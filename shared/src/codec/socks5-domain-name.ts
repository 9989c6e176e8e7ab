/**
 * Classifies a SOCKS5 DOMAINNAME (RFC 1928 §5, ATYP 03) before anything resolves it.
 *
 * A name is never handed on as a name if some resolver could read it as an address: every
 * `inet_aton` spelling (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`) becomes an `ipv4` address and
 * every IPv6 literal (plain or `[bracketed]`) an `ipv6` address, so the destination policy vets the
 * address that will really be dialled. Everything else must be an LDH host name (letters, digits,
 * hyphen; punycode `xn--` labels are LDH), else the request is refused. See docs/socks5.md.
 */
import ipaddr from 'ipaddr.js'
import { parseInetAton } from './inet-aton.ts'

export { parseInetAton }

export type DomainNameResult =
  | { readonly ok: true, readonly type: 'ipv4' | 'ipv6' | 'domain', readonly host: string }
  | { readonly ok: false, readonly detail: string }

const MaxNameLength = 253
const MaxLabelLength = 63
const LdhLabel = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/
const NumericLabel = /^(?:[0-9]+|0x[0-9a-f]*)$/

/** Classify the raw DOMAINNAME octets. Never throws. */
export function classifyDomainName (octets: Uint8Array): DomainNameResult {
  if (octets.length === 0) return { ok: false, detail: 'empty name' }
  for (const b of octets) {
    // Printable ASCII only: rejects NUL, space, control characters, DEL and raw UTF-8.
    if (b <= 0x20 || b >= 0x7f) return { ok: false, detail: 'name contains a non-printable or non-ASCII byte' }
    if (b === 0x25) return { ok: false, detail: 'name contains "%" (scope id or escape)' }
  }
  const name = Buffer.from(octets.buffer, octets.byteOffset, octets.length).toString('latin1').toLowerCase()
  if (name.startsWith('[') || name.includes(':')) return classifyIpv6(name)
  const bare = name.endsWith('.') ? name.slice(0, -1) : name
  const v4 = parseInetAton(bare)
  if (v4 !== undefined) return { ok: true, type: 'ipv4', host: v4 }
  return classifyHostName(bare)
}

function classifyIpv6 (name: string): DomainNameResult {
  const inner = name.startsWith('[') && name.endsWith(']') ? name.slice(1, -1) : name
  if (!ipaddr.IPv6.isValid(inner)) return { ok: false, detail: 'name looks like an IPv6 literal but is not one' }
  return { ok: true, type: 'ipv6', host: ipaddr.IPv6.parse(inner).toRFC5952String() }
}

function classifyHostName (bare: string): DomainNameResult {
  if (bare.length === 0 || bare.length > MaxNameLength) return { ok: false, detail: 'name length out of range' }
  const labels = bare.split('.')
  for (const label of labels) {
    if (label.length > MaxLabelLength || !LdhLabel.test(label)) return { ok: false, detail: 'name is not an LDH host name' }
  }
  const last = labels[labels.length - 1] ?? ''
  // A numeric top label is no DNS name, and some stack might still read it as a number: refuse.
  if (NumericLabel.test(last)) return { ok: false, detail: 'numeric name that is not an IPv4 address' }
  return { ok: true, type: 'domain', host: bare }
}
