/**
 * `transparent:` — the concentrator as an on-path HAG (docs/transparent.md): MPTCP SYNs arriving
 * from the access interfaces are TPROXYed into an IP_TRANSPARENT MPTCP listener and re-originated
 * as plain TCP to their original destination. Joins for any destination port go to announced
 * `signal` endpoints (docs/design/kernel-facts.md §4, C-flag recipe). Off by default.
 */
import { Type, type Static } from 'typebox'
import { integerOption, portOption, stringEnum } from '../../../shared/src/config/schema-helpers.ts'
import type { DeepReadonly } from '../../../shared/src/config/freeze.ts'

export const JoinEndpointSchema = Type.Object({
  /** Access-facing address of this HAG announced (ADD_ADDR) for MP_JOINs. */
  address: Type.String({ format: 'ip', description: 'access-facing address of this HAG announced for MP_JOINs (ADD_ADDR)' }),
  /** Interface holding the address (`ip mptcp endpoint … dev`). */
  interface: Type.String({ minLength: 1, maxLength: 15, description: 'interface that holds the address' }),
  /** Join port: the kernel listens on it; must differ from every application port and from listenPort. */
  port: portOption('port announced with the address; the kernel listens there (must differ from every application port and from listenPort)')
}, { additionalProperties: false })

export const TransparentSchema = Type.Object({
  /** Intercept MPTCP connections from the access networks. Default false. */
  enabled: Type.Boolean({ default: false, description: 'intercept MPTCP SYNs from the access interfaces (on-path HAG)' }),
  /** Interfaces facing the CPEs' accesses; only MPTCP SYNs arriving there are intercepted. */
  accessInterfaces: Type.Array(Type.String({ minLength: 1, maxLength: 15 }),
    { default: [], maxItems: 64, description: 'interfaces facing the access networks (required when enabled)' }),
  /** Port of the local IP_TRANSPARENT MPTCP listener (0.0.0.0 and ::). Default 7100. */
  listenPort: portOption('port of the local transparent listener (bound to 0.0.0.0 and ::, IP_TRANSPARENT)', 7100),
  /** One `signal` endpoint per access-facing address that extra subflows should join. */
  joinEndpoints: Type.Array(JoinEndpointSchema,
    { default: [], maxItems: 16, description: 'signal endpoints (address, interface, port) announced to CPEs for their extra subflows' }),
  /**
   * Source address of the re-originated TCP connection: `concentrator` (this host's egress address,
   * ordinary routing) or `subscriber` (the CPE's address on the initial subflow, IP_TRANSPARENT;
   * the destination's return traffic must be routed back through this host). Default concentrator.
   */
  sourceAddress: stringEnum(['concentrator', 'subscriber'],
    're-originate from this host\'s address, or from the subscriber\'s (needs return routing through this host)', 'concentrator'),
  /**
   * `open`: when no listener answers, intercepted SYNs are forwarded natively (single path); the
   * owner table also disappears with the daemon. `closed`: a reject follows the TPROXY rule and the
   * table stays installed after stop and crashes. Default open.
   */
  failMode: stringEnum(['open', 'closed'], 'open: forward natively when the concentrator is not there; closed: reset intercepted SYNs', 'open'),
  /** Firewall mark of intercepted packets (selects the local-delivery routing table). */
  mark: integerOption({ default: 0x4000, minimum: 1, maximum: 0x7fffffff, description: 'fwmark of intercepted packets (matched as mark/mark)' }),
  /** Routing table holding `local default dev lo` for marked packets. */
  routeTable: integerOption({
    default: 7100,
    minimum: 1,
    maximum: 0x7fffffff,
    description: 'routing table id with the local default route for marked packets'
  }),
  /** Priority of the `fwmark … lookup routeTable` rule. */
  rulePriority: integerOption({ default: 90, minimum: 1, maximum: 32_765, description: 'priority of the fwmark policy-routing rule' }),
  /** nftables table (family inet) owned by the concentrator. */
  nftTable: Type.String({
    pattern: '^[A-Za-z][A-Za-z0-9_]{0,30}$',
    default: 'hybrid_hag',
    description: 'name of the concentrator\'s nftables table (family inet)'
  }),
  /** Intercept IPv6 as well. Default true. */
  ipv6: Type.Boolean({ default: true, description: 'intercept IPv6 too (listener on ::, ip -6 rule and route)' }),
  /** MPTCP limits raised at start if lower (restored at stop). */
  subflowsLimit: integerOption({
    default: 2,
    minimum: 0,
    maximum: 8,
    description: 'ip mptcp limits subflows: raised to at least this at start, restored at stop'
  }),
  /** The connect deadline to the original destination. */
  connectTimeoutMs: integerOption({
    default: 10_000,
    minimum: 100,
    maximum: 120_000,
    unit: 'ms',
    description: 'deadline of the re-originated connect'
  })
}, { additionalProperties: false, default: {}, description: 'transparent (on-path) mode; see docs/transparent.md' })

/** The loaded (deep-frozen) `transparent:` section. */
export type TransparentConfig = DeepReadonly<Static<typeof TransparentSchema>>
