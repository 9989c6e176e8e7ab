import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHostGuard, hostName } from '../../../../shared/src/mgmt/host-allow-list.ts'

test('hostName drops the port, lower-cases and keeps IPv6 brackets', () => {
  assert.equal(hostName('LocalHost:9464'), 'localhost')
  assert.equal(hostName('127.0.0.1'), '127.0.0.1')
  assert.equal(hostName('[2001:db8::1]:9464'), '[2001:db8::1]')
  assert.equal(hostName('[::1]'), '[::1]')
  assert.equal(hostName(' mgmt.example.net '), 'mgmt.example.net')
})

test('an empty allow-list is a configuration error', () => {
  assert.throws(() => createHostGuard([]), /at least one allowed host/)
})
