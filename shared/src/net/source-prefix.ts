/**
 * The key a per-source connection cap counts a source address under, for both daemons' caps (the
 * concentrator's accept path and every management listener): IPv4 as is (/32), IPv6 masked to a
 * prefix. One host usually holds a whole IPv6 /64, so a /128 key let one Internet host fill the
 * concentrator's global cap with 12 addresses of one /64 (issue 18), and a LAN host could do the
 * same to a management listener.
 */
import ipaddr from 'ipaddr.js'

/** The default IPv6 prefix length of one source (`limits.perSourceIpv6PrefixLength`, `management.limits.perSourceIpv6PrefixLength`). */
export const DEFAULT_SOURCE_IPV6_PREFIX_LENGTH = 64

/**
 * `source` (an IPv4 or IPv6 address as text; IPv4-mapped IPv6 should already be unwrapped to IPv4)
 * → its caps key: IPv4 unchanged, IPv6 masked to `v6PrefixLength` bits as `2001:db8:1:2::/64`
 * (RFC 5952 text; `/128` gives the bare address). Anything that is not an address comes back
 * unchanged, so it still counts as a source of its own.
 */
export function capSourceKey (source: string, v6PrefixLength: number): string {
  if (!source.includes(':') || !ipaddr.IPv6.isValid(source)) return source
  const ip = ipaddr.IPv6.parse(source)
  if (v6PrefixLength >= 128) return ip.toRFC5952String()
  const bytes = ip.toByteArray()
  const keep = Math.max(0, v6PrefixLength)
  for (let bit = keep; bit < 128; bit++) {
    const i = bit >> 3
    bytes[i] = (bytes[i] ?? 0) & ~(0x80 >> (bit & 7))
  }
  return `${new ipaddr.IPv6(bytes).toRFC5952String()}/${keep}`
}
