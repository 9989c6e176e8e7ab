/**
 * The scale-out lab's plan (`npm run lab -- --concentrators N`, docs/lab.md "Scale-out"): N
 * concentrator instances behind one service address, with an L4 balancer where the single
 * concentrator sits otherwise. Pure: names, addresses, the `ip -batch` lines and the balancer's
 * nftables ruleset; scale-out.ts applies them.
 *
 * ```
 *   dsl ══╗                        ┌ inst1 ══ lb0 <p>hag1  (198.51.100.130, lo: service address)
 *         ╠══ <p>hag (balancer) ───┼ inst2 ══ lb0 <p>hag2  (198.51.100.138, lo: service address)
 *   lte ══╝   nft: ct mark → table └ inst3 ══ lb0 <p>hag3  (198.51.100.146, lo: service address)
 * ```
 * Instance i (1-based) owns 198.51.100.(128 + 8(i-1))/29 (balancer `.+1`, instance `.+2`). Its
 * link address is also its own join address (ADD_ADDR, `join.endpoints`): routable from both
 * accesses, because the access routers' default is the balancer, which holds every instance link.
 * The balancer steers only the service address: a new TCP connection gets a conntrack mark chosen
 * round-robin among the current members (`numgen inc`), every packet of it carries that mark as its
 * fwmark, and `ip rule fwmark → table` routes it to that instance (direct routing: the instance
 * holds the service address itself, no NAT). Everything else is plain routing. IPv4 only.
 */

/** Most instances the lab builds (the /29 per instance fits eight times into 198.51.100.128/25). */
export const MAX_INSTANCES = 8

/** The instances' join port (`join.endpoints[].port`). */
export const SCALE_OUT_JOIN_PORT = 7201

/** Every instance link lies in this prefix; the balancer never steers traffic addressed into it (joins, management). */
export const INSTANCE_NET = '198.51.100.128/25'

/** nftables table of the balancer (in `<p>hag`). */
export const BALANCER_TABLE = 'hat_balancer'

export interface InstancePlan {
  /** 1-based. */
  readonly id: number
  /** Namespace suffix: `hag1` … (the namespace is `<prefix>hag1`). */
  readonly role: string
  /** Interface in the balancer towards the instance, and in the instance towards the balancer. */
  readonly balancerIf: string
  readonly instanceIf: string
  readonly net: string
  readonly balancerAddress: string
  /** The instance's link address: its management address and its join address. */
  readonly address: string
  /** Conntrack mark and fwmark of its connections, and the balancer's routing table for it. */
  readonly mark: number
  readonly table: number
}

/** The plan of instance `id` (1..MAX_INSTANCES). Throws a RangeError otherwise. */
export function instancePlan (id: number): InstancePlan {
  if (!Number.isInteger(id) || id < 1 || id > MAX_INSTANCES) throw new RangeError(`instance id must be 1..${MAX_INSTANCES}, got ${id}`)
  const base = 128 + 8 * (id - 1)
  return {
    id,
    role: `hag${id}`,
    balancerIf: `inst${id}`,
    instanceIf: 'lb0',
    net: `198.51.100.${base}/29`,
    balancerAddress: `198.51.100.${base + 1}`,
    address: `198.51.100.${base + 2}`,
    mark: 0x100 + id,
    table: 1000 + id
  }
}

/**
 * `--concentrators <n>`: an integer in 1..MAX_INSTANCES, or an error message. Pure.
 * (The option is absent → undefined: the single-concentrator lab.)
 */
export function parseInstanceCount (raw: string | undefined): number | undefined | { error: string } {
  if (raw === undefined) return undefined
  const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN
  if (!Number.isInteger(n) || n < 1 || n > MAX_INSTANCES) {
    return { error: `--concentrators must be an integer in 1..${MAX_INSTANCES}, got ${JSON.stringify(raw)}` }
  }
  return n
}

export interface ScaleOutIpInput {
  readonly instance: InstancePlan
  /** The service address (on the instance's loopback; the balancer routes it by mark). */
  readonly service: { readonly v4: string, readonly v6: string }
}

/** `ip -batch` lines for the balancer's side of one instance: its link, the mark rule and table. Pure. */
export function balancerIpCommands ({ instance: i, service }: ScaleOutIpInput): string[] {
  return [
    `link set ${i.balancerIf} up`,
    `addr add ${i.balancerAddress}/29 dev ${i.balancerIf}`,
    `route add ${service.v4}/32 via ${i.address} dev ${i.balancerIf} table ${i.table}`,
    `route add default via ${i.address} dev ${i.balancerIf} table ${i.table}`,
    `rule add fwmark ${hex(i.mark)} lookup ${i.table} pref ${i.table}`
  ]
}

/** `ip -batch` lines inside one instance: its link, the service address on lo, default via the balancer. Pure. */
export function instanceIpCommands ({ instance: i, service }: ScaleOutIpInput): string[] {
  return [
    `link set ${i.instanceIf} up`,
    `addr add ${i.address}/29 dev ${i.instanceIf}`,
    `addr add ${service.v4}/32 dev lo`,
    `addr add ${service.v6}/128 dev lo nodad`,
    `route add default via ${i.balancerAddress} dev ${i.instanceIf}`,
    'mptcp limits set subflows 2 add_addr_accepted 2'
  ]
}

export interface BalancerRulesetInput {
  /** The service address (IPv4) the balancer spreads. */
  readonly service: string
  /** Interfaces the subscribers' traffic arrives on (the accesses). */
  readonly accessInterfaces: readonly string[]
  /** The current members, in order. Empty: new connections to the service address are dropped (running ones stay). */
  readonly members: readonly InstancePlan[]
  /**
   * `service` (default): only TCP to the service address is steered (socks5, convert). `all`: every
   * TCP connection from the accesses except those into INSTANCE_NET (transparent mode: the CPE
   * dials the destinations themselves, and each instance intercepts what reaches it).
   */
  readonly steer?: 'service' | 'all'
}

/**
 * The balancer's nftables ruleset, one atomic `nft -f` transaction (the table is created empty,
 * deleted and written again, so a membership change swaps the whole ruleset at once). Pure.
 *
 * - A new TCP connection to the service address gets its conntrack mark round-robin over the
 *   members (`numgen inc mod N map`). Packets of known connections keep the mark conntrack holds
 *   for them, whatever the members are now: this stickiness keeps running connections on their
 *   instance when the set changes (an IPVS connection entry or a Maglev table does the same).
 * - Everything else to the service address (the CPE's UDP path probes, ICMP) is hashed per packet
 *   over the current members (`jhash` of the source), with no state: after a member leaves, its
 *   probes go to a live one at once.
 * - Each packet to the service address then carries the mark as fwmark; `ip rule fwmark` picks
 *   the member's table (balancerIpCommands).
 */
export function balancerRuleset (input: BalancerRulesetInput): string {
  const t = BALANCER_TABLE
  const iif = `iifname { ${input.accessInterfaces.map((i) => JSON.stringify(i)).join(', ')} }`
  const from = `${iif} ip daddr ${input.service}`
  const tcp = input.steer === 'all' ? `${iif} ip daddr != ${INSTANCE_NET}` : from
  const n = input.members.length
  const map = `map { ${input.members.map((m, k) => `${k} : ${hex(m.mark)}`).join(', ')} }`
  const steer = [
    n === 0
      ? `    ${tcp} meta l4proto tcp ct state new drop`
      : `    ${tcp} meta l4proto tcp ct state new ct mark set numgen inc mod ${n} ${map}`,
    `    ${tcp} meta l4proto tcp ct mark != 0 meta mark set ct mark`,
    n === 0
      ? `    ${from} meta l4proto != tcp drop`
      : `    ${from} meta l4proto != tcp meta mark set jhash ip saddr mod ${n} ${map}`
  ]
  return [
    `table ip ${t} {}`,
    `delete table ip ${t}`,
    `table ip ${t} {`,
    '  chain prerouting {',
    '    type filter hook prerouting priority mangle; policy accept;',
    ...steer,
    '  }',
    '}',
    ''
  ].join('\n')
}

function hex (n: number): string {
  return `0x${n.toString(16)}`
}
