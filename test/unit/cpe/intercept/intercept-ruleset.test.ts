import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Value } from 'typebox/value'
import { InterceptSchema, type InterceptConfig } from '../../../../cpe/src/config/intercept.ts'
import { buildInterceptRouting, buildInterceptRuleset, buildUdpRouting, interceptProblems, splitPrefixes } from '../../../../cpe/src/intercept/intercept-ruleset.ts'
import { UdpSchema, type UdpConfig } from '../../../../cpe/src/config/udp.ts'
import { flattenRuleset } from '../../../../shared/src/sys/nft-owner.ts'

const defaults = (): InterceptConfig => Value.Default(InterceptSchema, {}) as InterceptConfig
const withBypass = (b: Partial<InterceptConfig['bypass']>, extra: Partial<InterceptConfig> = {}): InterceptConfig =>
  ({ ...defaults(), lanInterfaces: ['lan0', 'br-lan'], ...extra, bypass: { ...defaults().bypass, ...b } })

test('default ruleset: owner table, v4 and v6 tproxy to the listener port with the mark', () => {
  const text = buildInterceptRuleset({ intercept: defaults() })
  assert.match(text, /^table inet hybrid_cpe \{\n {2}flags owner\n/)
  assert.match(text, /type filter hook prerouting priority mangle; policy accept;/)
  assert.match(text, /iifname != \{ "br-lan" \} return/)
  assert.match(text, /meta mark 0x00000002 return/)
  assert.match(text, /policy accept;\n {4}fib daddr type local tcp dport 7001 drop\n {4}iifname != /,
    'the own-port drop comes before the LAN filter: it holds on the WAN too')
  assert.match(text, /meta mark 0x00000002 return\n {4}fib daddr type local return/)
  assert.match(text, /meta nfproto ipv4 meta l4proto tcp tproxy ip to :7001 meta mark set 0x00000001 accept/)
  assert.match(text, /meta nfproto ipv6 meta l4proto tcp tproxy ip6 to :7001 meta mark set 0x00000001 accept/)
  assert.ok(!text.includes('elements'), 'empty sets carry no elements line')
})

test('rule order: exclusions come before the tproxy rules', () => {
  const lines = buildInterceptRuleset({ intercept: defaults() }).split('\n').map((l) => l.trim())
  const at = (prefix: string): number => lines.findIndex((l) => l.startsWith(prefix))
  const tproxy = at('meta nfproto ipv4 meta l4proto tcp tproxy')
  for (const p of ['iifname', 'meta l4proto != tcp', 'meta mark 0x', 'fib daddr type local return', 'ip daddr @bypass_dst4',
    'ip6 saddr @bypass_src6', 'tcp dport @bypass_ports', 'socket transparent 1']) {
    assert.ok(at(p) >= 0 && at(p) < tproxy, p)
  }
})

test('bypass sets: v4/v6 split, host bits cleared, duplicates and the concentrator folded in, ports sorted', () => {
  const text = buildInterceptRuleset({
    intercept: withBypass({
      destinations: ['192.0.2.77/24', '2001:DB8:1::5/48', '198.51.100.9', '192.0.2.0/24'],
      ports: [443, 22, 443],
      sources: ['192.0.2.10', '2001:db8::7']
    }),
    concentrator: { host: '203.0.113.1' }
  })
  assert.match(text,
    /set bypass_dst4 \{\n {4}type ipv4_addr\n {4}flags interval\n {4}auto-merge\n {4}elements = \{ 192\.0\.2\.0\/24, 198\.51\.100\.9, 203\.0\.113\.1 \}/)
  assert.match(text, /set bypass_dst6 \{[^}]*elements = \{ 2001:db8:1::\/48 \}/)
  assert.match(text, /set bypass_src4 \{[^}]*elements = \{ 192\.0\.2\.10 \}/)
  assert.match(text, /set bypass_src6 \{[^}]*elements = \{ 2001:db8::7 \}/)
  assert.match(text, /set bypass_ports \{\n {4}type inet_service\n {4}elements = \{ 22, 443 \}/)
  assert.match(text, /iifname != \{ "lan0", "br-lan" \} return/)
})

test('ipv6 off: no v6 sets or tproxy, v6 returns early', () => {
  const text = buildInterceptRuleset({ intercept: withBypass({}, { ipv6: false }) })
  assert.ok(!text.includes('ip6'))
  assert.ok(!text.includes('bypass_dst6'))
  assert.match(text, /meta nfproto ipv6 return/)
})

test('invalid prefixes and equal marks are refused with the key path', () => {
  assert.throws(() => splitPrefixes(['192.0.2.0/24', '300.1.1.1'], '/intercept/bypass/destinations'), /\/intercept\/bypass\/destinations\/1/)
  assert.throws(() => splitPrefixes(['2001:db8::/129'], '/x'), /HYBRID_ERR|not an IP/)
  assert.deepEqual(interceptProblems({ intercept: withBypass({}, { mark: 5, socketMark: 5 }) }).length, 1)
  assert.throws(() => buildInterceptRuleset({ intercept: withBypass({}, { mark: 5, socketMark: 5 }) }),
    (e: Error & { code?: string }) => e.code === 'HYBRID_ERR_CONFIG_INVALID')
})

test('flattened for nft -i: one line, no comments, sets on one line each', () => {
  const flat = flattenRuleset(buildInterceptRuleset({ intercept: withBypass({ destinations: ['192.0.2.0/24'] }) }))
  assert.ok(!flat.includes('\n'))
  assert.match(flat, /^table inet hybrid_cpe \{ ; flags owner ; set bypass_dst4 \{ ; type ipv4_addr ; /)
  assert.match(flat, /elements = \{ 192\.0\.2\.0\/24 \} ; \}/)
})

test('policy routing: fwmark rule and local default route, v4 and v6, delete plan mirrors the add plan', () => {
  const plan = buildInterceptRouting(withBypass({}, { mark: 0x10, routeTable: 333, rulePriority: 44 }))
  assert.deepEqual(plan.add, [
    ['ip', '-4', 'rule', 'add', 'fwmark', '0x00000010', 'lookup', '333', 'priority', '44'],
    ['ip', '-4', 'route', 'add', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '333'],
    ['ip', '-6', 'rule', 'add', 'fwmark', '0x00000010', 'lookup', '333', 'priority', '44'],
    ['ip', '-6', 'route', 'add', 'local', '::/0', 'dev', 'lo', 'table', '333']
  ])
  assert.deepEqual(plan.remove, plan.add.map((a) => a.map((x) => x === 'add' ? 'del' : x)))
  assert.equal(buildInterceptRouting(withBypass({}, { ipv6: false })).add.length, 2)
})

const udpDefaults = (over: Partial<UdpConfig> = {}): UdpConfig =>
  ({ ...(Value.Default(UdpSchema, {}) as UdpConfig), enabled: true, port: 7400, ...over })

test('udp disabled or absent: no UDP chain, no UDP jump (the TCP ruleset is unchanged)', () => {
  const plain = buildInterceptRuleset({ intercept: defaults() })
  assert.equal(buildInterceptRuleset({ intercept: defaults(), udp: udpDefaults({ enabled: false }) }), plain)
  assert.ok(!plain.includes('udp'))
})

test('udp enabled: LAN UDP jumps to lan_udp, which skips the agent, the CPE itself, broadcast/multicast, DHCP, link-local and bypasses, then marks', () => {
  const text = buildInterceptRuleset({ intercept: defaults(), udp: udpDefaults({ bypassPorts: [4500, 123, 4500] }) })
  const lines = text.split('\n').map((l) => l.trim())
  const jump = lines.indexOf('meta l4proto udp jump lan_udp')
  assert.ok(jump > lines.findIndex((l) => l.startsWith('iifname != ')), 'the jump comes after the LAN interface check')
  assert.ok(jump < lines.indexOf('meta l4proto != tcp return'))
  const chain = lines.slice(lines.indexOf('chain lan_udp {'), lines.indexOf('chain prerouting {'))
  assert.deepEqual(chain.slice(1, 4), ['meta mark 0x00000002 return', 'fib daddr type { local, broadcast, multicast } return', 'udp dport { 67, 68, 546, 547 } return'])
  assert.ok(chain.includes('ip6 daddr fe80::/10 return'))
  assert.equal(chain.filter((l) => l.startsWith('meta mark set')).join(), 'meta mark set 0x00000003')
  assert.ok(chain.indexOf('meta mark set 0x00000003') > chain.indexOf('udp dport @bypass_udp_ports return'))
  assert.ok(text.includes('elements = { 123, 4500 }'))
})

test('udp routing: fwmark rule and a default route into the TUN device, v4 and v6; deletes mirror adds', () => {
  const plan = buildUdpRouting(udpDefaults(), true)
  assert.deepEqual(plan.add, [
    ['ip', '-4', 'rule', 'add', 'fwmark', '0x00000003', 'lookup', '301', 'priority', '51'],
    ['ip', '-4', 'route', 'add', 'default', 'dev', 'hyb-udp0', 'table', '301'],
    ['ip', '-6', 'rule', 'add', 'fwmark', '0x00000003', 'lookup', '301', 'priority', '51'],
    ['ip', '-6', 'route', 'add', 'default', 'dev', 'hyb-udp0', 'table', '301']
  ])
  assert.deepEqual(plan.remove.map((a) => a.join(' ').replace(' del ', ' add ')), plan.add.map((a) => a.join(' ')))
  assert.equal(buildUdpRouting(udpDefaults(), false).add.length, 2)
})
