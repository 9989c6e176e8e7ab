/**
 * Pure part of the uplink manager (no I/O): from the configured uplinks and what `ip -j` reports,
 * the source-routing rules, per-uplink default routes and MPTCP endpoints that should exist, the
 * argv of every command that creates or removes them, and parsers of the `ip` output.
 *
 * Policy: every uplink gets a routing table (`default via <gateway> dev <if> table <T>`) and, per
 * global address, `ip rule from <address> lookup <T> priority <P>`. Every uplink except the primary
 * one (the first `dsl`, else the first) gets an MPTCP endpoint per address with flag `subflow`, plus
 * `backup` for LTE uplinks in mode `backup`. The primary's address carries the initial subflow via
 * the main table's default route.
 */
import { HybridError } from '../../../shared/src/errors.ts'
import type { MultipathConfig, UplinkConfig } from '../config/uplinks.ts'
import type { CheckProblem } from '../../../shared/src/config/problem.ts'

export type Family = 4 | 6
export type MultipathMode = MultipathConfig['mode']

export interface UplinkSpec {
  name: string
  role: UplinkConfig['role']
  interface: string
  table: number
  gateway?: string
  gateway6?: string
  /** Non-primary uplinks get MPTCP endpoints. */
  endpoints: boolean
}

export interface ObservedLink {
  /** Carrier: UP and LOWER_UP. */
  up: boolean
  /** Administratively up (routes can be added). */
  adminUp: boolean
  addresses: Array<{ address: string, family: Family }>
}

export interface Observed {
  links: ReadonlyMap<string, ObservedLink>
  /** Main-table default gateways by interface. */
  gateways: ReadonlyMap<string, { v4?: string, v6?: string }>
}

export interface RuleObj { family: Family, from: string, table: number, priority: number }
export interface RouteObj { family: Family, table: number, dev: string, via?: string }
export interface EndpointObj { address: string, dev: string, backup: boolean, fullmesh?: boolean }
export interface DesiredState { rules: RuleObj[], routes: RouteObj[], endpoints: EndpointObj[] }

/** Validate the uplink list and assign tables; throws HYBRID_ERR_UPLINK_CONFIG. */
export function uplinkSpecs (uplinks: readonly UplinkConfig[], mp: Pick<MultipathConfig, 'tableBase'>): UplinkSpec[] {
  const primary = Math.max(0, uplinks.findIndex((u) => u.role === 'dsl'))
  const specs = uplinks.map((u, i): UplinkSpec => ({
    name: u.name,
    role: u.role,
    interface: u.interface,
    table: u.table ?? mp.tableBase + i,
    ...(u.gateway === undefined ? {} : { gateway: u.gateway }),
    ...(u.gateway6 === undefined ? {} : { gateway6: u.gateway6 }),
    endpoints: i !== primary
  }))
  const [dup] = duplicateUplinkProblems(specs)
  if (dup !== undefined) throw new HybridError('HYBRID_ERR_UPLINK_CONFIG', `uplinks: ${dup.message}`)
  return specs
}

/** Uplinks sharing a name, an interface or a routing table (explicit or tableBase + index); the config check reports them at load. */
export function duplicateUplinkProblems (specs: ReadonlyArray<Pick<UplinkSpec, 'name' | 'interface' | 'table'>>): CheckProblem[] {
  const out: CheckProblem[] = []
  for (const key of ['name', 'interface', 'table'] as const) {
    const seen = new Set<unknown>()
    specs.forEach((s, i) => {
      if (seen.has(s[key])) out.push({ path: ['uplinks', i, key], message: `duplicate ${key} ${String(s[key])}` })
      seen.add(s[key])
    })
  }
  return out
}

/** Extra endpoint flags (multipath.fullmesh, or implied by transparent mode). */
const endpointFlags = (fullmesh: boolean | undefined): { fullmesh?: boolean } => (fullmesh === true ? { fullmesh } : {})

/** What should exist, given what the system shows now. */
export function desiredState (specs: readonly UplinkSpec[], observed: Observed, mode: MultipathMode, rulePriority: number,
  fullmesh?: boolean): DesiredState {
  const state: DesiredState = { rules: [], routes: [], endpoints: [] }
  const flags = endpointFlags(fullmesh)
  for (const s of specs) {
    const link = observed.links.get(s.interface)
    if (link === undefined) continue
    const gw = observed.gateways.get(s.interface) ?? {}
    for (const family of [4, 6] as const) {
      const addrs = link.addresses.filter((a) => a.family === family)
      if (addrs.length === 0) continue
      const via = family === 4 ? s.gateway ?? gw.v4 : s.gateway6 ?? gw.v6
      if (link.adminUp) state.routes.push({ family, table: s.table, dev: s.interface, ...(via === undefined ? {} : { via }) })
      for (const a of addrs) {
        state.rules.push({ family, from: a.address, table: s.table, priority: rulePriority })
        if (s.endpoints) state.endpoints.push({ address: a.address, dev: s.interface, backup: mode === 'backup' && s.role === 'lte', ...flags })
      }
    }
  }
  return state
}

export const ruleKey = (r: RuleObj): string => `${r.family}|${r.from}|${r.table}|${r.priority}`
export const routeKey = (r: RouteObj): string => `${r.family}|${r.table}|${r.dev}|${r.via ?? ''}`

const fam = (f: Family): string => f === 4 ? '-4' : '-6'

export function ruleArgv (op: 'add' | 'del', r: RuleObj): string[] {
  return ['ip', fam(r.family), 'rule', op, 'from', r.from, 'lookup', String(r.table), 'priority', String(r.priority)]
}

export function routeArgv (op: 'replace' | 'del', r: RouteObj): string[] {
  return ['ip', fam(r.family), 'route', op, 'default', ...(r.via === undefined ? [] : ['via', r.via]), 'dev', r.dev, 'table', String(r.table)]
}

export function endpointAddArgv (e: EndpointObj): string[] {
  return ['ip', 'mptcp', 'endpoint', 'add', e.address, 'dev', e.dev, 'subflow', ...(e.backup ? ['backup'] : []),
    ...(e.fullmesh === true ? ['fullmesh'] : [])]
}

export function endpointDelArgv (id: number): string[] {
  return ['ip', 'mptcp', 'endpoint', 'delete', 'id', String(id)]
}

/**
 * `endpoint change … backup|nobackup` works on iproute2 6.1 (verified) and reaches the peer as
 * MP_PRIO. The kernel sets *both* changeable flags from the request (backup and fullmesh), so an
 * endpoint's `fullmesh` must be repeated or the change clears it (verified on 6.18: after
 * `change id 1 backup` a fullmesh endpoint was a plain subflow endpoint, and transparent mode's
 * new connections lost their LTE subflow).
 */
export function endpointChangeArgv (id: number, backup: boolean, fullmesh = false): string[] {
  return ['ip', 'mptcp', 'endpoint', 'change', 'id', String(id), backup ? 'backup' : 'nobackup', ...(fullmesh ? ['fullmesh'] : [])]
}

export interface MptcpLimits { subflows: number, addAddrAccepted: number }

export function limitsArgv (l: MptcpLimits): string[] {
  return ['ip', 'mptcp', 'limits', 'set', 'subflows', String(l.subflows), 'add_addr_accepted', String(l.addAddrAccepted)]
}

/** `ip mptcp limits show` prints text even with -j on iproute2 6.1: `add_addr_accepted 0 subflows 2`. */
export function parseLimits (text: string): MptcpLimits | undefined {
  const sub = /\bsubflows (\d+)/.exec(text)
  const add = /\badd_addr_accepted (\d+)/.exec(text)
  if (sub?.[1] === undefined || add?.[1] === undefined) return undefined
  return { subflows: Number(sub[1]), addAddrAccepted: Number(add[1]) }
}

type Json = Record<string, unknown>
const str = (v: unknown): string | undefined => typeof v === 'string' ? v : undefined

/** Links from `ip -j addr show`: carrier (LOWER_UP) and global, usable addresses. */
export function parseLinks (rows: readonly Json[]): Map<string, ObservedLink> {
  const links = new Map<string, ObservedLink>()
  for (const row of rows) {
    const name = str(row['ifname'])
    if (name === undefined) continue
    const flags = Array.isArray(row['flags']) ? row['flags'] : []
    const addresses: ObservedLink['addresses'] = []
    for (const a of Array.isArray(row['addr_info']) ? row['addr_info'] as Json[] : []) {
      const local = str(a['local'])
      if (local === undefined || a['scope'] !== 'global' || a['tentative'] === true || a['dadfailed'] === true) continue
      if (a['family'] === 'inet') addresses.push({ address: local, family: 4 })
      else if (a['family'] === 'inet6') addresses.push({ address: local, family: 6 })
    }
    links.set(name, { up: flags.includes('UP') && flags.includes('LOWER_UP'), adminUp: flags.includes('UP'), addresses })
  }
  return links
}

/** Default gateways of the main table by interface, from `ip -4/-6 -j route show table all`. */
export function parseMainGateways (v4: readonly Json[], v6: readonly Json[]): Map<string, { v4?: string, v6?: string }> {
  const out = new Map<string, { v4?: string, v6?: string }>()
  for (const [rows, key] of [[v4, 'v4'], [v6, 'v6']] as const) {
    for (const r of rows) {
      const dev = str(r['dev'])
      const gw = str(r['gateway'])
      const table = str(r['table']) ?? 'main'
      if (r['dst'] !== 'default' || table !== 'main' || dev === undefined || gw === undefined || r['type'] !== undefined) continue
      const entry = out.get(dev) ?? {}
      if (entry[key] === undefined) entry[key] = gw
      out.set(dev, entry)
    }
  }
  return out
}

/** Default routes of numbered tables, from `ip -j route show table all`. */
export function parseTableDefaults (rows: readonly Json[], family: Family): RouteObj[] {
  const out: RouteObj[] = []
  for (const r of rows) {
    const table = Number(str(r['table']))
    const dev = str(r['dev'])
    if (r['dst'] !== 'default' || !Number.isInteger(table) || dev === undefined || r['type'] !== undefined) continue
    const via = str(r['gateway'])
    out.push({ family, table, dev, ...(via === undefined ? {} : { via }) })
  }
  return out
}

/** `ip -j rule show` rows as RuleObj (only `from <address> lookup <number>` rules). */
export function parseRules (rows: readonly Json[], family: Family): RuleObj[] {
  const out: RuleObj[] = []
  for (const r of rows) {
    const from = str(r['src'])
    const table = Number(str(r['table']))
    if (from === undefined || from === 'all' || !Number.isInteger(table) || typeof r['priority'] !== 'number') continue
    if (r['srclen'] !== undefined && r['srclen'] !== (family === 4 ? 32 : 128)) continue
    out.push({ family, from, table, priority: r['priority'] })
  }
  return out
}

export interface SystemEndpoint { id: number, address: string, dev?: string, backup: boolean, subflow: boolean, fullmesh: boolean }

export function parseEndpoints (rows: readonly Json[]): SystemEndpoint[] {
  const out: SystemEndpoint[] = []
  for (const r of rows) {
    const address = str(r['address'])
    if (address === undefined || typeof r['id'] !== 'number') continue
    const dev = str(r['dev'])
    out.push({
      id: r['id'],
      address,
      ...(dev === undefined ? {} : { dev }),
      backup: r['backup'] === true,
      subflow: r['subflow'] === true,
      fullmesh: r['fullmesh'] === true
    })
  }
  return out
}
