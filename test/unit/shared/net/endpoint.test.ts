import { test } from 'node:test'
import assert from 'node:assert/strict'
import { endpointOf, familyOf, formatEndpoint, formatHostPort, formatLocal, formatRemote, localEndpoint, remoteEndpoint, unmapV4 } from '../../../../shared/src/net/endpoint.ts'

test('formatEndpoint: IPv4 plain, IPv6 in brackets', () => {
  assert.equal(formatEndpoint({ family: 4, address: '192.0.2.1', port: 443 }), '192.0.2.1:443')
  assert.equal(formatEndpoint({ family: 6, address: '2001:db8::1', port: 443 }), '[2001:db8::1]:443')
  assert.equal(formatEndpoint({ family: 6, address: '::1', port: 8080 }), '[::1]:8080')
})

test('formatHostPort: names and IPv4 as they are, IPv6 literals in brackets', () => {
  assert.equal(formatHostPort('example.com', 80), 'example.com:80')
  assert.equal(formatHostPort('198.51.100.7', 80), '198.51.100.7:80')
  assert.equal(formatHostPort('2001:db8::7', 80), '[2001:db8::7]:80')
})

test('unmapV4: only an IPv4-mapped IPv6 address is unwrapped', () => {
  assert.equal(unmapV4('::ffff:192.0.2.1'), '192.0.2.1')
  assert.equal(unmapV4('::FFFF:192.0.2.1'), '192.0.2.1')
  assert.equal(unmapV4('192.0.2.1'), '192.0.2.1')
  assert.equal(unmapV4('2001:db8::1'), '2001:db8::1')
  assert.equal(unmapV4('::ffff:c000:201'), '::ffff:c000:201', 'hex form left alone')
  assert.equal(unmapV4('::192.0.2.1'), '::192.0.2.1', 'IPv4-compatible is not mapped')
  assert.equal(unmapV4('64:ff9b::192.0.2.1'), '64:ff9b::192.0.2.1')
})

test('endpointOf and familyOf: the family follows the unwrapped text', () => {
  assert.equal(familyOf('2001:db8::1'), 6)
  assert.equal(familyOf('192.0.2.1'), 4)
  assert.deepEqual(endpointOf('::ffff:198.51.100.2', 5000), { family: 4, address: '198.51.100.2', port: 5000 })
  assert.deepEqual(endpointOf('2001:db8::2', 5000), { family: 6, address: '2001:db8::2', port: 5000 })
})

test('socket sides: remote and local endpoints, ?:0 when unknown', () => {
  const s = { remoteAddress: '::ffff:192.0.2.9', remotePort: 40000, localAddress: '2001:db8::1', localPort: 443 }
  assert.deepEqual(remoteEndpoint(s), { family: 4, address: '192.0.2.9', port: 40000 })
  assert.deepEqual(localEndpoint(s), { family: 6, address: '2001:db8::1', port: 443 })
  assert.equal(formatRemote(s), '192.0.2.9:40000')
  assert.equal(formatLocal(s), '[2001:db8::1]:443')
  assert.equal(remoteEndpoint({}), undefined)
  assert.equal(formatRemote({}), '?:0')
  assert.equal(formatLocal({ localAddress: '192.0.2.1' }), '?:0')
})
