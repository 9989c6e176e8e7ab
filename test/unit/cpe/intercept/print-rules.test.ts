import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../../../../shared/src/config/load-config.ts'
import { ConfigSchema } from '../../../../cpe/src/config/config.ts'
import { cpeConfigProblems } from '../../../../cpe/src/config/check.ts'
import { printRules } from '../../../../cpe/src/intercept/print-rules.ts'

const file = fileURLToPath(new URL('../../../../deploy/compose/socks5/cpe.yaml', import.meta.url))
const load = (set: string[] = []): ReturnType<typeof loadConfig<typeof ConfigSchema>> =>
  loadConfig(ConfigSchema, { file, env: {}, envPrefix: 'HYBRID_CPE_', argv: { set }, check: cpeConfigProblems })

test('--print-rules: the nft table the agent holds and its TCP policy routing', () => {
  const text = printRules(load())
  assert.match(text, /^# nftables/)
  assert.match(text, /table inet hybrid_cpe \{\n {2}flags owner/)
  assert.match(text, /ip -4 rule add fwmark 0x00000001 lookup 300 priority 50/)
  assert.ok(!text.includes('lan_udp'))
})

test('--print-rules with udp.enabled: the lan_udp chain, and the UDP routing the agent adds itself (as comments)', () => {
  const text = printRules(load(['udp.enabled=true', 'udp.port=7400']))
  assert.match(text, /chain lan_udp \{/)
  assert.match(text, /# ip -4 route add default dev hyb-udp0 table 301/)
})

test('--print-rules with intercept.rules off says so', () => {
  assert.match(printRules(load(['intercept.rules=off'])), /installs no interception rules/)
})
