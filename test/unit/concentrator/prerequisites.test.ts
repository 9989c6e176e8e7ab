import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../../shared/src/config/load-config.ts'
import { ConfigSchema, type ConcentratorConfig } from '../../../concentrator/src/config/config.ts'
import { concentratorPrerequisites } from '../../../concentrator/src/prerequisites.ts'

const dir = mkdtempSync(join(tmpdir(), 'hat-pq-conc-'))
after(() => { rmSync(dir, { recursive: true, force: true }) })

function config (text: string): ConcentratorConfig {
  const file = join(dir, 'concentrator.yaml')
  writeFileSync(file, text)
  return loadConfig(ConfigSchema, { file })
}

const summary = (c: ConcentratorConfig): string[] => concentratorPrerequisites(c).map((r) => r.kind === 'binary' ? r.name : r.kind === 'nft-tproxy' ? `nft-tproxy${r.owner ? '+owner' : ''}` : r.kind)
const MPTCP_LISTENER = 'listeners: [{ host: 127.0.0.1, port: 1080, mode: socks5 }]\n'
const TCP_LISTENER = 'listeners: [{ host: 127.0.0.1, port: 1080, mode: socks5, protocol: tcp }]\n'
const TRANSPARENT = 'transparent: { enabled: true, accessInterfaces: [acc0], joinEndpoints: [{ address: 192.0.2.1, interface: acc0, port: 7101 }]'

const NO_HOST = 'policy: { hostAddresses: { refuse: false } }\n'

test('MPTCP listeners need kernel MPTCP unless mptcp.onUnavailable is fallback; ip for the own-address refusal; nothing is exec\'d without it and transparent mode', () => {
  assert.deepEqual(summary(config(MPTCP_LISTENER)), ['mptcp', 'ip'])
  assert.deepEqual(summary(config(`${MPTCP_LISTENER}mptcp: { onUnavailable: fallback }\n`)), ['ip'])
  assert.deepEqual(summary(config(`${MPTCP_LISTENER}${NO_HOST}`)), ['mptcp'])
  assert.deepEqual(summary(config(`${TCP_LISTENER}${NO_HOST}`)), [])
})

test('transparent mode: MPTCP, ip, sysctl, nft and tproxy (owner tables only with failMode open)', () => {
  assert.deepEqual(summary(config(`${TCP_LISTENER}${TRANSPARENT} }\n`)), ['mptcp', 'ip', 'sysctl', 'nft', 'nft-tproxy+owner'])
  assert.deepEqual(summary(config(`${TCP_LISTENER}${TRANSPARENT}, failMode: closed }\n`)), ['mptcp', 'ip', 'sysctl', 'nft', 'nft-tproxy'])
})

test('scale-out join endpoints: MPTCP, ip and sysctl (the C flag), also over TCP listeners', () => {
  assert.deepEqual(summary(config(`${TCP_LISTENER}${NO_HOST}join: { endpoints: [{ address: 192.0.2.2, interface: acc0, port: 7201 }] }\n`)), ['mptcp', 'ip', 'sysctl'])
  assert.deepEqual(summary(config(`${TCP_LISTENER}${TRANSPARENT} }\njoin: { endpoints: [{ address: 192.0.2.2, interface: acc0, port: 7201 }] }\n`)), ['mptcp', 'ip', 'sysctl', 'nft', 'nft-tproxy+owner'])
})
