/**
 * `intercept` section of the CPE config: LAN interception with nftables TPROXY (docs/cpe-control-plane.md).
 * Prefixes are checked precisely (ipaddr.js) by cpe/src/intercept/intercept-plan.ts; the schema
 * only bounds their shape.
 */
import { Type, type Static } from 'typebox'
import { integerOption, portOption, stringEnum } from '../../../shared/src/config/schema-helpers.ts'

/** Interface name safe inside an nft string literal. */
export const INTERFACE_NAME_PATTERN = '^[A-Za-z0-9_.@-]{1,15}$'
/** Shape of an IPv4/IPv6 address or prefix (`192.0.2.0/24`, `2001:db8::/32`, `198.51.100.7`). */
export const PREFIX_PATTERN = '^[0-9A-Fa-f:.]{2,39}(/[0-9]{1,3})?$'

const prefixList = (description: string) => Type.Array(Type.String({ pattern: PREFIX_PATTERN, description: 'IP address or prefix' }),
  { maxItems: 4096, default: [], description })

export const InterceptBypassSchema = Type.Object({
  /** Destination addresses/prefixes (v4 and v6) that LAN traffic reaches directly, never through the agent. Default []. */
  destinations: prefixList('destination addresses or prefixes (IPv4/IPv6) reached directly, not intercepted'),
  /** Destination TCP ports never intercepted (e.g. 22). Default []. */
  ports: Type.Array(portOption('destination port'), { maxItems: 1024, default: [], description: 'destination TCP ports never intercepted' }),
  /** LAN source addresses/prefixes whose traffic is never intercepted. Default []. */
  sources: prefixList('LAN source addresses or prefixes (IPv4/IPv6) never intercepted')
}, { additionalProperties: false, default: {}, description: 'traffic that bypasses interception (nft sets)' })

export const InterceptSchema = Type.Object({
  /**
   * `managed`: the agent installs and owns `table inet hybrid_cpe` and its policy routing;
   * `external`: the operator provides equivalent rules (see `--print-rules`); `off`: no interception. Default `managed`.
   */
  rules: stringEnum(['managed', 'external', 'off'],
    'managed: the agent installs and owns its nft table and policy routing; external: the operator does (see --print-rules); off: no interception',
    'managed'),
  /** LAN interfaces whose TCP is intercepted. Default `["br-lan"]`. */
  lanInterfaces: Type.Array(Type.String({ pattern: INTERFACE_NAME_PATTERN, description: 'interface name' }),
    { minItems: 1, maxItems: 16, default: ['br-lan'], description: 'LAN interfaces whose TCP is intercepted' }),
  /** Port of the IP_TRANSPARENT listeners (0.0.0.0 and ::); TPROXY target. Default 7001. */
  port: portOption('port of the transparent listeners (TPROXY target, bound on 0.0.0.0 and ::)', 7001),
  /** Intercept IPv6 too (tproxy ip6, ip -6 rule, listener on ::). Default true. */
  ipv6: Type.Boolean({ default: true, description: 'intercept IPv6 as well (ip6 tproxy, ip -6 rule, listener on ::)' }),
  /** fwmark set on intercepted packets; `ip rule fwmark <mark> lookup <routeTable>` delivers them locally. Default 1. */
  mark: integerOption({ default: 1, minimum: 1, maximum: 0x7fffffff, description: 'fwmark of intercepted packets (routed to the local table)' }),
  /** SO_MARK of the agent's own outbound sockets; packets with it are never intercepted. Must differ from `mark`. Default 2. */
  socketMark: integerOption({
    default: 2,
    minimum: 1,
    maximum: 0x7fffffff,
    description: 'SO_MARK of the agent\'s outbound sockets; such packets are never intercepted (must differ from mark)'
  }),
  /** Routing table holding `local default dev lo` (v4 and v6). Default 300. */
  routeTable: integerOption({
    default: 300,
    minimum: 1,
    maximum: 0x7ffffffe,
    description: 'routing table id of the local-delivery route (v4 and v6)'
  }),
  /** Priority of the `ip rule fwmark … lookup <routeTable>` rule (v4 and v6). Default 50. */
  rulePriority: integerOption({ default: 50, minimum: 1, maximum: 32765, description: 'priority of the fwmark ip rule (v4 and v6)' }),
  /** Bypass lists. */
  bypass: InterceptBypassSchema
}, { additionalProperties: false, default: {}, description: 'LAN interception (nftables TPROXY)' })

export type InterceptConfig = Static<typeof InterceptSchema>
