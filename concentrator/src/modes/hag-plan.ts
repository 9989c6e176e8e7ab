/**
 * Pure generators of the HAG's transparent-mode system state (docs/transparent.md): the nftables
 * ruleset, the policy-routing commands, the MPTCP join endpoints and the sysctl. No I/O; the
 * applier (hag-setup.ts) runs the argv lists and owns what it changed.
 *
 * Ruleset (one `inet` table, prerouting at mangle priority):
 *  1. `socket transparent 1` → mark: later packets of intercepted connections (and, with
 *     sourceAddress 'subscriber', the destination's answers) reach the local transparent sockets.
 *  2. Local destinations from the access are left alone (explicit-mode service address, the join
 *     endpoints' ports: MP_JOINs must reach the kernel's own join listeners).
 *  3. MPTCP SYNs (SYN without ACK carrying the MPTCP option) from the access interfaces → TPROXY
 *     to :listenPort, mark. Plain TCP is never intercepted: it is forwarded natively.
 *  4. failMode closed only: the same SYNs, not taken by rule 3 (no listener), get a TCP reset.
 */
import type { TransparentConfig } from '../config/transparent.ts'
import type { CheckProblem } from '../../../shared/src/config/problem.ts'

export type Family = 4 | 6

/** What the generators need of the configuration (the schema's shape, read-only). */
export type HagPlanInput = Pick<TransparentConfig,
  'accessInterfaces' | 'listenPort' | 'failMode' | 'mark' | 'routeTable' | 'rulePriority' | 'nftTable' | 'ipv6' | 'joinEndpoints'>

const hex = (n: number): string => `0x${n.toString(16)}`

/** `tcp flags syn / fin,syn,rst,ack` (a SYN, not a SYN-ACK) and the MPTCP option present. */
const MPTCP_SYN = 'tcp flags & (fin | syn | rst | ack) == syn tcp option mptcp exists'

export function families (c: Pick<HagPlanInput, 'ipv6'>): Family[] {
  return c.ipv6 ? [4, 6] : [4]
}

/** The full table definition (nft -f syntax). `owner`: add `flags owner` (held by nft -i). */
export function hagRuleset (c: HagPlanInput, owner: boolean): string {
  const ifs = c.accessInterfaces.map((i) => JSON.stringify(i)).join(', ')
  const mark = hex(c.mark)
  const lines = [
    `table inet ${c.nftTable} {`,
    ...(owner ? ['  flags owner'] : []),
    `  set access_ifs { type ifname; elements = { ${ifs} }; }`,
    '  chain prerouting {',
    '    type filter hook prerouting priority mangle; policy accept;',
    `    meta l4proto tcp socket transparent 1 meta mark set ${mark} accept`,
    '    iifname @access_ifs fib daddr type local accept'
  ]
  for (const f of families(c)) {
    lines.push(`    iifname @access_ifs meta nfproto ${f === 4 ? 'ipv4' : 'ipv6'} ${MPTCP_SYN} tproxy ${f === 4 ? 'ip' : 'ip6'} to :${c.listenPort} meta mark set ${mark} accept`)
  }
  if (c.failMode === 'closed') lines.push(`    iifname @access_ifs ${MPTCP_SYN} reject with tcp reset`)
  lines.push('  }', '}')
  return lines.join('\n') + '\n'
}

/** Install a plain (non-owner) table atomically: add-then-delete idiom, then the definition. */
export function plainTableBatch (c: Pick<HagPlanInput, 'nftTable'>, ruleset: string): string {
  return `table inet ${c.nftTable} {}\ndelete table inet ${c.nftTable}\n${ruleset}`
}

const fam = (f: Family): string => (f === 4 ? '-4' : '-6')

/** `ip rule … fwmark M/M lookup T priority P` per family. */
export function ruleArgv (op: 'add' | 'del', f: Family, c: Pick<HagPlanInput, 'mark' | 'routeTable' | 'rulePriority'>): string[] {
  return ['ip', fam(f), 'rule', op, 'fwmark', `${hex(c.mark)}/${hex(c.mark)}`, 'lookup', String(c.routeTable), 'priority', String(c.rulePriority)]
}

/** `ip route replace|del local default dev lo table T` per family. */
export function localRouteArgv (op: 'replace' | 'del', f: Family, c: Pick<HagPlanInput, 'routeTable'>): string[] {
  return ['ip', fam(f), 'route', op, 'local', 'default', 'dev', 'lo', 'table', String(c.routeTable)]
}

export interface JoinEndpoint { readonly address: string, readonly interface: string, readonly port: number }

export function endpointAddArgv (e: JoinEndpoint): string[] {
  return ['ip', 'mptcp', 'endpoint', 'add', e.address, 'dev', e.interface, 'port', String(e.port), 'signal']
}

export function endpointDelArgv (id: number): string[] {
  return ['ip', 'mptcp', 'endpoint', 'delete', 'id', String(id)]
}

export const JOIN_SYSCTL = 'net.mptcp.allow_join_initial_addr_port'

export function sysctlReadArgv (key: string): string[] {
  return ['sysctl', '-n', key]
}

export function sysctlWriteArgv (key: string, value: string): string[] {
  return ['sysctl', '-qw', `${key}=${value}`]
}

export interface MptcpLimits { readonly subflows: number, readonly addAddrAccepted: number }

/** `ip mptcp limits show` prints text on iproute2 6.1 even with -j: `add_addr_accepted 0 subflows 2`. */
export function parseLimits (text: string): MptcpLimits | undefined {
  const sub = /\bsubflows (\d+)/.exec(text)
  const add = /\badd_addr_accepted (\d+)/.exec(text)
  if (sub?.[1] === undefined || add?.[1] === undefined) return undefined
  return { subflows: Number(sub[1]), addAddrAccepted: Number(add[1]) }
}

export function limitsArgv (l: MptcpLimits): string[] {
  return ['ip', 'mptcp', 'limits', 'set', 'subflows', String(l.subflows), 'add_addr_accepted', String(l.addAddrAccepted)]
}

export interface SystemEndpoint { readonly id: number, readonly address: string, readonly port: number | undefined, readonly signal: boolean }

/** Rows of `ip -j mptcp endpoint show`: `{"address":"…","port":7101,"id":1,"signal":true,"dev":"lte0"}`. */
export function parseEndpoints (rows: ReadonlyArray<Record<string, unknown>>): SystemEndpoint[] {
  const out: SystemEndpoint[] = []
  for (const r of rows) {
    const address = r['address']
    const id = r['id']
    if (typeof address !== 'string' || typeof id !== 'number') continue
    out.push({ id, address, port: typeof r['port'] === 'number' ? r['port'] : undefined, signal: r['signal'] === true })
  }
  return out
}

/** Configuration problems the schema cannot express (paths under `transparent`); empty when fine. The config check runs it when enabled. */
export function planProblems (c: HagPlanInput): CheckProblem[] {
  const out: CheckProblem[] = []
  const at = (...rest: Array<string | number>): Array<string | number> => ['transparent', ...rest]
  if (c.accessInterfaces.length === 0) {
    out.push({
      path: at('accessInterfaces'),
      message: 'name at least one access-facing interface (transparent.enabled is true)'
    })
  }
  c.joinEndpoints.forEach((e, i) => {
    if (e.port === c.listenPort) {
      out.push({
        path: at('joinEndpoints', i, 'port'),
        message: `must differ from /transparent/listenPort (${c.listenPort})`
      })
    }
    if (!c.ipv6 && e.address.includes(':')) {
      out.push({
        path: at('joinEndpoints', i, 'address'),
        message: 'IPv6 join address while /transparent/ipv6 is false'
      })
    }
  })
  return out
}
