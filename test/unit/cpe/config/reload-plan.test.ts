import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../../../../shared/src/config/load-config.ts'
import { ConfigSchema, type Config } from '../../../../cpe/src/config/config.ts'
import { planReload } from '../../../../cpe/src/config/reload-plan.ts'

const file = fileURLToPath(new URL('../../../fixtures/config/cpe.yaml', import.meta.url))
const base = (): Config => structuredClone(loadConfig(ConfigSchema, { file })) as Config

test('planReload: applied in place — log level, limits, ruleset and multipath mode changes', () => {
  const next = base()
  next.log.level = 'debug'
  next.limits.maxConnections = 10
  assert.deepEqual(planReload(base(), next), { rulesetChanged: false, modeChanged: false })
  next.intercept.bypass.destinations = ['192.0.2.0/24']
  next.multipath.mode = next.multipath.mode === 'aggregate' ? 'backup' : 'aggregate'
  assert.deepEqual(planReload(base(), next), { rulesetChanged: true, modeChanged: true })
})

for (const [key, change] of [
  ['health', (c: Config) => { c.health.enabled = !c.health.enabled }],
  ['health', (c: Config) => { c.health.intervalMs += 50 }],
  ['failover', (c: Config) => { c.failover.enabled = !c.failover.enabled }],
  ['failover', (c: Config) => { c.failover.kernel.staleLossCnt = 1 }],
  ['failover', (c: Config) => { c.failover.rulePriority -= 10 }],
  ['steering', (c: Config) => { c.steering.mode = c.steering.mode === 'active-standby' ? 'load-balancing' : 'active-standby' }],
  ['mode', (c: Config) => { c.mode = c.mode === 'socks5' ? 'convert' : 'socks5' }]
] as const) {
  test(`planReload: a change of ${key} needs a restart (refused, key named)`, () => {
    const next = base()
    change(next)
    assert.throws(() => planReload(base(), next), (err: unknown) => {
      const e = err as { code: string, message: string, detail?: { key?: string } }
      assert.equal(e.code, 'HYBRID_ERR_CONFIG_INVALID')
      assert.equal(e.detail?.key, key)
      assert.match(e.message, new RegExp(`^${key}: changed; this key needs a restart`))
      return true
    })
  })
}
