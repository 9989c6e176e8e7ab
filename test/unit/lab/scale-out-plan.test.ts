import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ADDRESS_PLAN } from '../../../lab/addresses.ts'
import {
  balancerIpCommands, balancerRuleset, instanceIpCommands, instancePlan, MAX_INSTANCES, parseInstanceCount, SCALE_OUT_JOIN_PORT
} from '../../../lab/scale-out-plan.ts'
import { bothAccesses, countSubflows, formatScaleOutReport } from '../../../lab/scale-out-demo.ts'
import { instanceConcentratorConfig, scaleOutCpeConfig } from '../../../lab/scale-out.ts'
import { labIpCommands } from '../../../lab/topology.ts'

const inRange = (a: string): boolean => /^198\.51\.100\.\d+$/.test(a) && Number(a.split('.')[3]) >= 128 && Number(a.split('.')[3]) < 192

test('instance plan: a /29 per instance in 198.51.100.128/25, distinct marks and tables; ids outside 1..8 throw', () => {
  const plans = Array.from({ length: MAX_INSTANCES }, (_, k) => instancePlan(k + 1))
  assert.deepEqual(instancePlan(1), {
    id: 1,
    role: 'hag1',
    balancerIf: 'inst1',
    instanceIf: 'lb0',
    net: '198.51.100.128/29',
    balancerAddress: '198.51.100.129',
    address: '198.51.100.130',
    mark: 0x101,
    table: 1001
  })
  assert.equal(instancePlan(3).address, '198.51.100.146')
  for (const p of plans) assert.ok(inRange(p.address) && inRange(p.balancerAddress), p.net)
  assert.equal(new Set(plans.map((p) => p.address)).size, MAX_INSTANCES)
  assert.equal(new Set(plans.map((p) => p.mark)).size, MAX_INSTANCES)
  // The instance links never overlap the lab's own networks or the service address.
  const p0 = ADDRESS_PLAN
  const used = [p0.service.v4, p0.access.dsl.coreSide.hag.v4, p0.access.lte.coreSide.hag.v4, p0.internet.hag.v4]
  for (const p of plans) assert.ok(!used.includes(p.address))
  for (const bad of [0, 9, 1.5, -1]) assert.throws(() => instancePlan(bad), RangeError)
})

test('parseInstanceCount: 1..8, else a usage message; absent: undefined', () => {
  assert.equal(parseInstanceCount(undefined), undefined)
  assert.equal(parseInstanceCount('1'), 1)
  assert.equal(parseInstanceCount('8'), 8)
  for (const bad of ['0', '9', '99', '03x', '', ' 3', '1e1']) {
    assert.deepEqual(parseInstanceCount(bad), { error: `--concentrators must be an integer in 1..8, got ${JSON.stringify(bad)}` })
  }
})

test('ip commands: the balancer routes the service address by fwmark to the instance; the instance holds it on lo', () => {
  const i = instancePlan(2)
  assert.deepEqual(balancerIpCommands({ instance: i, service: ADDRESS_PLAN.service }), [
    'link set inst2 up',
    'addr add 198.51.100.137/29 dev inst2',
    'route add 203.0.113.200/32 via 198.51.100.138 dev inst2 table 1002',
    'route add default via 198.51.100.138 dev inst2 table 1002',
    'rule add fwmark 0x102 lookup 1002 pref 1002'
  ])
  assert.deepEqual(instanceIpCommands({ instance: i, service: ADDRESS_PLAN.service }), [
    'link set lb0 up',
    'addr add 198.51.100.138/29 dev lb0',
    'addr add 203.0.113.200/32 dev lo',
    'addr add 2001:db8:ffff::1/128 dev lo nodad',
    'route add default via 198.51.100.137 dev lb0',
    'mptcp limits set subflows 2 add_addr_accepted 2'
  ])
  // The balancer (hag) without the service address; the single-concentrator lab keeps it.
  assert.ok(!labIpCommands(ADDRESS_PLAN, { serviceOnHag: false }).hag.some((l) => l.includes(ADDRESS_PLAN.service.v4)))
  assert.ok(labIpCommands(ADDRESS_PLAN).hag.includes(`addr add ${ADDRESS_PLAN.service.v4}/32 dev lo`))
})

test('balancer ruleset: new TCP connections round-robin by conntrack mark, known ones keep it, the rest hashed statelessly', () => {
  const text = balancerRuleset({ service: '203.0.113.200', accessInterfaces: ['dsl0', 'lte0'], members: [instancePlan(1), instancePlan(3)] })
  const from = 'iifname { "dsl0", "lte0" } ip daddr 203.0.113.200'
  assert.equal(text, [
    'table ip hat_balancer {}',
    'delete table ip hat_balancer',
    'table ip hat_balancer {',
    '  chain prerouting {',
    '    type filter hook prerouting priority mangle; policy accept;',
    `    ${from} meta l4proto tcp ct state new ct mark set numgen inc mod 2 map { 0 : 0x101, 1 : 0x103 }`,
    `    ${from} meta l4proto tcp ct mark != 0 meta mark set ct mark`,
    `    ${from} meta l4proto != tcp meta mark set jhash ip saddr mod 2 map { 0 : 0x101, 1 : 0x103 }`,
    '  }',
    '}',
    ''
  ].join('\n'))
  // No members: new connections dropped, running ones still follow their mark.
  const empty = balancerRuleset({ service: '203.0.113.200', accessInterfaces: ['dsl0'], members: [] })
  assert.match(empty, /ct state new drop/)
  assert.match(empty, /ct mark != 0 meta mark set ct mark/)
  assert.doesNotMatch(empty, /numgen|jhash/)
  // Transparent mode: every TCP connection from the accesses, except those into the instance links (joins, management).
  const all = balancerRuleset({ service: '203.0.113.200', accessInterfaces: ['dsl0'], members: [instancePlan(1)], steer: 'all' })
  assert.match(all, /iifname \{ "dsl0" \} ip daddr != 198\.51\.100\.128\/25 meta l4proto tcp ct state new ct mark set numgen inc mod 1 map \{ 0 : 0x101 \}/)
  assert.match(all, /iifname \{ "dsl0" \} ip daddr 203\.0\.113\.200 meta l4proto != tcp meta mark set jhash/)
})

test('instance and CPE configs: management and join endpoint on the instance link, SOCKS5 and Convert listeners; CPE fullmesh', () => {
  const c = instanceConcentratorConfig(instancePlan(2), ADDRESS_PLAN)
  assert.deepEqual(c['management'], { listen: { host: '198.51.100.138', port: 9090 } })
  assert.deepEqual(c['join'], { endpoints: [{ address: '198.51.100.138', interface: 'lb0', port: SCALE_OUT_JOIN_PORT }] })
  const ports = (c['listeners'] as Array<{ port: number, mode: string }>).map((l) => `${l.mode}:${l.port}`)
  assert.deepEqual([...new Set(ports)].sort(), ['convert:1234', 'socks5:1080'])
  const t = instanceConcentratorConfig(instancePlan(1), ADDRESS_PLAN, 'transparent')
  const tr = t['transparent'] as { enabled: boolean, accessInterfaces: string[], joinEndpoints: unknown[] }
  assert.equal(tr.enabled, true)
  assert.deepEqual(tr.accessInterfaces, ['lb0'])
  assert.deepEqual(tr.joinEndpoints, [{ address: '198.51.100.130', interface: 'lb0', port: 7101 }])
  const cpe = scaleOutCpeConfig('convert', ADDRESS_PLAN)
  assert.equal((cpe['multipath'] as { fullmesh: boolean }).fullmesh, true)
  assert.equal(cpe['mode'], 'convert')
})

test('countSubflows and the report', () => {
  const ss = [
    '0 0 203.0.113.200:1080 198.51.100.2:50000',
    '0 0 198.51.100.130:7201 198.51.100.66:40000',
    '0 0 198.51.100.130:7201 198.51.100.2:40001',
    '0 0 198.51.100.130:41794 203.0.113.10:7',
    '0 0 203.0.113.200:1080 192.0.2.99:1'
  ].join('\n')
  assert.deepEqual(countSubflows(ss, { join: '198.51.100.130:7201', dslCpe: '198.51.100.2', lteCpe: '198.51.100.66' }), { initial: 1, dslJoins: 1, lteInitial: 0, lteJoins: 1 })
  // Transparent mode: the initial subflow's local address is the intercepted destination.
  assert.deepEqual(countSubflows('0 0 203.0.113.10:7 198.51.100.2:51324\n0 0 198.51.100.130:7101 198.51.100.66:1',
    { join: '198.51.100.130:7101', dslCpe: '198.51.100.2', lteCpe: '198.51.100.66' }), { initial: 1, dslJoins: 0, lteInitial: 0, lteJoins: 1 })
  // After a DSL flap: the initial subflow withdrawn, a DSL join instead; a connection opened over LTE while DSL was down.
  assert.equal(bothAccesses({ initial: 0, dslJoins: 2, lteInitial: 1, lteJoins: 1 }, 2), true)
  assert.equal(bothAccesses({ initial: 2, dslJoins: 0, lteInitial: 0, lteJoins: 1 }, 2), false)
  const text = formatScaleOutReport({
    prefix: 'ha-',
    mode: 'socks5',
    connections: 30,
    failed: 0,
    members: [1, 2],
    instances: [
      { id: 1, namespace: 'ha-hag1', joinAddress: '198.51.100.130:7201', accepted: 15, initialSubflows: 15, dslJoins: 0, lteJoins: 15, joinNoTokenFound: 0 },
      { id: 2, namespace: 'ha-hag2', joinAddress: '198.51.100.138:7201', accepted: 15, initialSubflows: 15, dslJoins: 0, lteJoins: 15, joinNoTokenFound: 0 }
    ]
  })
  assert.match(text, /2 concentrators behind the nft balancer in ha-hag, CPE mode socks5/)
  assert.match(text, /\nhag2 +ha-hag2 +198\.51\.100\.138:7201 +15 +15 +15 +0 +0\n/)
  assert.match(text, /30 accepted, 30 LTE subflows each on the instance of its connection, 0 misrouted joins/)
})
