import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseInetAton, parseIpv6 } from '../../../../concentrator/src/policy/address.ts'
import { DefaultDenyRanges, buildDefaultDenySets, buildPrefixSet, parsePrefix } from '../../../../concentrator/src/policy/ranges.ts'

const ip = (s: string) => parseInetAton(s) ?? parseIpv6(s) ?? assert.fail(s)

test('parsePrefix: strict config syntax', () => {
  assert.deepEqual(parsePrefix('10.0.0.0/8'), { family: 4, network: '10.0.0.0', length: 8 })
  assert.deepEqual(parsePrefix('2001:DB8::/32'), { family: 6, network: '2001:db8::', length: 32 })
  assert.deepEqual(parsePrefix('192.0.2.7'), { family: 4, network: '192.0.2.7', length: 32 })
  assert.deepEqual(parsePrefix('::1'), { family: 6, network: '::1', length: 128 })
  for (const bad of ['10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0/08', '0x7f.1/8', '127.1', 'fe80::1%eth0/64', 'example.com/8', '']) {
    assert.equal(parsePrefix(bad), undefined, bad)
  }
})

test('the built-in deny list is exactly the documented list (docs/destination-policy.md)', () => {
  const all = DefaultDenyRanges.flatMap((r) => r.prefixes).sort()
  assert.deepEqual(all, ['0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12',
    '192.168.0.0/16', '224.0.0.0/4', '240.0.0.0/4', '255.255.255.255/32', '::/128', '::1/128', 'fc00::/7', 'fe80::/10', 'ff00::/8'].sort())
})

test('range edges and classes', () => {
  const sets = buildDefaultDenySets()
  const cls = (s: string) => sets.find((x) => x.set.has(ip(s)))?.class
  const cases: Array<[string, string | undefined]> = [
    ['0.255.255.255', 'unspecified'], ['1.0.0.0', undefined], ['9.255.255.255', undefined], ['10.255.255.255', 'special'],
    ['100.63.255.255', undefined], ['100.64.0.0', 'special'], ['100.127.255.255', 'special'], ['100.128.0.0', undefined],
    ['126.255.255.255', undefined], ['127.255.255.255', 'loopback'], ['169.253.255.255', undefined], ['169.254.0.0', 'special'],
    ['172.15.255.255', undefined], ['172.31.255.255', 'special'], ['172.32.0.0', undefined], ['192.167.255.255', undefined],
    ['192.168.255.255', 'special'], ['192.169.0.0', undefined], ['223.255.255.255', undefined], ['224.0.0.0', 'multicast'],
    ['239.255.255.255', 'multicast'], ['240.0.0.0', 'special'], ['255.255.255.254', 'special'], ['255.255.255.255', 'broadcast'],
    ['192.0.2.1', undefined], ['198.51.100.1', undefined], ['203.0.113.1', undefined],
    ['::', 'unspecified'], ['::1', 'loopback'], ['::2', undefined], ['fbff::1', undefined], ['fc00::', 'special'],
    ['fdff:ffff::1', 'special'], ['fe7f::1', undefined], ['fe80::', 'special'], ['febf::1', 'special'], ['fec0::1', undefined],
    ['ff00::', 'multicast'], ['2001:db8::1', undefined]
  ]
  for (const [addr, expected] of cases) assert.equal(cls(addr), expected, addr)
})

test('prefix sets: host bits masked, families kept apart, invalid entries reported', () => {
  const { set, invalid } = buildPrefixSet(['198.51.100.77/24', '2001:db8:1::/48', 'nonsense'])
  assert.deepEqual(invalid, ['nonsense'])
  assert.equal(set.size, 2)
  assert.ok(set.has(ip('198.51.100.1')))
  assert.ok(!set.has(ip('198.51.101.1')))
  assert.ok(set.has(ip('2001:db8:1:ffff::1')))
  assert.ok(!set.has(ip('::ffff:198.51.100.1')), 'an IPv6 address never matches an IPv4 rule (the policy unwraps first)')
})
