/**
 * Address ranges of the destination policy: the built-in deny list (special-purpose ranges) and
 * prefix sets from configuration, matched with `net.BlockList` (one list per family, so an IPv6
 * check never matches an IPv4 rule by accident; embedded IPv4 is unwrapped by the caller).
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net'
import type { IpAddress } from './address.ts'
import { parseIpv6 } from './address.ts'

/**
 * Classes of the built-in deny list. The first four are what RFC 8803 calls malformed
 * destinations (Convert Error 1); `special` is every other range (Convert Error 32).
 */
export type RangeClass = 'unspecified' | 'loopback' | 'multicast' | 'broadcast' | 'special'

export interface Prefix {
  readonly family: 4 | 6
  readonly network: string
  readonly length: number
}

/** Built-in deny list, checked in this order (the first class that matches names the refusal). */
export const DefaultDenyRanges: ReadonlyArray<{ readonly class: RangeClass, readonly prefixes: readonly string[] }> = [
  { class: 'unspecified', prefixes: ['0.0.0.0/8', '::/128'] },
  { class: 'loopback', prefixes: ['127.0.0.0/8', '::1/128'] },
  { class: 'multicast', prefixes: ['224.0.0.0/4', 'ff00::/8'] },
  { class: 'broadcast', prefixes: ['255.255.255.255/32'] },
  {
    class: 'special',
    prefixes: ['10.0.0.0/8', '100.64.0.0/10', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16', '240.0.0.0/4',
      'fc00::/7', 'fe80::/10']
  }
]

/**
 * Parse `a.b.c.d/n`, `x:y::/n` or a bare address (a /32 or /128). Configuration only, so strict:
 * dotted-quad decimal IPv4, no zone ids. Host bits may be set (BlockList masks them).
 * Returns undefined when invalid.
 */
export function parsePrefix (text: string): Prefix | undefined {
  const slash = text.indexOf('/')
  const addr = slash < 0 ? text : text.slice(0, slash)
  const lenText = slash < 0 ? undefined : text.slice(slash + 1)
  let family: 4 | 6
  let network: string
  if (isIPv4(addr)) {
    family = 4
    network = addr
  } else {
    const ip = isIPv6(addr) ? parseIpv6(addr) : undefined
    if (ip === undefined) return undefined
    family = 6
    network = ip.text
  }
  const max = family === 4 ? 32 : 128
  if (lenText === undefined) return { family, network, length: max }
  if (!/^(?:0|[1-9][0-9]{0,2})$/.test(lenText)) return undefined
  const length = Number(lenText)
  return length <= max ? { family, network, length } : undefined
}

/** A set of prefixes (both families) with a membership test. */
export class PrefixSet {
  readonly #v4 = new BlockList()
  readonly #v6 = new BlockList()
  readonly #prefixes: Prefix[] = []

  add (prefix: Prefix): void {
    const list = prefix.family === 4 ? this.#v4 : this.#v6
    list.addSubnet(prefix.network, prefix.length, prefix.family === 4 ? 'ipv4' : 'ipv6')
    this.#prefixes.push(prefix)
  }

  has (ip: IpAddress): boolean {
    if (this.#prefixes.length === 0) return false
    return ip.family === 4 ? this.#v4.check(ip.text, 'ipv4') : this.#v6.check(ip.text, 'ipv6')
  }

  get size (): number {
    return this.#prefixes.length
  }

  /** `network/length` strings, for logs and the management API. */
  list (): string[] {
    return this.#prefixes.map((p) => `${p.network}/${p.length}`)
  }
}

/**
 * Build a set from prefix strings. Invalid entries are returned in `invalid` (the caller turns
 * them into one configuration error naming the key).
 */
export function buildPrefixSet (texts: readonly string[]): { set: PrefixSet, invalid: string[] } {
  const set = new PrefixSet()
  const invalid: string[] = []
  for (const t of texts) {
    const p = parsePrefix(t)
    if (p === undefined) invalid.push(t)
    else set.add(p)
  }
  return { set, invalid }
}

/** The built-in deny list as one set per class, in check order. */
export function buildDefaultDenySets (): ReadonlyArray<{ readonly class: RangeClass, readonly set: PrefixSet }> {
  return DefaultDenyRanges.map((r) => ({ class: r.class, set: buildPrefixSet(r.prefixes).set }))
}
