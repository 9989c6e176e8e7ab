/**
 * The lab's address plan: one constant, IPv4 and IPv6, documentation ranges only (RFC 5737,
 * RFC 3849). Every builder, test and doc page reads addresses from here, never from literals.
 *
 * ```
 * lan ── cpe ══ dsl (router) ══ hag ── inet
 *            ══ lte (router) ══
 * ```
 * Each access network has a cpe-side and a core-side subnet, so the access router in between is a
 * real IP hop (the link emulation runs there). The concentrator's service address sits on hag's
 * loopback, outside every subnet, reachable over both accesses.
 */
import ipaddr from 'ipaddr.js'

export const LAB_ROLES = ['lan', 'cpe', 'dsl', 'lte', 'hag', 'inet'] as const
export type LabRole = typeof LAB_ROLES[number]

export const ACCESS_NAMES = ['dsl', 'lte'] as const
export type AccessName = typeof ACCESS_NAMES[number]

export interface DualAddress { readonly v4: string, readonly v6: string }
/** Prefix in CIDR notation per family. */
export interface DualSubnet { readonly v4: string, readonly v6: string }

export interface AccessPlan {
  readonly name: AccessName
  /** cpe's source-routing table for this uplink (`ip rule from <cpe addr> table N`). */
  readonly table: number
  /** Interface names: on cpe, on the access router (towards cpe / towards hag), on hag. */
  readonly cpeIf: string
  readonly routerCpeIf: string
  readonly routerCoreIf: string
  readonly hagIf: string
  readonly cpeSide: { readonly net: DualSubnet, readonly router: DualAddress, readonly cpe: DualAddress }
  readonly coreSide: { readonly net: DualSubnet, readonly router: DualAddress, readonly hag: DualAddress }
}

export interface AddressPlan {
  readonly lan: { readonly net: DualSubnet, readonly cpe: DualAddress, readonly host: DualAddress, readonly cpeIf: string, readonly hostIf: string }
  readonly access: { readonly [K in AccessName]: AccessPlan }
  readonly internet: {
    readonly net: DualSubnet
    readonly hag: DualAddress
    /** Server addresses on inet; the first one runs the HTTP, echo and bulk servers. */
    readonly servers: readonly DualAddress[]
    readonly hagIf: string
    readonly serverIf: string
  }
  /** The concentrator's service address (explicit modes), on hag's loopback as /32 and /128. */
  readonly service: DualAddress
}

/** TCP ports of the servers the lab starts. */
export const LAB_PORTS = {
  /** HTTP file server on inet: /1k, /100k, /1M, /10M, /100M (generated). */
  http: 80,
  /** Echo server on inet (servers[0]) and on hag (service address). */
  echo: 7,
  /** Flow-tool bulk server: on inet (servers[0]) and on hag (service address). */
  flow: 5201
} as const

function dual (v4: string, v6: string): DualAddress { return { v4, v6 } }

export const ADDRESS_PLAN: AddressPlan = deepFreeze({
  lan: {
    net: dual('192.0.2.0/24', '2001:db8:1::/64'),
    cpe: dual('192.0.2.1', '2001:db8:1::1'),
    host: dual('192.0.2.10', '2001:db8:1::10'),
    cpeIf: 'lan0',
    hostIf: 'eth0'
  },
  access: {
    dsl: {
      name: 'dsl',
      table: 100,
      cpeIf: 'dsl0',
      routerCpeIf: 'cpe0',
      routerCoreIf: 'core0',
      hagIf: 'dsl0',
      cpeSide: {
        net: dual('198.51.100.0/28', '2001:db8:10::/64'),
        router: dual('198.51.100.1', '2001:db8:10::1'),
        cpe: dual('198.51.100.2', '2001:db8:10::2')
      },
      coreSide: {
        net: dual('198.51.100.16/28', '2001:db8:11::/64'),
        router: dual('198.51.100.17', '2001:db8:11::1'),
        hag: dual('198.51.100.18', '2001:db8:11::2')
      }
    },
    lte: {
      name: 'lte',
      table: 200,
      cpeIf: 'lte0',
      routerCpeIf: 'cpe0',
      routerCoreIf: 'core0',
      hagIf: 'lte0',
      cpeSide: {
        net: dual('198.51.100.64/28', '2001:db8:20::/64'),
        router: dual('198.51.100.65', '2001:db8:20::1'),
        cpe: dual('198.51.100.66', '2001:db8:20::2')
      },
      coreSide: {
        net: dual('198.51.100.80/28', '2001:db8:21::/64'),
        router: dual('198.51.100.81', '2001:db8:21::1'),
        hag: dual('198.51.100.82', '2001:db8:21::2')
      }
    }
  },
  internet: {
    net: dual('203.0.113.0/25', '2001:db8:ee::/64'),
    hag: dual('203.0.113.1', '2001:db8:ee::1'),
    servers: [dual('203.0.113.10', '2001:db8:ee::10'), dual('203.0.113.11', '2001:db8:ee::11'), dual('203.0.113.12', '2001:db8:ee::12')],
    hagIf: 'inet0',
    serverIf: 'eth0'
  },
  service: dual('203.0.113.200', '2001:db8:ffff::1')
})

/** Namespace name of a role: the prefix followed by the role (`ha-cpe`, `hat-lab-hag`). */
export function namespaceName (prefix: string, role: LabRole): string {
  return `${prefix}${role}`
}

/** Prefix length of a CIDR string. */
export function prefixLength (cidr: string): number {
  const len = Number(cidr.slice(cidr.indexOf('/') + 1))
  if (!cidr.includes('/') || !Number.isInteger(len)) throw new RangeError(`not a CIDR prefix: ${cidr}`)
  return len
}

/** `addr/len` for `ip addr add`, taking the length from the subnet. */
export function withPrefix (addr: string, net: string): string {
  return `${addr}/${prefixLength(net)}`
}

/**
 * Which access a cpe-side local address belongs to (the address a subflow leaves the cpe from),
 * or undefined. Accepts IPv4-mapped IPv6 (`::ffff:198.51.100.2`) and any IPv6 spelling.
 */
export function accessOfAddress (addr: string, plan: AddressPlan = ADDRESS_PLAN): AccessName | undefined {
  const key = canonical(addr)
  for (const name of ACCESS_NAMES) {
    const cpe = plan.access[name].cpeSide.cpe
    if (key === canonical(cpe.v4) || key === canonical(cpe.v6)) return name
  }
  return undefined
}

/** Normalized form (IPv4-mapped IPv6 unwrapped, IPv6 fully expanded); the input itself if not an IP. */
export function canonical (addr: string): string {
  const a = addr.trim()
  if (!ipaddr.isValid(a)) return a
  return ipaddr.process(a).toNormalizedString()
}

function deepFreeze<T> (value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v)
    Object.freeze(value)
  }
  return value
}
