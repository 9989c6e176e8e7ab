import { test } from 'node:test'
import assert from 'node:assert/strict'
import { plainAddress, transparentRejectReason } from '../../../../concentrator/src/transparent/transparent-connection.ts'

test('plainAddress unwraps IPv4-mapped IPv6 only', () => {
  assert.equal(plainAddress('::ffff:203.0.113.10'), '203.0.113.10')
  assert.equal(plainAddress('2001:db8::1'), '2001:db8::1')
  assert.equal(plainAddress('203.0.113.10'), '203.0.113.10')
  assert.equal(plainAddress(undefined), undefined)
})

test('policy refusals map to the closed reject-reason set', () => {
  assert.equal(transparentRejectReason('ssrf_blocked'), 'ssrf_blocked')
  assert.equal(transparentRejectReason('port_denied'), 'acl_denied')
  assert.equal(transparentRejectReason('acl_denied'), 'acl_denied')
  assert.equal(transparentRejectReason('invalid_destination'), 'malformed')
})
