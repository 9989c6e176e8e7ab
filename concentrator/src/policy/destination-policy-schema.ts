/**
 * Configuration of the destination policy, embedded by concentrator/src/config/config.ts under `policy:`.
 * Every key has a default, so `policy: {}` is the safe deny-by-default policy.
 */
import { Type, type Static } from 'typebox'

const PrefixList = (description: string) => Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { default: [], maxItems: 4096, description })
const PortList = (description: string) => Type.Array(Type.Integer({ minimum: 1, maximum: 65535 }), { default: [], maxItems: 1024, description })

export const DnsPolicySchema = Type.Object({
  servers: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
    default: [],
    maxItems: 8,
    description: 'DNS servers (`ip`, `ip:port`, `[ipv6]:port`); empty = /etc/resolv.conf'
  }),
  timeoutMs: Type.Integer({ minimum: 100, maximum: 30_000, default: 2000, unit: 'ms', description: 'c-ares per-try timeout, ms' }),
  tries: Type.Integer({ minimum: 1, maximum: 5, default: 2, description: 'c-ares tries per server' }),
  deadlineMs: Type.Integer({ minimum: 100, maximum: 60_000, default: 4000, unit: 'ms', description: 'whole lookup incl. waiting for a slot, ms' }),
  maxConcurrent: Type.Integer({ minimum: 1, maximum: 4096, default: 64, description: 'lookups in flight, all sources' }),
  maxPerSource: Type.Integer({ minimum: 1, maximum: 1024, default: 8, description: 'lookups in flight per source' }),
  maxQueued: Type.Integer({ minimum: 0, maximum: 65_536, default: 256, description: 'requests waiting for a lookup slot' }),
  maxTtlSeconds: Type.Integer({ minimum: 0, maximum: 300, default: 300, description: 'cap on positive cache lifetime, s' }),
  negativeTtlSeconds: Type.Integer({ minimum: 0, maximum: 300, default: 30, description: 'lifetime of a cached failure, s' }),
  maxCacheEntries: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 10_000, description: 'names held in the cache' })
}, { additionalProperties: false, default: {}, description: 'resolver of destination names (c-ares) and its limits' })

export const DestinationPolicySchema = Type.Object({
  allowPrefixes: PrefixList('prefixes allowed although in the built-in deny list (e.g. a customer RFC 1918 network)'),
  denyPrefixes: PrefixList('extra prefixes to refuse (reason acl_denied); wins over allowPrefixes'),
  infrastructurePrefixes: PrefixList('operator infrastructure; always refused (reason ssrf_blocked), allowPrefixes cannot override'),
  ownAddresses: PrefixList('the concentrator\'s own service and join addresses; always refused (reason ssrf_blocked)'),
  hostAddresses: Type.Object({
    refuse: Type.Boolean({
      default: true,
      description: 'refuse every address configured in the concentrator\'s network namespace (any interface, read at start and on every address change; reason ssrf_blocked)'
    }),
    except: PrefixList('host addresses subscribers may still reach (the escape hatch, e.g. a resolver on the same host); listener addresses and ownAddresses stay refused')
  },
  {
    additionalProperties: false,
    default: {},
    description: 'the concentrator\'s own addresses, learnt from the host (see docs/destination-policy.md "Own addresses")'
  }),
  allowedPorts: PortList('if not empty, only these destination ports are allowed'),
  deniedPorts: PortList('destination ports refused (reason port_denied), e.g. 25'),
  dns: DnsPolicySchema
}, { additionalProperties: false, default: {}, description: 'destination policy (deny by default; see docs/destination-policy.md)' })

export type DestinationPolicyConfig = Static<typeof DestinationPolicySchema>
export type DnsPolicyConfig = Static<typeof DnsPolicySchema>
