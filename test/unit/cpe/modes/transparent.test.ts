import { test } from 'node:test'
import assert from 'node:assert/strict'
import { transparentFallbackReason } from '../../../../cpe/src/modes/transparent.ts'
import { desiredState, endpointAddArgv } from '../../../../cpe/src/uplink/uplink-plan.ts'

test('fallback reason: none when MPTCP; no_mpc_synack when the far end answered without MPTCP; TFO data loss kept', () => {
  assert.equal(transparentFallbackReason({ mptcp: true, fallback: undefined }), undefined)
  assert.equal(transparentFallbackReason({ mptcp: false, fallback: 'other' }), 'no_mpc_synack')
  assert.equal(transparentFallbackReason({ mptcp: false, fallback: 'tfo_data_not_acked' }), 'tfo_data_not_acked')
})

test('fullmesh endpoints (transparent mode): the extra uplink\'s endpoint gets fullmesh, the primary none', () => {
  const specs = [{ name: 'dsl', role: 'dsl' as const, interface: 'dsl0', table: 100, endpoints: false },
    { name: 'lte', role: 'lte' as const, interface: 'lte0', table: 101, endpoints: true }]
  const link = (a: string) => ({ up: true, adminUp: true, addresses: [{ address: a, family: 4 as const }] })
  const observed = { links: new Map([['dsl0', link('198.51.100.2')], ['lte0', link('198.51.100.66')]]), gateways: new Map() }
  const mesh = desiredState(specs, observed, 'aggregate', 100, true)
  assert.deepEqual(mesh.endpoints, [{ address: '198.51.100.66', dev: 'lte0', backup: false, fullmesh: true }])
  assert.deepEqual(endpointAddArgv(mesh.endpoints[0]!), ['ip', 'mptcp', 'endpoint', 'add', '198.51.100.66', 'dev', 'lte0', 'subflow', 'fullmesh'])
  const plain = desiredState(specs, observed, 'backup', 100)
  assert.deepEqual(endpointAddArgv(plain.endpoints[0]!), ['ip', 'mptcp', 'endpoint', 'add', '198.51.100.66', 'dev', 'lte0', 'subflow', 'backup'])
})
