/**
 * The concentrator's destination policy, shared by SOCKS5, Convert and transparent mode
 * (docs/destination-policy.md; docs/design/threat-model.md, threats 8–10). Deny by default:
 *
 *  1. canonicalise (every inet_aton form, IPv6 text, brackets; zone ids and bad names refused);
 *  2. check the port (range, `deniedPorts`, `allowedPorts`);
 *  3. names: `localhost` refused, else resolve A + AAAA once (c-ares, capped, cached);
 *  4. vet EVERY address (and the IPv4 embedded in mapped / compatible / NAT64 / 6to4 forms):
 *     own addresses (configured, listen addresses, and every address of the host's network
 *     namespace unless `hostAddresses.refuse: false` or listed in `hostAddresses.except`) and
 *     infrastructure prefixes → ssrf_blocked (never overridable by `allowPrefixes`);
 *     `denyPrefixes` → acl_denied; built-in special-purpose ranges → ssrf_blocked unless the
 *     address is in `allowPrefixes`. One denied address denies the whole request;
 *  5. allowed → the vetted literals. The caller connects to one of them (autoSelectFamily: false)
 *     and never hands the name to `net.connect`, which would resolve it again.
 *
 * Never throws on a request; configuration errors throw `ConfigError` from the constructor.
 */
import { isIPv4 } from 'node:net'
import { ConfigError } from '../../../shared/src/errors.ts'
import type { AddressMembership } from '../../../shared/src/net/host-addresses.ts'
import type { EndpointAddress } from '../../../shared/src/net/endpoint.ts'
import type { IpAddress } from './address.ts'
import { canonicaliseDestination, embeddedIpv4, ipFromBytes, parseInetAton, parseIpv6 } from './address.ts'
import type { DestinationPolicyConfig, DnsPolicyConfig } from './destination-policy-schema.ts'
import type { PolicyRefusal } from './refusal.ts'
import { refuse } from './refusal.ts'
import type { PrefixSet, RangeClass } from './ranges.ts'
import { buildDefaultDenySets, buildPrefixSet } from './ranges.ts'
import type { HostResolver, ResolvedAddress } from './resolver.ts'
import { createCaresBackend, createHostResolver } from './resolver.ts'

/** A destination literal the policy allows (connected to with the request's port). */
export type VettedAddress = EndpointAddress

export interface PolicyAllowed {
  readonly allowed: true
  /** Canonical name, or the canonical text of the literal. */
  readonly host: string
  readonly port: number
  /** Vetted literals (A answers first, then AAAA); connect only to these. Never empty. */
  readonly addresses: readonly VettedAddress[]
}

export type PolicyDecision = PolicyAllowed | PolicyRefusal

/** The schema's config; omitted keys take the schema defaults. */
export type DestinationPolicyInput = Partial<Omit<DestinationPolicyConfig, 'dns' | 'hostAddresses'>> & {
  readonly dns?: Partial<DnsPolicyConfig>
  readonly hostAddresses?: Partial<DestinationPolicyConfig['hostAddresses']>
}

export interface DestinationPolicyOptions {
  readonly config?: DestinationPolicyInput
  /** Addresses the daemon learns at run time (listen and join addresses), refused like `ownAddresses`. */
  readonly ownAddresses?: readonly string[]
  /** The addresses of the host's network namespace, kept current (HostAddresses); used when `hostAddresses.refuse`. */
  readonly hostAddresses?: AddressMembership
  /** Injected resolver (tests); default: c-ares with `config.dns`. */
  readonly resolver?: HostResolver
}

const DefaultDns: DnsPolicyConfig = {
  servers: [],
  timeoutMs: 2000,
  tries: 2,
  deadlineMs: 4000,
  maxConcurrent: 64,
  maxPerSource: 8,
  maxQueued: 256,
  maxTtlSeconds: 300,
  negativeTtlSeconds: 30,
  maxCacheEntries: 10_000
}

function prefixSet (key: string, texts: readonly string[] | undefined): PrefixSet {
  const { set, invalid } = buildPrefixSet(texts ?? [])
  if (invalid.length > 0) {
    throw new ConfigError('HYBRID_ERR_CONFIG_INVALID', `policy.${key}: invalid prefix ${JSON.stringify(invalid[0])}`, { detail: { key, invalid } })
  }
  return set
}

function defaultResolver (dns: DnsPolicyConfig): HostResolver {
  try {
    const backend = createCaresBackend({ servers: dns.servers, timeoutMs: dns.timeoutMs, tries: dns.tries })
    return createHostResolver({ backend, limits: dns })
  } catch (cause) {
    throw new ConfigError('HYBRID_ERR_CONFIG_INVALID', 'policy.dns.servers: invalid server', { cause })
  }
}

function parseAnswer (a: ResolvedAddress): IpAddress | undefined {
  if (a.family === 4) return isIPv4(a.address) ? parseInetAton(a.address) : undefined
  return parseIpv6(a.address)
}

export class DestinationPolicy {
  readonly #own: PrefixSet
  readonly #host: AddressMembership | undefined
  readonly #hostExcept: PrefixSet
  readonly #infrastructure: PrefixSet
  readonly #deny: PrefixSet
  readonly #allow: PrefixSet
  readonly #defaults = buildDefaultDenySets()
  readonly #deniedPorts: ReadonlySet<number>
  readonly #allowedPorts: ReadonlySet<number>
  readonly #resolver: HostResolver

  constructor (options: DestinationPolicyOptions = {}) {
    const c = options.config ?? {}
    this.#own = prefixSet('ownAddresses', [...(c.ownAddresses ?? []), ...(options.ownAddresses ?? [])])
    this.#host = c.hostAddresses?.refuse === false ? undefined : options.hostAddresses
    this.#hostExcept = prefixSet('hostAddresses.except', c.hostAddresses?.except)
    this.#infrastructure = prefixSet('infrastructurePrefixes', c.infrastructurePrefixes)
    this.#deny = prefixSet('denyPrefixes', c.denyPrefixes)
    this.#allow = prefixSet('allowPrefixes', c.allowPrefixes)
    this.#deniedPorts = new Set(c.deniedPorts ?? [])
    this.#allowedPorts = new Set(c.allowedPorts ?? [])
    this.#resolver = options.resolver ?? defaultResolver({ ...DefaultDns, ...c.dns })
  }

  /**
   * Literal destinations only (Convert Connect, transparent mode, SOCKS5 ATYP 1/4): 4 or 16
   * bytes, or IP text in any form. A host name is refused (invalid_destination). No DNS.
   */
  checkAddress (address: string | Uint8Array, port: number): PolicyDecision {
    let ip: IpAddress | undefined
    if (typeof address === 'string') {
      const d = canonicaliseDestination(address)
      if (d.kind === 'scoped') return refuse('ssrf_blocked', d.detail)
      if (d.kind === 'ip') ip = d.ip
    } else {
      ip = ipFromBytes(address)
    }
    if (ip === undefined) return refuse('invalid_destination', 'an IP address literal is required')
    const badPort = this.#portRefusal(port)
    if (badPort !== undefined) return badPort
    const v = this.vet(ip)
    return 'allowed' in v ? v : { allowed: true, host: ip.text, port, addresses: [v] }
  }

  /** Any destination string (SOCKS5 DOMAINNAME or literal); `source` keys the per-source DNS cap. */
  async check (host: string, port: number, source: string): Promise<PolicyDecision> {
    const d = canonicaliseDestination(host)
    if (d.kind === 'invalid') return refuse('invalid_destination', d.detail)
    if (d.kind === 'scoped') return refuse('ssrf_blocked', d.detail)
    const badPort = this.#portRefusal(port)
    if (badPort !== undefined) return badPort
    if (d.kind === 'ip') {
      const v = this.vet(d.ip)
      return 'allowed' in v ? v : { allowed: true, host: d.ip.text, port, addresses: [v] }
    }
    if (d.name === 'localhost' || d.name.endsWith('.localhost')) return refuse('ssrf_blocked', `${d.name} is a loopback name`, true)
    return this.#checkName(d.name, port, source)
  }

  async #checkName (name: string, port: number, source: string): Promise<PolicyDecision> {
    let r
    try {
      r = await this.#resolver.resolve(name, source)
    } catch {
      return refuse('dns_failed', `${name}: resolver error`)
    }
    if (!r.ok) return refuse(r.reason, `${name}: ${r.detail}`)
    const addresses: VettedAddress[] = []
    for (const a of r.addresses) {
      const ip = parseAnswer(a)
      if (ip === undefined) return refuse('dns_failed', `${name}: unparseable answer`)
      const v = this.vet(ip)
      if ('allowed' in v) return { ...v, detail: `${name} resolves to ${v.detail}` }
      if (!addresses.some((x) => x.address === v.address)) addresses.push(v)
    }
    if (addresses.length === 0) return refuse('dns_failed', `${name}: no addresses`)
    return { allowed: true, host: name, port, addresses }
  }

  /** Vet one address: the literal to connect to, or the refusal. Mapped IPv6 connects over IPv4. */
  vet (ip: IpAddress): VettedAddress | PolicyRefusal {
    const emb = embeddedIpv4(ip)
    const candidates = emb === undefined ? [ip] : [ip, emb.ip]
    const shown = emb === undefined ? ip.text : `${ip.text} (${emb.kind} ${emb.ip.text})`
    const inSet = (s: PrefixSet): boolean => candidates.some((c) => s.has(c))
    if (inSet(this.#own) || candidates.some((c) => this.#isHostAddress(c))) {
      return refuse('ssrf_blocked',
      `${shown} is an address of this concentrator`)
    }
    if (inSet(this.#infrastructure)) return refuse('ssrf_blocked', `${shown} is in an infrastructure prefix`)
    if (inSet(this.#deny)) return refuse('acl_denied', `${shown} is in a denied prefix`)
    for (const c of candidates) {
      if (this.#allow.has(c)) continue
      const cls = this.#defaultClass(c)
      if (cls !== undefined) return refuse('ssrf_blocked', `${shown} is in a ${cls} range`, cls !== 'special')
    }
    if (emb?.kind === 'mapped') return { address: emb.ip.text, family: 4 }
    return { address: ip.text, family: ip.family }
  }

  /** Shutdown: cancel outstanding DNS lookups so the process can exit without waiting for c-ares. */
  close (): void {
    this.#resolver.close?.()
  }

  #isHostAddress (ip: IpAddress): boolean {
    return this.#host !== undefined && this.#host.has(ip.text) && !this.#hostExcept.has(ip)
  }

  #defaultClass (ip: IpAddress): RangeClass | undefined {
    return this.#defaults.find((d) => d.set.has(ip))?.class
  }

  #portRefusal (port: number): PolicyRefusal | undefined {
    if (!Number.isInteger(port) || port < 1 || port > 65535) return refuse('invalid_destination', 'port out of range 1-65535')
    if (this.#deniedPorts.has(port)) return refuse('port_denied', `port ${port} is denied`)
    if (this.#allowedPorts.size > 0 && !this.#allowedPorts.has(port)) return refuse('port_denied', `port ${port} is not allowed`)
    return undefined
  }
}

export function createDestinationPolicy (options: DestinationPolicyOptions = {}): DestinationPolicy {
  return new DestinationPolicy(options)
}
