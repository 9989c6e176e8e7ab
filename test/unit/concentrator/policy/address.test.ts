import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import ipaddr from 'ipaddr.js'
import { canonicaliseDestination, embeddedIpv4, ipFromBytes, parseInetAton, parseIpv6 } from '../../../../concentrator/src/policy/address.ts'

test('inet_aton forms denote the IPv4 address the C library would use', () => {
  const cases: Array<[string, string | undefined]> = [
    ['0', '0.0.0.0'], ['2130706433', '127.0.0.1'], ['017700000001', '127.0.0.1'], ['0x7f.1', '127.0.0.1'],
    ['0x7f.0.0.1', '127.0.0.1'], ['0177.0.0.1', '127.0.0.1'], ['127.1', '127.0.0.1'], ['127.0.1', '127.0.0.1'],
    ['0x7F000001', '127.0.0.1'], ['0x', undefined], ['4294967295', '255.255.255.255'], ['1.16777215', '1.255.255.255'],
    ['1.2.65535', '1.2.255.255'], ['00000000000000000000177.1', '127.0.0.1'],
    ['4294967296', undefined], ['1.16777216', undefined], ['256.1.1.1', undefined], ['08', undefined], ['0x1g', undefined],
    ['1.2.3.4.5', undefined], ['1..2', undefined], ['', undefined], ['-1', undefined], ['+1', undefined], ['1e3', undefined]
  ]
  for (const [input, expected] of cases) assert.equal(parseInetAton(input)?.text, expected, input)
  // A bare `0x` is ambiguous between C libraries: not an address, and as a numeric name refused.
  assert.equal(canonicaliseDestination('0x').kind, 'invalid')
})

test('property: any inet_aton spelling of a 32-bit value parses to that value', () => {
  const spell = (v: number, base: number): string => base === 16 ? `0x${v.toString(16)}` : base === 8 ? `0${v.toString(8)}` : `${v}`
  fc.assert(fc.property(fc.nat({ max: 0xffffffff }), fc.integer({ min: 1, max: 4 }),
    fc.array(fc.constantFrom(8, 10, 16), { minLength: 4, maxLength: 4 }), (v, parts, bases) => {
      const bytes = [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]
      const head = bytes.slice(0, parts - 1)
      const last = bytes.slice(parts - 1).reduce((acc, b) => acc * 256 + b, 0)
      const text = [...head, last].map((x, i) => spell(x, bases[i] ?? 10)).join('.')
      assert.equal(parseInetAton(text)?.text, bytes.join('.'), text)
      assert.equal(canonicaliseDestination(text).kind, 'ip')
    }), { numRuns: 2000 })
})

test('property: the IPv6 parser agrees with ipaddr.js (except its ::a.b.c.d quirk) and formats per RFC 5952', () => {
  fc.assert(fc.property(fc.ipV6(), (s) => {
    const ours = parseIpv6(s)
    assert.ok(ours !== undefined, s)
    const theirs = ipaddr.IPv6.parse(s)
    if (!/^::[0-9.]+$/.test(s)) assert.deepEqual(Array.from(ours.bytes), theirs.toByteArray(), s)
    assert.deepEqual(parseIpv6(ours.text)?.bytes, ours.bytes)
    if (!/^::ffff:[0-9.]+$/i.test(ours.text)) assert.equal(ours.text, new ipaddr.IPv6(Array.from(ours.bytes)).toRFC5952String())
  }), { numRuns: 3000 })
})

test('IPv6 parsing: the deprecated ::a.b.c.d form stays IPv4-compatible (ipaddr.js would say mapped)', () => {
  assert.equal(parseIpv6('::127.0.0.1')?.text, '::7f00:1')
  assert.equal(ipaddr.parse('::127.0.0.1').toString(), '::ffff:7f00:1')
  assert.equal(parseIpv6('1:2:3:4:5:6:7:8')?.text, '1:2:3:4:5:6:7:8')
  assert.equal(parseIpv6('1:0:0:2:0:0:0:3')?.text, '1:0:0:2::3')
  assert.equal(parseIpv6('2001:db8:0:0:1:0:0:1')?.text, '2001:db8::1:0:0:1')
  for (const bad of ['1:2:3:4:5:6:7:8:9', ':::', '1::2::3', 'fe80::1%eth0', '::ffff:1.2.3', '::0x7f.1', '12345::', 'g::1']) {
    assert.equal(parseIpv6(bad), undefined, bad)
  }
})

test('embedded IPv4: mapped, compatible, translated, NAT64, 6to4', () => {
  const cases: Array<[string, string | undefined, string | undefined]> = [
    ['::ffff:127.0.0.1', 'mapped', '127.0.0.1'], ['::ffff:7f00:1', 'mapped', '127.0.0.1'],
    ['::127.0.0.1', 'compatible', '127.0.0.1'], ['::1', 'compatible', '0.0.0.1'],
    ['::ffff:0:a00:1', 'translated', '10.0.0.1'], ['64:ff9b::7f00:1', 'nat64', '127.0.0.1'],
    ['2002:7f00:1::', '6to4', '127.0.0.1'], ['2002:a9fe:a9fe:1::5', '6to4', '169.254.169.254'],
    ['2001:db8::1', undefined, undefined], ['64:ff9b:1::7f00:1', undefined, undefined]
  ]
  for (const [text, kind, v4] of cases) {
    const ip = parseIpv6(text)
    assert.ok(ip !== undefined)
    const e = embeddedIpv4(ip)
    assert.equal(e?.kind, kind, text)
    assert.equal(e?.ip.text, v4, text)
  }
})

test('canonicaliseDestination: names normalised, literals recognised, zone ids flagged', () => {
  assert.deepEqual(canonicaliseDestination('WWW.Example.COM.'), { kind: 'name', name: 'www.example.com' })
  assert.deepEqual(canonicaliseDestination('_srv.example'), { kind: 'name', name: '_srv.example' })
  assert.equal(canonicaliseDestination('[::1]').kind, 'ip')
  assert.equal(canonicaliseDestination('[fe80::1%eth0]').kind, 'scoped')
  assert.equal(canonicaliseDestination('fe80::1%25eth0').kind, 'scoped')
  for (const bad of ['', '.', '..', 'a..b', '-a.example', 'a-.example', 'a b', 'a/b', 'ex%41mple', '[]', '[::1', 'x'.repeat(254),
    `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}`, 'example.0x7f', '1.2.3.08', '\u212Aexample.com', 'LOCALHOS\u212A']) {
    assert.equal(canonicaliseDestination(bad).kind, 'invalid', bad)
  }
  assert.equal(canonicaliseDestination(`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`).kind, 'name')
})

test('ipFromBytes takes 4 or 16 bytes only', () => {
  assert.equal(ipFromBytes(Uint8Array.from([192, 0, 2, 1]))?.text, '192.0.2.1')
  assert.equal(ipFromBytes(new Uint8Array(16))?.text, '::')
  assert.equal(ipFromBytes(new Uint8Array(5)), undefined)
})
