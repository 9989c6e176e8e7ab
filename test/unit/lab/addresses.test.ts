import { test } from 'node:test'
import assert from 'node:assert/strict'
import ipaddr from 'ipaddr.js'
import {
  accessOfAddress, ACCESS_NAMES, ADDRESS_PLAN, canonical, namespaceName, prefixLength, withPrefix,
  type DualAddress
} from '../../../lab/addresses.ts'
import { accessRoutes, labIpCommands } from '../../../lab/topology.ts'

const DOC_RANGES = ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24', '2001:db8::/32'].map((c) => ipaddr.parseCIDR(c))

function inRange (addr: string, cidr: string): boolean {
  const a = ipaddr.parse(addr)
  const [net, len] = ipaddr.parseCIDR(cidr)
  return a.kind() === net.kind() && a.match(net, len)
}

function allHosts (): Array<{ addr: DualAddress, net?: { v4: string, v6: string } }> {
  const p = ADDRESS_PLAN
  const out: Array<{ addr: DualAddress, net?: { v4: string, v6: string } }> = [
    { addr: p.lan.cpe, net: p.lan.net }, { addr: p.lan.host, net: p.lan.net }, { addr: p.internet.hag, net: p.internet.net }, { addr: p.service }
  ]
  for (const s of p.internet.servers) out.push({ addr: s, net: p.internet.net })
  for (const n of ACCESS_NAMES) {
    const a = p.access[n]
    out.push({ addr: a.cpeSide.cpe, net: a.cpeSide.net }, { addr: a.cpeSide.router, net: a.cpeSide.net },
      { addr: a.coreSide.router, net: a.coreSide.net }, { addr: a.coreSide.hag, net: a.coreSide.net })
  }
  return out
}

test('every address is in a documentation range, inside its subnet, and unique', () => {
  const seen = new Set<string>()
  for (const { addr, net } of allHosts()) {
    for (const f of ['v4', 'v6'] as const) {
      const parsed = ipaddr.parse(addr[f])
      assert.ok(DOC_RANGES.some(([n, l]) => parsed.kind() === n.kind() && parsed.match(n, l)), `${addr[f]} outside documentation ranges`)
      if (net !== undefined) assert.ok(inRange(addr[f], net[f]), `${addr[f]} not in ${net[f]}`)
      assert.ok(!seen.has(canonical(addr[f])), `duplicate ${addr[f]}`)
      seen.add(canonical(addr[f]))
    }
  }
})

test('the service address lies outside every subnet (reachable only by routing)', () => {
  const p = ADDRESS_PLAN
  const nets = [p.lan.net, p.internet.net, ...ACCESS_NAMES.flatMap((n) => [p.access[n].cpeSide.net, p.access[n].coreSide.net])]
  for (const net of nets) {
    assert.ok(!inRange(p.service.v4, net.v4))
    assert.ok(!inRange(p.service.v6, net.v6))
  }
})

test('accessOfAddress maps cpe-side addresses in any spelling', () => {
  assert.equal(accessOfAddress('198.51.100.2'), 'dsl')
  assert.equal(accessOfAddress('::ffff:198.51.100.66'), 'lte')
  assert.equal(accessOfAddress('2001:0db8:0020:0000::2'), 'lte')
  assert.equal(accessOfAddress('2001:db8:10::2'), 'dsl')
  assert.equal(accessOfAddress('203.0.113.200'), undefined)
  assert.equal(accessOfAddress('not an ip'), undefined)
})

test('names and prefixes', () => {
  assert.equal(namespaceName('ha-', 'cpe'), 'ha-cpe')
  assert.equal(prefixLength('198.51.100.0/28'), 28)
  assert.equal(withPrefix('2001:db8:1::1', '2001:db8:1::/64'), '2001:db8:1::1/64')
  assert.throws(() => prefixLength('198.51.100.0'), RangeError)
})

test('ip commands: source tables, MPTCP endpoint, no NAT, routes back via the right access', () => {
  const c = labIpCommands(ADDRESS_PLAN)
  assert.ok(c.cpe.includes('mptcp endpoint add 198.51.100.66 dev lte0 subflow'))
  assert.ok(c.cpe.includes('mptcp endpoint add 2001:db8:20::2 dev lte0 subflow'))
  assert.ok(c.cpe.includes('rule add from 198.51.100.2 table 100 pref 100'))
  assert.ok(c.cpe.includes('-6 rule add from 2001:db8:20::2 table 200 pref 200'))
  assert.ok(c.hag.includes('mptcp limits set subflows 2 add_addr_accepted 2'))
  assert.ok(c.hag.includes('route add 198.51.100.64/28 via 198.51.100.81 dev lte0'))
  assert.ok(c.hag.includes('route add 192.0.2.0/24 via 198.51.100.17 dev dsl0'))
  assert.ok(c.lte.includes('route add default via 198.51.100.82 dev core0'))
  for (const lines of Object.values(c)) assert.ok(lines.every((l) => !/nat|masq/i.test(l)))
  assert.deepEqual(accessRoutes(ADDRESS_PLAN, 'lte', 'replace'), [
    'route replace default via 198.51.100.65 dev lte0 table 200',
    '-6 route replace default via 2001:db8:20::1 dev lte0 table 200'
  ])
  assert.equal(accessRoutes(ADDRESS_PLAN, 'dsl', 'add').length, 4)
})
