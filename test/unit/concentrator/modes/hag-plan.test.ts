import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  endpointAddArgv, hagRuleset, localRouteArgv, parseEndpoints, parseLimits, planProblems, plainTableBatch, ruleArgv, type HagPlanInput
} from '../../../../concentrator/src/modes/hag-plan.ts'

const base: HagPlanInput = {
  accessInterfaces: ['dsl0', 'lte0'],
  listenPort: 7100,
  joinEndpoints: [{ address: '198.51.100.82', interface: 'lte0', port: 7101 }],
  failMode: 'open',
  mark: 0x4000,
  routeTable: 7100,
  rulePriority: 90,
  nftTable: 'hybrid_hag',
  ipv6: true
}

test('open ruleset: owner table, socket rule first, local destinations left alone, MPTCP SYNs tproxied v4+v6, no reject', () => {
  const text = hagRuleset(base, true)
  const lines = text.split('\n').map((l) => l.trim())
  assert.equal(lines[0], 'table inet hybrid_hag {')
  assert.equal(lines[1], 'flags owner')
  assert.ok(text.includes('set access_ifs { type ifname; elements = { "dsl0", "lte0" }; }'))
  const rule = (needle: string): number => lines.findIndex((l) => l.includes(needle))
  const sock = rule('socket transparent 1 meta mark set 0x4000 accept')
  const local = rule('fib daddr type local accept')
  const v4 = rule('meta nfproto ipv4 tcp flags & (fin | syn | rst | ack) == syn tcp option mptcp exists tproxy ip to :7100 meta mark set 0x4000 accept')
  const v6 = rule('meta nfproto ipv6 tcp flags & (fin | syn | rst | ack) == syn tcp option mptcp exists tproxy ip6 to :7100 meta mark set 0x4000 accept')
  assert.ok(sock > 0 && sock < local && local < v4 && v4 < v6, text)
  assert.doesNotMatch(text, /reject/)
})

test('closed ruleset: plain table, reject with tcp reset after the tproxy rules; ipv6 off drops the ip6 rule', () => {
  const text = hagRuleset({ ...base, failMode: 'closed', ipv6: false }, false)
  assert.doesNotMatch(text, /flags owner/)
  assert.doesNotMatch(text, /tproxy ip6/)
  const lines = text.split('\n')
  const tp = lines.findIndex((l) => l.includes('tproxy ip to'))
  const rej = lines.findIndex((l) => l.includes('tcp option mptcp exists reject with tcp reset'))
  assert.ok(tp > 0 && rej > tp)
  assert.equal(plainTableBatch(base, 'X'), 'table inet hybrid_hag {}\ndelete table inet hybrid_hag\nX')
})

test('routing, endpoint argv', () => {
  assert.deepEqual(ruleArgv('add', 4, base), ['ip', '-4', 'rule', 'add', 'fwmark', '0x4000/0x4000', 'lookup', '7100', 'priority', '90'])
  assert.deepEqual(localRouteArgv('replace', 6, base), ['ip', '-6', 'route', 'replace', 'local', 'default', 'dev', 'lo', 'table', '7100'])
  assert.deepEqual(endpointAddArgv(base.joinEndpoints[0]!),
    ['ip', 'mptcp', 'endpoint', 'add', '198.51.100.82', 'dev', 'lte0', 'port', '7101', 'signal'])
})

test('parsers: limits text and endpoint JSON rows', () => {
  assert.deepEqual(parseLimits('add_addr_accepted 0 subflows 2 \n'), { subflows: 2, addAddrAccepted: 0 })
  assert.equal(parseLimits('garbage'), undefined)
  assert.deepEqual(parseEndpoints([{ address: '192.0.2.5', port: 7101, id: 1, signal: true }, { address: '192.0.2.6', id: 2, subflow: true },
    { id: 'x' }]), [
    { id: 1, address: '192.0.2.5', port: 7101, signal: true },
    { id: 2, address: '192.0.2.6', port: undefined, signal: false }
  ])
})

test('planProblems: no access interface, join port equal to the listener port, v6 join with ipv6 off', () => {
  assert.deepEqual(planProblems(base), [])
  const p = planProblems({ ...base, accessInterfaces: [], ipv6: false, joinEndpoints: [{ address: '2001:db8::1', interface: 'x', port: 7100 }] })
  assert.equal(p.length, 3)
})
