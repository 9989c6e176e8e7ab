/**
 * `uplinks` and `multipath` sections of the CPE config: the WAN accesses and how the uplink manager
 * (cpe/src/uplink) routes and bonds them. See docs/cpe-control-plane.md.
 */
import { Type, type Static } from 'typebox'
import { integerOption, msOption, stringEnum } from '../../../shared/src/config/schema-helpers.ts'

export const UplinkSchema = Type.Object({
  /** Short label used in logs and metrics (`dsl`, `lte0`). Required. */
  name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,15}$', description: 'label in logs and metric labels (lower case, at most 16 characters)' }),
  /** Linux network interface of this access (`eth1`, `wwan0`). Required. */
  interface: Type.String({ pattern: '^[^/\\s:]{1,15}$', description: 'Linux network interface name' }),
  /** Access type: `dsl` (fixed, preferred) or `lte` (cellular). Required. */
  role: stringEnum(['dsl', 'lte'], 'access type: dsl (fixed, preferred) or lte (cellular)'),
  /** IPv4 next hop of the uplink's routing table; default: the interface's default route in the main table, else on-link. */
  gateway: Type.Optional(Type.String({
    format: 'ip',
    description: 'IPv4 gateway of this access; unset: taken from the main table\'s default route on the interface, else on-link'
  })),
  /** IPv6 next hop; default: the interface's IPv6 default route in the main table, else on-link. */
  gateway6: Type.Optional(Type.String({
    format: 'ip',
    description: 'IPv6 gateway of this access; unset: taken from the main table\'s default route on the interface, else on-link'
  })),
  /** Routing table of this uplink; default `multipath.tableBase` + index. */
  table: Type.Optional(Type.Integer({
    minimum: 1,
    maximum: 0x7ffffffe,
    description: 'routing table id of this access; unset: multipath.tableBase + position in the list'
  }))
}, { additionalProperties: false })

export type UplinkConfig = Static<typeof UplinkSchema>

export const MultipathSchema = Type.Object({
  /** `managed`: the uplink manager installs routes, rules, endpoints and limits; `off`: the operator does. Default `managed`. */
  rules: stringEnum(['managed', 'off'], 'managed: the uplink manager installs source routing, MPTCP endpoints and limits; off: the operator does',
    'managed'),
  /**
   * `aggregate`: every uplink carries traffic; `backup`: LTE endpoints are `backup` (used only when DSL
   * fails). Default `aggregate`. Switchable at run time.
   */
  mode: stringEnum(['aggregate', 'backup'],
    'aggregate: LTE subflows carry traffic; backup: LTE endpoints flagged backup (used when no other subflow works)', 'aggregate'),
  /**
   * Endpoints of the extra uplinks get `fullmesh` (one subflow per announced peer address, from this
   * address). Transparent mode needs it and turns it on by itself (docs/transparent.md). Default false.
   */
  fullmesh: Type.Optional(Type.Boolean({
    default: false,
    description: 'add fullmesh to the extra uplinks\' endpoints (join every announced address from them); mode transparent implies it'
  })),
  /** `ip mptcp limits set subflows N`. Default 2. */
  subflows: integerOption({ default: 2, minimum: 0, maximum: 8, description: 'MPTCP limit: extra subflows per connection' }),
  /** `ip mptcp limits set add_addr_accepted N`. Default 2. */
  addAddrAccepted: integerOption({ default: 2, minimum: 0, maximum: 8, description: 'MPTCP limit: ADD_ADDR announcements accepted per connection' }),
  /** First routing table id (uplink i uses tableBase + i unless it sets `table`). Default 100. */
  tableBase: integerOption({
    default: 100,
    minimum: 1,
    maximum: 0x7ffffff0,
    description: 'routing table of the first uplink; the i-th uses tableBase + i'
  }),
  /** Priority of the `ip rule from <address> lookup <table>` rules. Default 100. */
  rulePriority: integerOption({ default: 100, minimum: 1, maximum: 32765, description: 'priority of the per-address source rules' }),
  /** Set `rp_filter=2` (loose) on uplink interfaces (restored at stop). Default true. */
  looseRpFilter: Type.Boolean({ default: true, description: 'set rp_filter=2 (loose) on uplink interfaces; the previous value is restored at stop' }),
  /** How often addresses, carrier and gateways are re-read. Unit ms. Default 2000. */
  pollIntervalMs: msOption(2_000, 'interval of re-reading uplink addresses, carrier and gateways', 200, 60_000)
}, { additionalProperties: false, default: {}, description: 'source routing and MPTCP endpoints of the uplinks' })

export type MultipathConfig = Static<typeof MultipathSchema>
