import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { checkConnectUdpRequest, connectUdpPath, parseConnectUdpPath } from '../../../../shared/src/codec/connect-udp.ts'

const P = '/.well-known/masque/udp/'

test('paths from the default template (RFC 9298 §3): IPv4, IPv6 with %3A, a host name', () => {
  assert.equal(connectUdpPath('192.0.2.6', 443), `${P}192.0.2.6/443/`)
  assert.equal(connectUdpPath('2001:db8::42', 443), `${P}2001%3Adb8%3A%3A42/443/`)
  assert.equal(connectUdpPath('[2001:db8::42]', 53), `${P}2001%3Adb8%3A%3A42/53/`)
  assert.equal(connectUdpPath('www.example.com', 8443), `${P}www.example.com/8443/`)
  for (const port of [0, 65536, 1.5]) assert.throws(() => connectUdpPath('192.0.2.6', port), RangeError)
})

test('parse: the targets back, addresses normalised as for SOCKS5', () => {
  assert.deepEqual(parseConnectUdpPath(`${P}192.0.2.6/443/`), { ok: true, target: { type: 'ipv4', host: '192.0.2.6', port: 443 } })
  assert.deepEqual(parseConnectUdpPath(`${P}2001%3Adb8%3A%3A42/443/`), { ok: true, target: { type: 'ipv6', host: '2001:db8::42', port: 443 } })
  assert.deepEqual(parseConnectUdpPath(`${P}2001%3adb8%3a0%3a0%3a0%3a0%3a0%3a42/1/`), { ok: true, target: { type: 'ipv6', host: '2001:db8::42', port: 1 } })
  assert.deepEqual(parseConnectUdpPath(`${P}WWW.Example.COM/65535/`), { ok: true, target: { type: 'domain', host: 'www.example.com', port: 65535 } })
  // a name a resolver would read as an address is that address, so policy vets what is dialled
  assert.deepEqual(parseConnectUdpPath(`${P}0x7f.1/53/`), { ok: true, target: { type: 'ipv4', host: '127.0.0.1', port: 53 } })
})

test('parse: malformed requests are 400 with a reason, other paths 404', () => {
  const bad: Array<[string, number, RegExp]> = [
    [`${P}192.0.2.6/0/`, 400, /target_port/],
    [`${P}192.0.2.6/65536/`, 400, /target_port/],
    [`${P}192.0.2.6/0443/`, 400, /target_port/],
    [`${P}192.0.2.6/443`, 400, /trailing slash/],
    [`${P}192.0.2.6/443/?x=1`, 400, /trailing slash/],
    [`${P}192.0.2.6/443/extra/`, 400, /trailing slash/],
    [`${P}/443/`, 400, /target_host/],
    [`${P}a%G1/443/`, 400, /percent escape/],
    [`${P}fe80%3A%3A1%25eth0/443/`, 400, /target_host/],
    [`${P}a_b.example/443/`, 400, /LDH/],
    [`${P}a%00b/443/`, 400, /non-printable/],
    [`${P}caf\u00e9.example/443/`, 400, /non-printable/],
    [`${P}2001%3Adb8%3A%3Ag/443/`, 400, /IPv6/],
    ['/.well-known/masque/ip/192.0.2.6/443/', 404, /not under/],
    ['/', 404, /not under/]
  ]
  for (const [path, status, detail] of bad) {
    const r = parseConnectUdpPath(path)
    assert.equal(r.ok, false, path)
    if (r.ok) continue
    assert.equal(r.status, status, path)
    assert.match(r.detail, detail, path)
  }
})

test('parse(path(host, port)) gives the target back for any IPv4/IPv6 address and port', () => {
  fc.assert(fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), fc.integer({ min: 1, max: 65535 }), (host, port) => {
    const r = parseConnectUdpPath(connectUdpPath(host, port))
    assert.equal(r.ok, true, host)
    if (r.ok) assert.equal(r.target.port, port)
  }))
})

test('parse never throws on arbitrary paths', () => {
  fc.assert(fc.property(fc.string({ maxLength: 80 }), fc.string({ maxLength: 80 }), (a, b) => {
    const r = parseConnectUdpPath(`${P}${a}/${b}`)
    assert.equal(typeof r.ok, 'boolean')
  }))
})

const ok = { ':method': 'CONNECT', ':protocol': 'connect-udp', ':scheme': 'https', ':authority': 'concentrator.example', ':path': `${P}192.0.2.6/443/` }

test('request check (RFC 9298 §3.5 for HTTP/2): method, :protocol, pseudo-headers, capsule-protocol', () => {
  assert.deepEqual(checkConnectUdpRequest(ok), { ok: true, target: { type: 'ipv4', host: '192.0.2.6', port: 443 } })
  assert.equal(checkConnectUdpRequest({ ...ok, 'capsule-protocol': '?1' }).ok, true)
  const cases: Array<[Record<string, string | string[] | undefined>, number, RegExp]> = [
    [{ ...ok, ':method': 'GET' }, 405, /CONNECT/],
    [{ ...ok, ':protocol': undefined }, 400, /:protocol/],
    [{ ...ok, ':protocol': 'websocket' }, 400, /:protocol/],
    [{ ...ok, ':scheme': '' }, 400, /:scheme/],
    [{ ...ok, ':authority': undefined }, 400, /:authority/],
    [{ ...ok, ':path': undefined }, 400, /:path/],
    [{ ...ok, 'capsule-protocol': '?0' }, 400, /capsule-protocol/],
    [{ ...ok, 'capsule-protocol': ['?1', '?1'] }, 400, /capsule-protocol/],
    [{ ...ok, ':path': `${P}192.0.2.6/0/` }, 400, /target_port/]
  ]
  for (const [h, status, detail] of cases) {
    const r = checkConnectUdpRequest(h)
    assert.equal(r.ok, false, JSON.stringify(h))
    if (r.ok) continue
    assert.equal(r.status, status, JSON.stringify(h))
    assert.match(r.detail, detail)
  }
})
