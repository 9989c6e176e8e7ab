import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import fc from 'fast-check'
import {
  decodeSockaddr, decodeSockaddrIn, decodeSockaddrIn6, encodeSockaddr, formatIpv6, ipFamily, parseIpLiteral
} from '../../../../shared/src/codec/sockaddr.ts'
import { HybridError } from '../../../../shared/src/errors.ts'
import { readFixture, readMeta } from '../../../helpers/mptcp-fixtures.ts'

test('sockaddr_in golden bytes: family LE, port BE, address, 8 zero bytes', () => {
  assert.equal(encodeSockaddr('192.0.2.1', 443).toString('hex'), '0200' + '01bb' + 'c0000201' + '0000000000000000')
})

test('sockaddr_in6 golden bytes: family LE, port BE, flowinfo, address, scope id LE', () => {
  assert.equal(
    encodeSockaddr('2001:db8::1', 8080).toString('hex'),
    '0a00' + '1f90' + '00000000' + '20010db8000000000000000000000001' + '00000000'
  )
  assert.equal(encodeSockaddr('fe80::1%3', 1).subarray(24).toString('hex'), '03000000')
})

test('decode round-trips encode for v4 and v6', () => {
  assert.deepEqual(decodeSockaddr(encodeSockaddr('198.51.100.7', 65535)), { family: 4, address: '198.51.100.7', port: 65535 })
  assert.deepEqual(decodeSockaddr(encodeSockaddr('2001:db8:0:0:1::1', 0)), {
    family: 6, address: '2001:db8::1:0:0:1', port: 0, flowInfo: 0, scopeId: 0
  })
})

test('property: any 4/16 address bytes and port survive encode → decode', () => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 65535 }), fc.boolean(), (bytes, port, v4) => {
    const text = v4 ? Array.from(bytes.subarray(0, 4)).join('.') : formatIpv6(bytes)
    const decoded = decodeSockaddr(encodeSockaddr(text, port))
    assert.equal(decoded?.address, text)
    assert.equal(decoded?.port, port)
  }))
})

test('property: IPv6 text form matches glibc inet_ntop (Node SocketAddress) exactly', () => {
  // Bias towards zero groups so runs, ties, mapped and compatible forms all occur.
  const group = fc.oneof(fc.constant(0), fc.constant(0), fc.constant(0xffff), fc.integer({ min: 0, max: 0xffff }))
  fc.assert(fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), (groups) => {
    const bytes = new Uint8Array(16)
    groups.forEach((g, i) => { bytes[2 * i] = g >> 8; bytes[2 * i + 1] = g & 0xff })
    const full = groups.map((g) => g.toString(16)).join(':')
    assert.equal(formatIpv6(bytes), new net.SocketAddress({ address: full, family: 'ipv6' }).address)
  }), { numRuns: 2000 })
})

test('IP literal parsing rejects names, brackets, non-numeric zones and sloppy IPv4', () => {
  for (const bad of ['example.com', 'localhost', '[::1]', 'fe80::1%eth0', '01.2.3.4', '1.2.3', '256.1.1.1', '', '::g']) {
    assert.equal(parseIpLiteral(bad), undefined, bad)
  }
  assert.equal(ipFamily('192.0.2.1'), 4)
  assert.equal(ipFamily('::ffff:192.0.2.1'), 6)
  assert.throws(() => encodeSockaddr('example.com', 1), (err: unknown) => err instanceof HybridError && err.code === 'HYBRID_ERR_SOCKET_ADDRESS')
  assert.throws(() => encodeSockaddr('192.0.2.1', 65536), (err: unknown) => err instanceof HybridError && err.code === 'HYBRID_ERR_SOCKET_ADDRESS')
})

test('decoders never throw: short buffers and unknown families give undefined', () => {
  assert.equal(decodeSockaddrIn(new Uint8Array(7)), undefined)
  assert.equal(decodeSockaddrIn6(new Uint8Array(23)), undefined)
  assert.equal(decodeSockaddr(new Uint8Array(128)), undefined, 'AF_UNSPEC slot')
  assert.equal(decodeSockaddr(encodeSockaddr('192.0.2.1', 1).subarray(0, 1)), undefined)
  assert.equal(decodeSockaddrIn6(encodeSockaddr('192.0.2.1', 1)), undefined, 'wrong family')
  fc.assert(fc.property(fc.uint8Array({ maxLength: 140 }), (bytes) => { decodeSockaddr(bytes) }))
})

test('sockaddr_storage slots captured from MPTCP_FULL_INFO on this kernel decode to the real endpoints', () => {
  const meta = readMeta()
  for (const family of [4, 6] as const) {
    const m = family === 4 ? meta.v4 : meta.v6
    const sf = readFixture(`v${family}-client-full-info-subflows`)
    assert.deepEqual(
      { ...decodeSockaddr(sf.subarray(8, 136)), flowInfo: undefined, scopeId: undefined },
      { family, address: m.clientLocalAddress, port: m.clientLocalPort, flowInfo: undefined, scopeId: undefined }
    )
    assert.equal(decodeSockaddr(sf.subarray(136, 264))?.port, m.serverPort)
    assert.equal(decodeSockaddr(sf.subarray(136, 264))?.address, m.serverAddress)
  }
})
