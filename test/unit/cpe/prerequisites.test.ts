import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../../shared/src/config/load-config.ts'
import { ConfigSchema, type CpeConfig } from '../../../cpe/src/config/config.ts'
import { cpePrerequisites } from '../../../cpe/src/prerequisites.ts'

const dir = mkdtempSync(join(tmpdir(), 'hat-pq-cpe-'))
after(() => { rmSync(dir, { recursive: true, force: true }) })

function config (extra: string): CpeConfig {
  const file = join(dir, 'cpe.yaml')
  writeFileSync(file, `uplinks: [{ name: dsl, interface: eth1, role: dsl }]\nconcentrator: { host: 198.51.100.1, port: 1080 }\n${extra}`)
  return loadConfig(ConfigSchema, { file })
}

const summary = (c: CpeConfig): string[] => cpePrerequisites(c).map((r) => r.kind === 'binary' ? r.name : r.kind)

test('defaults (interception and uplinks managed, MPTCP required): nft, ip, owner-table tproxy, sysctl, MPTCP', () => {
  assert.deepEqual(summary(config('')), ['nft', 'ip', 'nft-tproxy', 'ip', 'sysctl', 'mptcp'])
  const tproxy = cpePrerequisites(config('')).find((r) => r.kind === 'nft-tproxy')
  assert.deepEqual(tproxy, { kind: 'nft-tproxy', owner: true, for: 'LAN interception (intercept.rules: managed)' })
})

test('external interception, operator-managed uplinks, MPTCP fallback: only ip (the uplink observer)', () => {
  assert.deepEqual(summary(config('intercept: { rules: external }\nmultipath: { rules: "off" }\nmptcp: { onUnavailable: fallback }\n')), ['ip'])
  assert.deepEqual(summary(config('intercept: { rules: "off" }\n')), ['ip', 'sysctl', 'mptcp'])
})
