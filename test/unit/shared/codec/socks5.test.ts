import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import ipaddr from 'ipaddr.js'
import {
  Socks5Command, Socks5Method, Socks5Reply, decodeAuthRequest, decodeAuthResponse, decodeGreeting, decodeMethodSelection,
  decodeReply, decodeRequest, encodeAuthRequest, encodeAuthResponse, encodeGreeting, encodeMethodSelection, encodeReply,
  encodeRequest, errnoToSocks5Reply
} from '../../../../shared/src/codec/socks5.ts'
import type { Decoded, Socks5Address } from '../../../../shared/src/codec/socks5.ts'
import { isHybridError } from '../../../../shared/src/errors.ts'
import { hex } from './socks5-test-helpers.ts'

const ok = <T>(r: Decoded<T>): { value: T, bytesRead: number } => {
  assert.ok(r !== undefined && r.ok, `expected a value, got ${JSON.stringify(r)}`)
  return { value: r.value, bytesRead: r.bytesRead }
}

// Golden vectors: the layouts of RFC 1928 §3–§6 and RFC 1929 §2 filled with documentation values.
const golden: Array<[string, Buffer, string]> = [
  ['greeting, no auth', encodeGreeting([Socks5Method.NoAuth]), '050100'],
  ['greeting, no auth + user/pass', encodeGreeting([0x00, 0x02]), '05020002'],
  ['method selection 00', encodeMethodSelection(Socks5Method.NoAuth), '0500'],
  ['method selection FF', encodeMethodSelection(Socks5Method.NoAcceptable), '05ff'],
  ['RFC 1929 request', encodeAuthRequest({ username: 'user', password: 'pass' }), '01 04 75736572 04 70617373'],
  ['RFC 1929 success', encodeAuthResponse(true), '0100'],
  ['RFC 1929 failure', encodeAuthResponse(false), '0101'],
  ['CONNECT IPv4', encodeRequest({ address: { type: 'ipv4', host: '192.0.2.1', port: 80 } }), '05 01 00 01 c0000201 0050'],
  ['CONNECT name', encodeRequest({ address: { type: 'domain', host: 'example.com', port: 443 } }), '05 01 00 03 0b 6578616d706c652e636f6d 01bb'],
  ['CONNECT IPv6', encodeRequest({ address: { type: 'ipv6', host: '2001:db8::1', port: 8080 } }),
    '05 01 00 04 20010db8000000000000000000000001 1f90'],
  ['BIND IPv4', encodeRequest({ command: Socks5Command.Bind, address: { type: 'ipv4', host: '198.51.100.7', port: 21 } }),
    '05 02 00 01 c6336407 0015'],
  ['reply success', encodeReply(Socks5Reply.Succeeded, { type: 'ipv4', host: '203.0.113.5', port: 1080 }), '05 00 00 01 cb007105 0438'],
  ['reply failure, unknown bound', encodeReply(Socks5Reply.ConnectionRefused), '05 05 00 01 00000000 0000']
]

test('encoders produce the RFC layouts (golden vectors)', () => {
  for (const [name, got, want] of golden) assert.equal(got.toString('hex'), hex(want).toString('hex'), name)
})

test('decoders read the golden vectors back', () => {
  assert.deepEqual(ok(decodeGreeting(hex('05020002'))), { value: { methods: [0, 2] }, bytesRead: 4 })
  assert.deepEqual(ok(decodeMethodSelection(hex('05ff'))), { value: { method: 0xff }, bytesRead: 2 })
  const auth = ok(decodeAuthRequest(hex('01 04 75736572 04 70617373')))
  assert.equal(auth.value.username.toString(), 'user')
  assert.equal(auth.value.password.toString(), 'pass')
  assert.deepEqual(ok(decodeAuthResponse(hex('0101'))), { value: { status: 1 }, bytesRead: 2 })
  assert.deepEqual(ok(decodeRequest(hex('05 01 00 04 20010db8000000000000000000000001 1f90'))).value,
    { command: 1, address: { type: 'ipv6', host: '2001:db8::1', port: 8080 } })
  assert.deepEqual(ok(decodeReply(hex('05 00 00 01 cb007105 0438'))),
    { value: { rep: 0, bound: { type: 'ipv4', host: '203.0.113.5', port: 1080 } }, bytesRead: 10 })
})

test('every proper prefix of every golden vector is "need more", never a fault', () => {
  const decoders = [decodeGreeting, decodeMethodSelection, decodeAuthRequest, decodeAuthResponse, decodeRequest, decodeReply]
  for (const [name, bytes] of golden) {
    const matching = decoders.filter((d) => { const r = d(bytes); return r?.ok === true && r.bytesRead === bytes.length })
    assert.ok(matching.length > 0, name)
    for (const d of matching) {
      for (let i = 0; i < bytes.length; i++) assert.equal(d(bytes.subarray(0, i)), undefined, `${name} prefix ${i}`)
    }
  }
})

test('decoders ignore bytes after the message and copy what they return', () => {
  const bytes = Buffer.concat([encodeAuthRequest({ username: 'u', password: 'p' }), hex('deadbeef')])
  const r = ok(decodeAuthRequest(bytes))
  assert.equal(r.bytesRead, 5)
  bytes.fill(0)
  assert.equal(r.value.username.toString(), 'u')
})

test('decoders report faults with their REP code', () => {
  const cases: Array<[Decoded<unknown>, string, number]> = [
    [decodeGreeting(hex('04')), 'HYBRID_ERR_SOCKS5_BAD_VERSION', 1],
    [decodeGreeting(hex('0500')), 'HYBRID_ERR_SOCKS5_NO_METHODS', 1],
    [decodeAuthRequest(hex('05')), 'HYBRID_ERR_SOCKS5_AUTH_BAD_VERSION', 1],
    [decodeAuthRequest(hex('0100')), 'HYBRID_ERR_SOCKS5_AUTH_BAD_LENGTH', 1],
    [decodeAuthRequest(hex('01 01 75 00')), 'HYBRID_ERR_SOCKS5_AUTH_BAD_LENGTH', 1],
    [decodeRequest(hex('04')), 'HYBRID_ERR_SOCKS5_BAD_VERSION', 1],
    [decodeRequest(hex('0500')), 'HYBRID_ERR_SOCKS5_COMMAND_NOT_SUPPORTED', 7],
    [decodeRequest(hex('050101')), 'HYBRID_ERR_SOCKS5_BAD_RESERVED', 1],
    [decodeRequest(hex('05010002')), 'HYBRID_ERR_SOCKS5_ADDRESS_TYPE_NOT_SUPPORTED', 8],
    [decodeRequest(hex('0501000300')), 'HYBRID_ERR_SOCKS5_BAD_DOMAIN', 4],
    [decodeRequest(hex('05 01 00 01 c0000201 0000')), 'HYBRID_ERR_SOCKS5_BAD_PORT', 2],
    [decodeMethodSelection(hex('04')), 'HYBRID_ERR_SOCKS5_BAD_REPLY', 1],
    [decodeAuthResponse(hex('05')), 'HYBRID_ERR_SOCKS5_BAD_REPLY', 1],
    [decodeReply(hex('050001')), 'HYBRID_ERR_SOCKS5_BAD_RESERVED', 1],
    [decodeReply(hex('05000009')), 'HYBRID_ERR_SOCKS5_BAD_REPLY', 1]
  ]
  for (const [r, code, rep] of cases) {
    assert.ok(r !== undefined && !r.ok, `${code}: ${JSON.stringify(r)}`)
    assert.equal(r.fault.code, code)
    assert.equal(r.fault.rep, rep, code)
  }
})

test('a reply may carry port 0 and any bound name (lenient), a request may not (strict)', () => {
  assert.equal(ok(decodeReply(encodeReply(0))).value.bound.port, 0)
  assert.deepEqual(ok(decodeReply(hex('05 00 00 03 03 415f42 0050'))).value.bound, { type: 'domain', host: 'A_B', port: 80 })
})

test('encoders throw HYBRID_ERR_SOCKS5_ENCODE for values that cannot be sent', () => {
  const bad: Array<() => unknown> = [
    () => encodeGreeting([]),
    () => encodeGreeting(new Array<number>(256).fill(0)),
    () => encodeGreeting([256]),
    () => encodeAuthRequest({ username: '', password: 'p' }),
    () => encodeAuthRequest({ username: 'u', password: 'p'.repeat(256) }),
    () => encodeRequest({ address: { type: 'ipv4', host: '127.1', port: 80 } }),
    () => encodeRequest({ address: { type: 'ipv6', host: 'fe80::1%eth0', port: 80 } }),
    () => encodeRequest({ address: { type: 'domain', host: '', port: 80 } }),
    () => encodeRequest({ address: { type: 'domain', host: 'a'.repeat(256), port: 80 } }),
    () => encodeRequest({ address: { type: 'domain', host: 'bücher.example', port: 80 } }),
    () => encodeRequest({ address: { type: 'ipv4', host: '192.0.2.1', port: 65536 } }),
    () => encodeReply(256)
  ]
  for (const f of bad) assert.throws(f, (e: unknown) => isHybridError(e) && e.code === 'HYBRID_ERR_SOCKS5_ENCODE', f.toString())
})

test('errnoToSocks5Reply maps dial errors to REP codes', () => {
  const table: Array<[string | undefined, number]> = [
    ['ECONNREFUSED', 5], ['EHOSTUNREACH', 4], ['ETIMEDOUT', 4], ['ENOTFOUND', 4], ['ENETUNREACH', 3],
    ['EPERM', 2], ['HYBRID_ERR_POLICY_DENIED', 2], ['ECONNRESET', 1], ['EMFILE', 1], [undefined, 1]
  ]
  for (const [code, rep] of table) assert.equal(errnoToSocks5Reply(code), rep, String(code))
})

// --- properties: decode(encode(x)) == x --------------------------------------------------------

const label = fc.stringMatching(/^[a-z](?:[a-z0-9-]{0,20}[a-z0-9])?$/)
export const arbDomain = fc.array(label, { minLength: 1, maxLength: 6 }).map((l) => l.join('.')).filter((n) => n.length <= 253)
export const arbAddress: fc.Arbitrary<Socks5Address> = fc.oneof(
  fc.record({ type: fc.constant('ipv4' as const), host: fc.ipV4(), port: fc.integer({ min: 1, max: 65535 }) }),
  fc.record({
    type: fc.constant('ipv6' as const),
    host: fc.ipV6().map((h) => ipaddr.IPv6.parse(h).toRFC5952String()),
    port: fc.integer({ min: 1, max: 65535 })
  }),
  fc.record({ type: fc.constant('domain' as const), host: arbDomain, port: fc.integer({ min: 1, max: 65535 }) })
).map((a) => ({ ...a })) // fc.record builds null-prototype objects
const arbBytes = fc.uint8Array({ minLength: 1, maxLength: 255 })

test('property: decode(encode(x)) == x for every message', () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 255 }), (methods) => {
    assert.deepEqual(ok(decodeGreeting(encodeGreeting(methods))).value.methods, methods)
  }))
  fc.assert(fc.property(arbBytes, arbBytes, (username, password) => {
    const r = ok(decodeAuthRequest(encodeAuthRequest({ username, password })))
    assert.deepEqual([...r.value.username], [...username])
    assert.deepEqual([...r.value.password], [...password])
  }))
  fc.assert(fc.property(arbAddress, (address) => {
    const bytes = encodeRequest({ address })
    assert.deepEqual(ok(decodeRequest(bytes)), { value: { command: 1, address }, bytesRead: bytes.length })
  }))
  fc.assert(fc.property(fc.integer({ min: 0, max: 255 }), arbAddress, (rep, bound) => {
    assert.deepEqual(ok(decodeReply(encodeReply(rep, bound))).value, { rep, bound })
  }))
})

test('property: decoders never throw on arbitrary bytes', () => {
  const decoders = [decodeGreeting, decodeMethodSelection, decodeAuthRequest, decodeAuthResponse, decodeRequest, decodeReply]
  fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
    for (const d of decoders) {
      const r = d(bytes)
      if (r?.ok === true) assert.ok(r.bytesRead <= bytes.length)
    }
  }), { numRuns: 500 })
})
