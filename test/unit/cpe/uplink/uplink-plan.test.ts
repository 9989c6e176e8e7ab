import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  desiredState, endpointAddArgv, endpointChangeArgv, endpointDelArgv, limitsArgv, parseEndpoints, parseLimits, parseLinks,
  parseMainGateways, parseRules, parseTableDefaults, routeArgv, ruleArgv, uplinkSpecs, type Observed
} from '../../../../cpe/src/uplink/uplink-plan.ts'
import type { UplinkConfig } from '../../../../cpe/src/config/uplinks.ts'

const uplinks: UplinkConfig[] = [
  { name: 'lte', interface: 'wwan0', role: 'lte', gateway: '198.51.100.1' },
  { name: 'dsl', interface: 'eth1', role: 'dsl' }
]

const observed: Observed = {
  links: new Map([
    ['eth1', { up: true, adminUp: true, addresses: [{ address: '192.0.2.2', family: 4 }, { address: '2001:db8:10::2', family: 6 }] }],
    ['wwan0', { up: false, adminUp: true, addresses: [{ address: '198.51.100.2', family: 4 }] }]
  ]),
  gateways: new Map([['eth1', { v4: '192.0.2.1', v6: 'fe80::1' }]])
}

test('specs: tables from tableBase by position (or explicit), the first dsl is primary (no endpoints)', () => {
  const specs = uplinkSpecs(uplinks, { tableBase: 100 })
  assert.deepEqual(specs.map((s) => [s.name, s.table, s.endpoints]), [['lte', 100, true], ['dsl', 101, false]])
  assert.equal(uplinkSpecs([{ name: 'a', interface: 'x', role: 'lte', table: 7 }], { tableBase: 100 })[0]?.table, 7)
  assert.equal(uplinkSpecs([{ name: 'a', interface: 'x', role: 'lte' }, { name: 'b', interface: 'y', role: 'lte' }],
    { tableBase: 1 })[0]?.endpoints, false, 'no dsl: the first is primary')
})

test('specs: duplicate interface, name or table is refused', () => {
  for (const dup of [
    [{ name: 'a', interface: 'x', role: 'dsl' }, { name: 'b', interface: 'x', role: 'lte' }],
    [{ name: 'a', interface: 'x', role: 'dsl' }, { name: 'a', interface: 'y', role: 'lte' }],
    [{ name: 'a', interface: 'x', role: 'dsl', table: 101 }, { name: 'b', interface: 'y', role: 'lte' }]
  ] as UplinkConfig[][]) {
    assert.throws(() => uplinkSpecs(dup, { tableBase: 100 }), (e: Error & { code?: string }) => e.code === 'HYBRID_ERR_UPLINK_CONFIG')
  }
})

test('desired state: routes per family with configured or discovered gateway, a rule per address, endpoints for non-primary', () => {
  const specs = uplinkSpecs(uplinks, { tableBase: 100 })
  const agg = desiredState(specs, observed, 'aggregate', 100)
  assert.deepEqual(agg.routes, [
    { family: 4, table: 100, dev: 'wwan0', via: '198.51.100.1' },
    { family: 4, table: 101, dev: 'eth1', via: '192.0.2.1' },
    { family: 6, table: 101, dev: 'eth1', via: 'fe80::1' }
  ])
  assert.deepEqual(agg.rules.map((r) => `${r.from}>${r.table}@${r.priority}`),
    ['198.51.100.2>100@100', '192.0.2.2>101@100', '2001:db8:10::2>101@100'])
  assert.deepEqual(agg.endpoints, [{ address: '198.51.100.2', dev: 'wwan0', backup: false }])
  assert.deepEqual(desiredState(specs, observed, 'backup', 100).endpoints, [{ address: '198.51.100.2', dev: 'wwan0', backup: true }])
})

test('desired state: admin-down link keeps rules but gets no route; missing interface contributes nothing', () => {
  const specs = uplinkSpecs(uplinks, { tableBase: 100 })
  const down: Observed = {
    links: new Map([['wwan0', { up: false, adminUp: false, addresses: [{ address: '198.51.100.2', family: 4 }] }]]),
    gateways: new Map()
  }
  const s = desiredState(specs, down, 'aggregate', 100)
  assert.deepEqual(s.routes, [])
  assert.equal(s.rules.length, 1)
})

test('command argv', () => {
  assert.deepEqual(ruleArgv('add', { family: 6, from: '2001:db8::2', table: 101, priority: 100 }),
    ['ip', '-6', 'rule', 'add', 'from', '2001:db8::2', 'lookup', '101', 'priority', '100'])
  assert.deepEqual(routeArgv('replace', { family: 4, table: 100, dev: 'wwan0' }),
    ['ip', '-4', 'route', 'replace', 'default', 'dev', 'wwan0', 'table', '100'])
  assert.deepEqual(routeArgv('del', { family: 4, table: 100, dev: 'eth1', via: '192.0.2.1' }),
    ['ip', '-4', 'route', 'del', 'default', 'via', '192.0.2.1', 'dev', 'eth1', 'table', '100'])
  assert.deepEqual(endpointAddArgv({ address: '198.51.100.2', dev: 'wwan0', backup: true }),
    ['ip', 'mptcp', 'endpoint', 'add', '198.51.100.2', 'dev', 'wwan0', 'subflow', 'backup'])
  assert.deepEqual(endpointAddArgv({ address: '198.51.100.2', dev: 'wwan0', backup: false }).slice(-1), ['subflow'])
  assert.deepEqual(endpointChangeArgv(3, false), ['ip', 'mptcp', 'endpoint', 'change', 'id', '3', 'nobackup'])
  // the kernel sets backup and fullmesh together: a fullmesh endpoint keeps its flag only when repeated
  assert.deepEqual(endpointChangeArgv(3, true, true), ['ip', 'mptcp', 'endpoint', 'change', 'id', '3', 'backup', 'fullmesh'])
  assert.deepEqual(endpointDelArgv(3), ['ip', 'mptcp', 'endpoint', 'delete', 'id', '3'])
  assert.deepEqual(limitsArgv({ subflows: 2, addAddrAccepted: 1 }), ['ip', 'mptcp', 'limits', 'set', 'subflows', '2', 'add_addr_accepted', '1'])
})

test('parsers of iproute2 6.1 output', () => {
  assert.deepEqual(parseLimits('add_addr_accepted 0 subflows 2 \n'), { subflows: 2, addAddrAccepted: 0 })
  assert.equal(parseLimits('garbage'), undefined)
  const links = parseLinks([{
    ifname: 'u0',
    flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
    addr_info: [
      { family: 'inet', local: '203.0.113.2', prefixlen: 24, scope: 'global' },
      { family: 'inet6', local: '2001:db8:5::2', prefixlen: 64, scope: 'global', nodad: true },
      { family: 'inet6', local: '2001:db8:5::9', prefixlen: 64, scope: 'global', tentative: true },
      { family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link' }
    ]
  }, { ifname: 'u1', flags: ['UP'], addr_info: [] }])
  assert.deepEqual(links.get('u0'),
    { up: true, adminUp: true, addresses: [{ address: '203.0.113.2', family: 4 }, { address: '2001:db8:5::2', family: 6 }] })
  assert.deepEqual(links.get('u1'), { up: false, adminUp: true, addresses: [] })
  const r4 = [
    { type: 'local', dst: 'default', dev: 'lo', table: '300' },
    { dst: 'default', gateway: '203.0.113.1', dev: 'u0', table: '100' },
    { dst: 'default', gateway: '203.0.113.1', dev: 'u0' },
    { dst: '203.0.113.0/24', dev: 'u0', protocol: 'kernel' }
  ]
  assert.deepEqual(parseMainGateways(r4, []), new Map([['u0', { v4: '203.0.113.1' }]]))
  assert.deepEqual(parseTableDefaults(r4, 4), [{ family: 4, table: 100, dev: 'u0', via: '203.0.113.1' }])
  assert.deepEqual(parseRules([
    { priority: 0, src: 'all', table: 'local' }, { priority: 50, src: 'all', fwmark: '0x1', table: '300' },
    { priority: 100, src: '203.0.113.2', table: '100' }, { priority: 110, src: '203.0.113.0', srclen: 24, table: '100' }
  ], 4), [{ family: 4, from: '203.0.113.2', table: 100, priority: 100 }])
  assert.deepEqual(parseEndpoints([{ address: '192.0.2.2', id: 1, subflow: true, dev: 'd0' },
    { address: '2001:db8::2', id: 2, subflow: true, backup: true, fullmesh: true }]), [
    { id: 1, address: '192.0.2.2', dev: 'd0', backup: false, subflow: true, fullmesh: false },
    { id: 2, address: '2001:db8::2', backup: true, subflow: true, fullmesh: true }
  ])
})
