/**
 * Source addresses of accepted connections: the key for back-off and trusted-prefix matching
 * (IPv4-mapped IPv6 from a dual-stack listener is folded to its IPv4 text) and matching against
 * configured prefixes (auth.trustedPrefixes). The coarser key of the per-source caps (IPv6
 * aggregated by `limits.perSourceIpv6PrefixLength`) is shared: shared/src/net/source-prefix.ts.
 */
import { ConfigError } from '../../../shared/src/errors.ts'
import { embeddedIpv4, parseInetAton, parseIpv6 } from '../policy/address.ts'
import type { IpAddress } from '../policy/address.ts'
import { buildPrefixSet } from '../policy/ranges.ts'
import type { PrefixSet } from '../policy/ranges.ts'

/** Canonical source key: `1.2.3.4` for IPv4 and mapped IPv6, RFC 5952 text for IPv6. */
export function sourceKey (remoteAddress: string | undefined): string {
  if (remoteAddress === undefined || remoteAddress === '') return 'unknown'
  const ip = parseIp(remoteAddress)
  if (ip === undefined) return remoteAddress
  const emb = ip.family === 6 ? embeddedIpv4(ip) : undefined
  return emb?.kind === 'mapped' ? emb.ip.text : ip.text
}

function parseIp (text: string): IpAddress | undefined {
  return text.includes(':') ? parseIpv6(text) : parseInetAton(text)
}

export class SourcePrefixes {
  readonly #set: PrefixSet
  readonly #empty: boolean

  /** Throws ConfigError naming `key` for an invalid prefix. */
  constructor (key: string, prefixes: readonly string[]) {
    const { set, invalid } = buildPrefixSet(prefixes)
    if (invalid.length > 0) {
      throw new ConfigError('HYBRID_ERR_CONFIG_INVALID', `${key}: invalid prefix ${JSON.stringify(invalid[0])}`, { detail: { key, invalid } })
    }
    this.#set = set
    this.#empty = prefixes.length === 0
  }

  /** Whether a source key (see `sourceKey`) lies in one of the prefixes. */
  has (source: string): boolean {
    if (this.#empty) return false
    const ip = parseIp(source)
    return ip !== undefined && this.#set.has(ip)
  }
}
