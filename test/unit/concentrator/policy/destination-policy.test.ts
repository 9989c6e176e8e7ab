import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { Value } from 'typebox/value'
import { ConfigError } from '../../../../shared/src/errors.ts'
import { canonicaliseDestination, embeddedIpv4 } from '../../../../concentrator/src/policy/address.ts'
import type { DestinationPolicyOptions, PolicyDecision } from '../../../../concentrator/src/policy/destination-policy.ts'
import { createDestinationPolicy } from '../../../../concentrator/src/policy/destination-policy.ts'
import { DestinationPolicySchema } from '../../../../concentrator/src/policy/destination-policy-schema.ts'
import { DefaultDenyRanges, buildPrefixSet } from '../../../../concentrator/src/policy/ranges.ts'
import type { HostResolver, ResolveResult } from '../../../../concentrator/src/policy/resolver.ts'
import { DefaultResolverLimits } from '../../../../concentrator/src/policy/resolver.ts'
import { AddressSet } from '../../../../shared/src/net/host-addresses.ts'

/** Fake resolver: a table of answers; unknown names are NXDOMAIN. Records every lookup. */
function fakeResolver (table: Record<string, Array<[string, 4 | 6]> | ResolveResult>): HostResolver & { calls: string[] } {
  const calls: string[] = []
  return {
    calls,
    resolve: async (name) => {
      calls.push(name)
      const e = Object.hasOwn(table, name) ? table[name] : undefined // '__proto__' is a name too
      if (e === undefined) return { ok: false, reason: 'dns_failed', detail: 'ENOTFOUND', cached: false }
      if (!Array.isArray(e)) return e
      return { ok: true, addresses: e.map(([address, family]) => ({ address, family })), cached: false }
    }
  }
}

const names = {
  'public.example': [['192.0.2.10', 4], ['2001:db8::10', 6]],
  'private.example': [['10.1.2.3', 4]],
  'metadata.example': [['169.254.169.254', 4]],
  'mixed.example': [['198.51.100.7', 4], ['127.0.0.1', 4]],
  'mixed6.example': [['203.0.113.9', 4], ['::ffff:127.0.0.1', 6]],
  'linklocal6.example': [['2001:db8::1', 6], ['fe80::1', 6]],
  'own.example': [['198.51.100.1', 4]],
  'garbage.example': [['not-an-ip', 4]],
  'slow.example': { ok: false, reason: 'dns_timeout', detail: 'ETIMEOUT', cached: false },
  'busy.example': { ok: false, reason: 'dns_busy', detail: 'queue full', cached: false }
} satisfies Record<string, Array<[string, 4 | 6]> | ResolveResult>

function makePolicy (options: DestinationPolicyOptions = {}): ReturnType<typeof createDestinationPolicy> {
  return createDestinationPolicy({ resolver: fakeResolver(names), ...options })
}

function refused (d: PolicyDecision, reason: string, socks5: number, convert: number, label: string): void {
  assert.equal(d.allowed, false, `${label} must be refused`)
  if (d.allowed) return
  assert.equal(d.reason, reason, `${label}: reason (${d.detail})`)
  assert.equal(d.socks5Reply, socks5, `${label}: SOCKS5 REP`)
  assert.equal(d.convertError.code, convert, `${label}: Convert Error`)
}

// Regression corpus of docs/destination-policy.md: [input, reason, Convert code]; SOCKS5 REP is 02 for all of them.
const corpus: Array<[string, string, 1 | 32]> = [
  ['', 'invalid_destination', 1],
  ['0', 'ssrf_blocked', 1],
  ['2130706433', 'ssrf_blocked', 1],
  ['017700000001', 'ssrf_blocked', 1],
  ['0x7f.1', 'ssrf_blocked', 1],
  ['0x7f.0.0.1', 'ssrf_blocked', 1],
  ['0177.0.0.1', 'ssrf_blocked', 1],
  ['127.1', 'ssrf_blocked', 1],
  ['127.0.1', 'ssrf_blocked', 1],
  ['0x7f000001', 'ssrf_blocked', 1],
  ['0X7F.1', 'ssrf_blocked', 1],
  ['127.0.0.1.', 'ssrf_blocked', 1],
  ['::1', 'ssrf_blocked', 1],
  ['[::1]', 'ssrf_blocked', 1],
  ['0:0:0:0:0:0:0:1', 'ssrf_blocked', 1],
  ['::', 'ssrf_blocked', 1],
  ['::ffff:127.0.0.1', 'ssrf_blocked', 1],
  ['::ffff:7f00:1', 'ssrf_blocked', 1],
  ['::FFFF:7F00:1', 'ssrf_blocked', 1],
  ['::127.0.0.1', 'ssrf_blocked', 1],
  ['::ffff:0:127.0.0.1', 'ssrf_blocked', 1],
  ['64:ff9b::7f00:1', 'ssrf_blocked', 1],
  ['64:ff9b::10.0.0.1', 'ssrf_blocked', 32],
  ['2002:7f00:1::', 'ssrf_blocked', 1],
  ['2002:a9fe:a9fe::1', 'ssrf_blocked', 32],
  ['169.254.169.254', 'ssrf_blocked', 32],
  ['0xa9.0xfe.0xa9.0xfe', 'ssrf_blocked', 32],
  ['[fe80::1%eth0]', 'ssrf_blocked', 32],
  ['fe80::1%eth0', 'ssrf_blocked', 32],
  ['fe80::1', 'ssrf_blocked', 32],
  ['FE80::1', 'ssrf_blocked', 32],
  ['fd00::1', 'ssrf_blocked', 32],
  ['ff02::1', 'ssrf_blocked', 1],
  ['10.0.0.1', 'ssrf_blocked', 32],
  ['172.16.0.1', 'ssrf_blocked', 32],
  ['172.31.255.255', 'ssrf_blocked', 32],
  ['192.168.1.1', 'ssrf_blocked', 32],
  ['100.64.0.1', 'ssrf_blocked', 32],
  ['224.0.0.1', 'ssrf_blocked', 1],
  ['239.255.255.250', 'ssrf_blocked', 1],
  ['240.0.0.1', 'ssrf_blocked', 32],
  ['255.255.255.255', 'ssrf_blocked', 1],
  ['0.0.0.0', 'ssrf_blocked', 1],
  ['localhost', 'ssrf_blocked', 1],
  ['LOCALHOST.', 'ssrf_blocked', 1],
  ['evil.localhost', 'ssrf_blocked', 1],
  ['private.example', 'ssrf_blocked', 32],
  ['PRIVATE.EXAMPLE.', 'ssrf_blocked', 32],
  ['metadata.example', 'ssrf_blocked', 32],
  ['mixed.example', 'ssrf_blocked', 1],
  ['Mixed.Example.', 'ssrf_blocked', 1],
  ['mixed6.example', 'ssrf_blocked', 1],
  ['linklocal6.example', 'ssrf_blocked', 32],
  ['08.0.0.1', 'invalid_destination', 1],
  ['1.2.3.4.5', 'invalid_destination', 1],
  ['4294967296', 'invalid_destination', 1],
  ['256.0.0.1', 'invalid_destination', 1],
  ['example.123', 'invalid_destination', 1],
  ['127.0.0.1..', 'invalid_destination', 1],
  [' 127.0.0.1', 'invalid_destination', 1],
  ['127.0.0.1 ', 'invalid_destination', 1],
  ['[127.0.0.1]', 'invalid_destination', 1],
  ['%31%32%37.0.0.1', 'invalid_destination', 1],
  ['127.0.0.1:80', 'invalid_destination', 1],
  ['.', 'invalid_destination', 1],
  ['a..b', 'invalid_destination', 1],
  ['bücher.example', 'invalid_destination', 1],
  ['x'.repeat(64) + '.example', 'invalid_destination', 1]
]

test('SSRF regression corpus: every entry refused with its reason and wire answers', async () => {
  const policy = makePolicy()
  for (const [input, reason, convert] of corpus) {
    refused(await policy.check(input, 443, 'cpe-1'), reason, 0x02, convert, JSON.stringify(input))
  }
})

test('numeric forms are never handed to DNS', async () => {
  const resolver = fakeResolver(names)
  const policy = createDestinationPolicy({ resolver })
  for (const [input] of corpus.filter(([i]) => !/example/i.test(i))) await policy.check(input, 80, 's')
  assert.deepEqual(resolver.calls, [])
})

test('allowed: documentation and public-looking addresses give the vetted literal', async () => {
  const policy = makePolicy()
  const cases: Array<[string, string, 4 | 6]> = [
    ['192.0.2.1', '192.0.2.1', 4],
    ['198.51.100.200', '198.51.100.200', 4],
    ['203.0.113.5', '203.0.113.5', 4],
    ['2001:db8::1', '2001:db8::1', 6],
    ['[2001:DB8:0:0:0:0:0:1]', '2001:db8::1', 6],
    ['8.8.8.8', '8.8.8.8', 4],
    ['3405803777', '203.0.113.1', 4],
    ['0xcb.0x0.0x71.1', '203.0.113.1', 4],
    ['::ffff:192.0.2.1', '192.0.2.1', 4],
    ['64:ff9b::192.0.2.1', '64:ff9b::c000:201', 6],
    ['2002:c000:0201::1', '2002:c000:201::1', 6],
    ['172.32.0.1', '172.32.0.1', 4],
    ['100.128.0.1', '100.128.0.1', 4]
  ]
  for (const [input, address, family] of cases) {
    const d = await policy.check(input, 443, 'cpe-1')
    assert.ok(d.allowed, `${input}: ${d.allowed ? '' : d.detail}`)
    assert.deepEqual(d.addresses, [{ address, family }], input)
  }
})

test('allowed names carry every vetted address, A first', async () => {
  const d = await makePolicy().check('Public.Example.', 443, 'cpe-1')
  assert.ok(d.allowed)
  assert.equal(d.host, 'public.example')
  assert.deepEqual(d.addresses, [{ address: '192.0.2.10', family: 4 }, { address: '2001:db8::10', family: 6 }])
})

test('allow-list overrides the built-in ranges only', async () => {
  const policy = makePolicy({ config: { allowPrefixes: ['10.0.0.0/8', 'fd00::/8'], denyPrefixes: ['10.9.0.0/16'] } })
  const a = await policy.check('private.example', 80, 's')
  assert.ok(a.allowed)
  assert.deepEqual(a.addresses, [{ address: '10.1.2.3', family: 4 }])
  assert.ok((await policy.check('fd00::5', 80, 's')).allowed)
  assert.ok((await policy.check('::ffff:10.2.3.4', 80, 's')).allowed)
  refused(await policy.check('10.9.1.1', 80, 's'), 'acl_denied', 2, 32, 'deny wins over allow')
  refused(await policy.check('127.0.0.1', 80, 's'), 'ssrf_blocked', 2, 1, 'loopback still denied')
  refused(await policy.check('2002:7f00:1::', 80, 's'), 'ssrf_blocked', 2, 1, '6to4 loopback')
})

test('the concentrator\'s own addresses and infrastructure prefixes are refused, even if allow-listed', async () => {
  const policy = makePolicy({
    config: { ownAddresses: ['198.51.100.1'], infrastructurePrefixes: ['203.0.113.0/28'], allowPrefixes: ['0.0.0.0/0'] },
    ownAddresses: ['2001:db8:ffff::1']
  })
  refused(await policy.check('198.51.100.1', 443, 's'), 'ssrf_blocked', 2, 32, 'own v4')
  refused(await policy.check('3325256705', 443, 's'), 'ssrf_blocked', 2, 32, 'own v4, decimal')
  refused(await policy.check('::ffff:198.51.100.1', 443, 's'), 'ssrf_blocked', 2, 32, 'own v4, mapped')
  refused(await policy.check('[2001:db8:ffff:0::1]', 443, 's'), 'ssrf_blocked', 2, 32, 'own v6')
  refused(await policy.check('own.example', 443, 's'), 'ssrf_blocked', 2, 32, 'name resolving to own')
  refused(await policy.check('203.0.113.14', 443, 's'), 'ssrf_blocked', 2, 32, 'infrastructure')
  assert.ok((await policy.check('203.0.113.16', 443, 's')).allowed)
})

test('the host\'s addresses are refused in every form; hostAddresses.except and refuse: false open them', async () => {
  const host = new AddressSet(['198.51.100.1', '2001:db8:3::1', '203.0.113.1'])
  const policy = makePolicy({ hostAddresses: host })
  refused(await policy.check('198.51.100.1', 8081, 's'), 'ssrf_blocked', 2, 32, 'host v4')
  refused(await policy.check('::ffff:198.51.100.1', 8081, 's'), 'ssrf_blocked', 2, 32, 'host v4, mapped')
  refused(await policy.check('0xc6336401', 8081, 's'), 'ssrf_blocked', 2, 32, 'host v4, hex')
  refused(await policy.check('2001:0db8:0003:0000::0001', 8081, 's'), 'ssrf_blocked', 2, 32, 'host v6, long spelling')
  refused(await policy.check('own.example', 8081, 's'), 'ssrf_blocked', 2, 32, 'name resolving to a host address')
  refused(policy.checkAddress(Uint8Array.from([203, 0, 113, 1]), 443), 'ssrf_blocked', 2, 32, 'Convert / transparent literal')
  assert.ok((await policy.check('198.51.100.2', 8081, 's')).allowed, 'a neighbour is not an own address')
  const excepted = makePolicy({ hostAddresses: host, config: { hostAddresses: { except: ['203.0.113.0/24'] } } })
  assert.ok(excepted.checkAddress('203.0.113.1', 443).allowed, 'excepted host address')
  refused(excepted.checkAddress('198.51.100.1', 443), 'ssrf_blocked', 2, 32, 'only the excepted prefix opens')
  const configured = makePolicy({ hostAddresses: host, config: { ownAddresses: ['203.0.113.1'], hostAddresses: { except: ['203.0.113.1'] } } })
  refused(configured.checkAddress('203.0.113.1', 443), 'ssrf_blocked', 2, 32, 'except does not open a configured own address')
  const off = makePolicy({ hostAddresses: host, config: { hostAddresses: { refuse: false } } })
  assert.ok(off.checkAddress('198.51.100.1', 443).allowed, 'refuse: false')
  assert.throws(() => makePolicy({ config: { hostAddresses: { except: ['203.0.113.0/33'] } } }), /policy\.hostAddresses\.except: invalid prefix/)
})

test('configured deny-list and documentation ranges in production', async () => {
  const policy = makePolicy({ config: { denyPrefixes: ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24', '2001:db8::/32'] } })
  refused(await policy.check('192.0.2.1', 443, 's'), 'acl_denied', 2, 32, 'doc range')
  refused(await policy.check('64:ff9b::c000:201', 443, 's'), 'acl_denied', 2, 32, 'doc range via NAT64')
  refused(await policy.check('public.example', 443, 's'), 'acl_denied', 2, 32, 'name')
})

test('ports: range, deny-list, allow-list', async () => {
  const deny25 = makePolicy({ config: { deniedPorts: [25] } })
  refused(await deny25.check('192.0.2.1', 25, 's'), 'port_denied', 2, 32, 'port 25')
  assert.ok((await deny25.check('192.0.2.1', 587, 's')).allowed)
  for (const p of [0, -1, 65536, 1.5, Number.NaN]) refused(await deny25.check('192.0.2.1', p, 's'), 'invalid_destination', 2, 1, `port ${p}`)
  const only = makePolicy({ config: { allowedPorts: [80, 443] } })
  refused(await only.check('public.example', 22, 's'), 'port_denied', 2, 32, 'port 22')
  assert.ok((await only.check('public.example', 443, 's')).allowed)
})

test('DNS failures map to REP 04 (busy to 01); unparseable answers are refused', async () => {
  const policy = makePolicy()
  refused(await policy.check('nxdomain.example', 443, 's'), 'dns_failed', 4, 32, 'nxdomain')
  refused(await policy.check('slow.example', 443, 's'), 'dns_timeout', 4, 32, 'timeout')
  refused(await policy.check('busy.example', 443, 's'), 'dns_busy', 1, 32, 'busy')
  refused(await policy.check('garbage.example', 443, 's'), 'dns_failed', 4, 32, 'garbage answer')
  const throwing = createDestinationPolicy({ resolver: { resolve: async () => { throw new Error('boom') } } })
  refused(await throwing.check('x.example', 443, 's'), 'dns_failed', 4, 32, 'resolver threw')
})

test('checkAddress: Convert/transparent literals (bytes or text), never a name', () => {
  const policy = makePolicy()
  const mappedLoopback = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1])
  refused(policy.checkAddress(mappedLoopback, 80), 'ssrf_blocked', 2, 1, 'mapped loopback bytes')
  refused(policy.checkAddress(Uint8Array.from([224, 0, 0, 1]), 443), 'ssrf_blocked', 2, 1, 'multicast')
  refused(policy.checkAddress(Uint8Array.from([10, 0, 0, 1]), 443), 'ssrf_blocked', 2, 32, 'rfc1918')
  refused(policy.checkAddress(Uint8Array.from([1, 2, 3]), 443), 'invalid_destination', 2, 1, '3 bytes')
  refused(policy.checkAddress('public.example', 443), 'invalid_destination', 2, 1, 'name')
  refused(policy.checkAddress('fe80::1%eth0', 443), 'ssrf_blocked', 2, 32, 'scoped')
  const ok = policy.checkAddress(Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]), 443)
  assert.ok(ok.allowed)
  assert.deepEqual(ok.addresses, [{ address: '192.0.2.1', family: 4 }])
})

test('invalid configuration throws ConfigError naming the key', () => {
  assert.throws(() => makePolicy({ config: { allowPrefixes: ['10.0.0.0/33'] } }),
    (e: unknown) => e instanceof ConfigError && /allowPrefixes/.test(e.message))
  assert.throws(() => makePolicy({ config: { denyPrefixes: ['0x7f.1/8'] } }), ConfigError)
  assert.throws(() => createDestinationPolicy({ config: { dns: { servers: ['not a server'] } } }), ConfigError)
})

test('schema: `policy: {}` gives the deny-by-default config with the threat-10 resolver limits', () => {
  const cfg = Value.Default(DestinationPolicySchema, {}) as Record<string, unknown> & { dns: Record<string, unknown> }
  assert.ok(Value.Check(DestinationPolicySchema, cfg))
  for (const key of ['allowPrefixes', 'denyPrefixes', 'infrastructurePrefixes', 'ownAddresses', 'allowedPorts',
    'deniedPorts'] as const) assert.deepEqual(cfg[key], [])
  const { servers, timeoutMs, tries, ...limits } = cfg.dns
  assert.deepEqual([servers, timeoutMs, tries], [[], 2000, 2])
  assert.deepEqual(limits, { ...DefaultResolverLimits })
  assert.equal(Value.Check(DestinationPolicySchema, { ...cfg, extra: 1 }), false)
  assert.equal(Value.Check(DestinationPolicySchema, { ...cfg, deniedPorts: [0] }), false)
  assert.equal(Value.Check(DestinationPolicySchema, { ...cfg, dns: { ...cfg.dns, maxTtlSeconds: 301 } }), false)
})

/** A candidate is denied by default if it or its embedded IPv4 falls in a built-in range. */
const defaultSets = DefaultDenyRanges.map((r) => buildPrefixSet(r.prefixes).set)
function deniedByDefault (input: string): boolean | undefined {
  const d = canonicaliseDestination(input)
  if (d.kind !== 'ip') return undefined
  const emb = embeddedIpv4(d.ip)
  return [d.ip, ...(emb === undefined ? [] : [emb.ip])].some((ip) => defaultSets.some((s) => s.has(ip)))
}

const ipv4Text = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).chain(([a, b, c, d]) => fc.constantFrom(
  `${a}.${b}.${c}.${d}`, `${(a * 2 ** 24) + (b << 16) + (c << 8) + d}`, `0x${a.toString(16)}.${b}.${(c << 8) + d}`,
  `0${a.toString(8)}.0${b.toString(8)}.${c}.${d}`, `${a}.${(b << 16) + (c << 8) + d}`, `::ffff:${a}.${b}.${c}.${d}`,
  `64:ff9b::${a}.${b}.${c}.${d}`, `2002:${((a << 8) + b).toString(16)}:${((c << 8) + d).toString(16)}::1`))
const ipv6Text = fc.ipV6()
const anyString = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom(...corpus.map(([i]) => i)), ipv4Text, ipv6Text,
  fc.domain(), fc.ipV4Extended())

test('property: no string makes the policy throw; every default-denied literal is refused', async () => {
  const policy = makePolicy()
  await fc.assert(fc.asyncProperty(anyString, fc.integer({ min: -1, max: 70000 }), async (host, port) => {
    const d = await policy.check(host, port, 'prop')
    assert.equal(typeof d.allowed, 'boolean')
    const sync = policy.checkAddress(host, port)
    assert.equal(typeof sync.allowed, 'boolean')
    if (deniedByDefault(host) === true) {
      assert.equal(d.allowed, false)
      assert.equal(sync.allowed, false)
    }
    if (d.allowed) assert.ok(d.addresses.every((a) => deniedByDefault(a.address) === false))
  }), { numRuns: 3000 })
})

test('prototype-named destinations are ordinary unknown names (regression found by fast-check)', async () => {
  const policy = makePolicy()
  for (const name of ['__proto__', 'constructor', 'hasownproperty']) {
    const d = await policy.check(name, 80, name)
    refused(d, 'dns_failed', 0x04, 32, name)
  }
})
