import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { classifyDomainName, parseInetAton } from '../../../../shared/src/codec/socks5-domain-name.ts'

const classify = (name: string | Uint8Array): ReturnType<typeof classifyDomainName> =>
  classifyDomainName(typeof name === 'string' ? Buffer.from(name, 'latin1') : name)

test('every inet_aton spelling becomes the IPv4 address it means (never a name)', () => {
  const table: Array<[string, string]> = [
    ['127.0.0.1', '127.0.0.1'],
    ['2130706433', '127.0.0.1'],
    ['017700000001', '127.0.0.1'],
    ['0x7f000001', '127.0.0.1'],
    ['0X7F.1', '127.0.0.1'],
    ['0x7f.1', '127.0.0.1'],
    ['0x7f.0.0.1', '127.0.0.1'],
    ['0177.0.0.1', '127.0.0.1'],
    ['0177.0.0.01', '127.0.0.1'],
    ['127.1', '127.0.0.1'],
    ['127.0.1', '127.0.0.1'],
    ['127.0.0.1.', '127.0.0.1'],
    ['0', '0.0.0.0'],
    ['169.254.169.254', '169.254.169.254'],
    ['0xa9.0xfe.0xa9.0xfe', '169.254.169.254'],
    ['4294967295', '255.255.255.255'],
    ['192.0.2.1', '192.0.2.1'],
    ['10.1.65535', '10.1.255.255']
  ]
  for (const [name, host] of table) assert.deepEqual(classify(name), { ok: true, type: 'ipv4', host }, name)
})

test('IPv6 literals, plain or bracketed, become IPv6 addresses in RFC 5952 form', () => {
  const table: Array<[string, string]> = [
    ['::1', '::1'],
    ['[::1]', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['::ffff:127.0.0.1', '::ffff:7f00:1'],
    ['::ffff:7f00:1', '::ffff:7f00:1'],
    ['::127.0.0.1', '::ffff:7f00:1'],
    ['64:ff9b::7f00:1', '64:ff9b::7f00:1'],
    ['2002:7f00:1::', '2002:7f00:1::'],
    ['[2001:DB8::1]', '2001:db8::1']
  ]
  for (const [name, host] of table) assert.deepEqual(classify(name), { ok: true, type: 'ipv6', host }, name)
})

test('host names are lower-cased LDH names without trailing dot', () => {
  const table: Array<[string, string]> = [
    ['example.com', 'example.com'],
    ['EXAMPLE.COM.', 'example.com'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
    ['a-b.c0', 'a-b.c0'],
    ['123.example', '123.example'],
    ['localhost', 'localhost'],
    ['0x7g.1a', '0x7g.1a'],
    [`${'a'.repeat(63)}.example`, `${'a'.repeat(63)}.example`]
  ]
  for (const [name, host] of table) assert.deepEqual(classify(name), { ok: true, type: 'domain', host }, name)
})

test('refused: empty, NUL, space, %, control, non-ASCII, non-LDH, numeric non-addresses, bad IPv6', () => {
  const refused: Array<string | Uint8Array> = [
    '', '\0', 'example.com\0.evil', 'exa mple.com', 'example.com ', '%31%32%37.0.0.1', 'fe80::1%eth0', '[fe80::1%eth0]',
    'a\tb', 'a\x7fb', Buffer.from('bücher.example', 'utf8'), 'under_score.example', '-lead.example', 'trail-.example',
    'a..b', '.example', 'example..', '..', '.', `${'a'.repeat(64)}.example`, `${'a.'.repeat(126)}ab`,
    '1.2.3.4.5', '256.1.1.1', '4294967296', '0x100000000', '09.1.1.1', '08', 'example.123', '1.2.3.0x', '0x', '0x.1', '0x7f.0x1g.1',
    '[::1', '::1]', '[127.0.0.1]', ':::1', '1::2::3', '::ffff:127.1', 'http://a', 'a/b', 'a@b'
  ]
  for (const name of refused) {
    const r = classify(name)
    assert.equal(r.ok, false, `${JSON.stringify(name.toString())} → ${JSON.stringify(r)}`)
  }
})

test('parseInetAton follows the glibc grammar', () => {
  assert.equal(parseInetAton('1.2.3.4'), '1.2.3.4')
  assert.equal(parseInetAton('1.2.772'), '1.2.3.4')
  assert.equal(parseInetAton('1.197380'), '1.3.3.4')
  assert.equal(parseInetAton('1.2.3.256'), undefined)
  assert.equal(parseInetAton('1.2.65536'), undefined)
  assert.equal(parseInetAton(''), undefined)
  assert.equal(parseInetAton('1.'), undefined)
  assert.equal(parseInetAton('+1'), undefined)
  assert.equal(parseInetAton('1e3'), undefined)
})

test('property: a 32-bit number in any inet_aton spelling maps to the same address', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(10, 16, 8), (n, base) => {
    const want = [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.')
    const spelled = base === 16 ? `0x${n.toString(16)}` : base === 8 ? `0${n.toString(8)}` : n.toString(10)
    assert.deepEqual(classify(spelled), { ok: true, type: 'ipv4', host: want })
  }))
})

test('property: classifyDomainName never throws and never passes a name with a numeric top label', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 255 }), (bytes) => {
    const r = classifyDomainName(bytes)
    if (r.ok && r.type === 'domain') {
      assert.match(r.host, /^[a-z0-9.-]+$/)
      assert.doesNotMatch(r.host.split('.').at(-1) ?? '', /^(?:[0-9]+|0x[0-9a-f]*)$/)
    }
  }), { numRuns: 2000 })
  fc.assert(fc.property(fc.stringMatching(/^[0-9a-fx.]{1,20}$/), (s) => { classify(s) }))
})
