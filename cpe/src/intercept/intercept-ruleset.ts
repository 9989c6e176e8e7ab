/**
 * Pure generators of the CPE's interception plumbing (no I/O): the nftables ruleset of
 * `table inet hybrid_cpe` (what `--print-rules` prints) and the policy-routing commands that deliver
 * TPROXY-marked packets locally. See docs/cpe-control-plane.md.
 *
 * Order in the prerouting chain (first match wins):
 *  1. direct connections to the transparent port on a CPE address are dropped, from ANY interface
 *     (a connection from the Internet to the WAN address would otherwise be relayed to the
 *     concentrator, which connects back to it: a relay loop);
 *  2. only TCP arriving on a LAN interface is considered;
 *  3. packets carrying the agent's own SO_MARK are skipped;
 *  4. traffic to the CPE's own addresses (`fib daddr type local`: management, DNS …) is not intercepted;
 *  5. bypass sets: destination prefixes (plus the concentrator), LAN sources, destination ports;
 *  6. packets of already-intercepted connections (`socket transparent 1`) are marked and accepted;
 *  7. `tproxy` to the listener port, then `meta mark set`. Without a listening socket `tproxy` does
 *     not match, the mark is not set and the packet is forwarded natively (fail-open).
 */
import ipaddr from 'ipaddr.js'
import { ConfigError } from '../../../shared/src/errors.ts'
import { formatCheckProblem, type CheckProblem } from '../../../shared/src/config/problem.ts'
import type { InterceptConfig } from '../config/intercept.ts'
import type { UdpConfig } from '../config/udp.ts'

export const NFT_FAMILY = 'inet'
export const NFT_TABLE = 'hybrid_cpe'

export interface InterceptRulesetInput {
  intercept: InterceptConfig
  /** Never intercepted (the concentrator is reached directly by the agent anyway). */
  concentrator?: { host: string }
  /** LAN UDP interception (chain `lan_udp`, docs/udp.md); absent or disabled: TCP only. */
  udp?: UdpConfig | undefined
}

export interface SplitPrefixes { v4: string[], v6: string[] }

/** Normalise and split addresses/prefixes by family; host bits are cleared. Throws ConfigError naming the key. */
export function splitPrefixes (list: readonly string[], keyPath: string): SplitPrefixes {
  const out: SplitPrefixes = { v4: [], v6: [] }
  list.forEach((text, i) => {
    const p = parsePrefix(text)
    if (p === undefined) throw new ConfigError('HYBRID_ERR_CONFIG_INVALID', `${keyPath}/${i}: not an IP address or prefix: ${JSON.stringify(text)}`)
    const bucket = p.family === 4 ? out.v4 : out.v6
    if (!bucket.includes(p.text)) bucket.push(p.text)
  })
  return out
}

function parsePrefix (text: string): { family: 4 | 6, text: string } | undefined {
  try {
    if (text.includes('/')) {
      const [addr, len] = ipaddr.parseCIDR(text)
      const net = addr.kind() === 'ipv4' ? ipaddr.IPv4.networkAddressFromCIDR(text) : ipaddr.IPv6.networkAddressFromCIDR(text)
      const full = addr.kind() === 'ipv4' ? 32 : 128
      return { family: addr.kind() === 'ipv4' ? 4 : 6, text: len === full ? net.toString() : `${net.toString()}/${len}` }
    }
    if (!ipaddr.isValid(text)) return undefined
    const addr = ipaddr.parse(text)
    return { family: addr.kind() === 'ipv4' ? 4 : 6, text: addr.toString() }
  } catch {
    return undefined
  }
}

const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`

function setBlock (name: string, type: string, elements: readonly (string | number)[], interval: boolean): string[] {
  const lines = [`  set ${name} {`, `    type ${type}`]
  if (interval) lines.push('    flags interval', '    auto-merge')
  if (elements.length > 0) lines.push(`    elements = { ${elements.join(', ')} }`)
  lines.push('  }')
  return lines
}

/** Problems that the schema cannot express (cross-field, prefixes); the config check reports them at load. */
export function interceptProblems (input: InterceptRulesetInput): CheckProblem[] {
  const c = input.intercept
  const problems: CheckProblem[] = []
  if (c.mark === c.socketMark) {
    problems.push({
      path: ['intercept', 'socketMark'],
      message: 'must differ from /intercept/mark (the agent\'s own packets would be delivered locally)'
    })
  }
  for (const key of ['destinations', 'sources'] as const) {
    c.bypass[key].forEach((text, i) => {
      if (parsePrefix(text) === undefined) {
        problems.push({
          path: ['intercept', 'bypass', key, i],
          message: `not an IP address or prefix: ${JSON.stringify(text)}`
        })
      }
    })
  }
  return problems
}

/** The full `table inet hybrid_cpe` definition (with `flags owner`), as installed by the agent. */
export function buildInterceptRuleset (input: InterceptRulesetInput): string {
  const c = input.intercept
  const problems = interceptProblems(input)
  if (problems.length > 0) throw new ConfigError('HYBRID_ERR_CONFIG_INVALID', problems.map(formatCheckProblem).join('; '))
  const dst = splitPrefixes([...c.bypass.destinations, ...(input.concentrator === undefined ? [] : [input.concentrator.host])],
    '/intercept/bypass/destinations')
  const src = splitPrefixes(c.bypass.sources, '/intercept/bypass/sources')
  const ports = [...new Set(c.bypass.ports)].sort((a, b) => a - b)
  const mark = hex(c.mark)
  const lines = [`table ${NFT_FAMILY} ${NFT_TABLE} {`, '  flags owner']
  lines.push(...setBlock('bypass_dst4', 'ipv4_addr', dst.v4, true), ...setBlock('bypass_src4', 'ipv4_addr', src.v4, true))
  if (c.ipv6) lines.push(...setBlock('bypass_dst6', 'ipv6_addr', dst.v6, true), ...setBlock('bypass_src6', 'ipv6_addr', src.v6, true))
  lines.push(...setBlock('bypass_ports', 'inet_service', ports, false))
  const udp = input.udp?.enabled === true ? input.udp : undefined
  if (udp !== undefined) lines.push(...udpChain(udp, c))
  lines.push(
    '  chain prerouting {',
    '    type filter hook prerouting priority mangle; policy accept;',
    `    fib daddr type local tcp dport ${c.port} drop`,
    `    iifname != { ${c.lanInterfaces.map((i) => `"${i}"`).join(', ')} } return`,
    ...(udp === undefined ? [] : ['    meta l4proto udp jump lan_udp']),
    '    meta l4proto != tcp return',
    ...(c.ipv6 ? [] : ['    meta nfproto ipv6 return']),
    `    meta mark ${hex(c.socketMark)} return`,
    '    fib daddr type local return',
    '    ip daddr @bypass_dst4 return',
    '    ip saddr @bypass_src4 return',
    ...(c.ipv6 ? ['    ip6 daddr @bypass_dst6 return', '    ip6 saddr @bypass_src6 return'] : []),
    '    tcp dport @bypass_ports return',
    `    socket transparent 1 meta mark set ${mark} accept`,
    `    meta nfproto ipv4 meta l4proto tcp tproxy ip to :${c.port} meta mark set ${mark} accept`,
    ...(c.ipv6 ? [`    meta nfproto ipv6 meta l4proto tcp tproxy ip6 to :${c.port} meta mark set ${mark} accept`] : []),
    '  }',
    '}'
  )
  return lines.join('\n') + '\n'
}

/**
 * LAN UDP (docs/udp.md): marked for the policy route into the agent's TUN device, except the
 * agent's own packets, traffic to the CPE itself or to broadcast/multicast addresses (DNS to the
 * CPE, DHCP, mDNS, SSDP), DHCP/DHCPv6 ports, link-local IPv6, the bypass sets (shared with TCP) and
 * the UDP bypass ports. Without the TUN device the route table is empty and the marked packets are
 * routed natively (fail-open).
 */
function udpChain (u: UdpConfig, c: InterceptConfig): string[] {
  const ports = [...new Set(u.bypassPorts)].sort((a, b) => a - b)
  return [
    ...setBlock('bypass_udp_ports', 'inet_service', ports, false),
    '  chain lan_udp {',
    `    meta mark ${hex(c.socketMark)} return`,
    '    fib daddr type { local, broadcast, multicast } return',
    '    udp dport { 67, 68, 546, 547 } return',
    '    ip daddr @bypass_dst4 return',
    '    ip saddr @bypass_src4 return',
    ...(c.ipv6 ? ['    ip6 daddr fe80::/10 return', '    ip6 daddr @bypass_dst6 return', '    ip6 saddr @bypass_src6 return'] : ['    meta nfproto ipv6 return']),
    '    udp dport @bypass_udp_ports return',
    `    meta mark set ${hex(u.mark)}`,
    '  }'
  ]
}

/**
 * Policy routing of marked LAN UDP into the TUN device `u.device` (v4 and, with ipv6, v6). Added
 * after the device is up; the routes vanish with the device, the rule is then inert.
 */
export function buildUdpRouting (u: UdpConfig, ipv6: boolean): RoutingPlan {
  const plan: RoutingPlan = { remove: [], add: [] }
  for (const fam of ipv6 ? ['-4', '-6'] : ['-4']) {
    const rule = ['fwmark', hex(u.mark), 'lookup', String(u.routeTable), 'priority', String(u.rulePriority)]
    const route = ['default', 'dev', u.device, 'table', String(u.routeTable)]
    plan.remove.push(['ip', fam, 'rule', 'del', ...rule], ['ip', fam, 'route', 'del', ...route])
    plan.add.push(['ip', fam, 'rule', 'add', ...rule], ['ip', fam, 'route', 'add', ...route])
  }
  return plan
}

export interface RoutingPlan {
  /** Remove first (each until it fails: idempotent re-assertion), then add. */
  remove: string[][]
  add: string[][]
}

/**
 * Policy routing of intercepted packets: `ip rule fwmark <mark> lookup <table> priority <prio>` and
 * `ip route local default dev lo table <table>`, v4 and (if enabled) v6. Without the nft mark these
 * are inert, so a leftover cannot black-hole traffic.
 */
export function buildInterceptRouting (c: InterceptConfig): RoutingPlan {
  const plan: RoutingPlan = { remove: [], add: [] }
  for (const fam of c.ipv6 ? ['-4', '-6'] : ['-4']) {
    const rule = ['fwmark', hex(c.mark), 'lookup', String(c.routeTable), 'priority', String(c.rulePriority)]
    const route = ['local', fam === '-4' ? '0.0.0.0/0' : '::/0', 'dev', 'lo', 'table', String(c.routeTable)]
    plan.remove.push(['ip', fam, 'rule', 'del', ...rule], ['ip', fam, 'route', 'del', ...route])
    plan.add.push(['ip', fam, 'rule', 'add', ...rule], ['ip', fam, 'route', 'add', ...route])
  }
  return plan
}
