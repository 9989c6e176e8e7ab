import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadConfig } from '../../../../shared/src/config/load-config.ts'
import { ConfigSchema, type Config, type ConcentratorConfig } from '../../../../concentrator/src/config/config.ts'
import { checkReload, startOnlyChange } from '../../../../concentrator/src/config/reload-plan.ts'

const base = (): Config => structuredClone(loadConfig(ConfigSchema)) as Config
const frozen = (c: Config): ConcentratorConfig => c as ConcentratorConfig

test('reload plan: reloadable sections pass (log, limits, auth, policy, listeners)', () => {
  const next = base()
  next.log.level = 'debug'
  next.limits.maxConnections = 10
  next.auth.trustedPrefixes = ['192.0.2.0/24']
  next.listeners = [{ ...next.listeners[0]!, port: 1081 }]
  assert.equal(startOnlyChange(frozen(base()), frozen(next)), undefined)
  assert.doesNotThrow(() => { checkReload(frozen(base()), frozen(next)) })
})

for (const [key, change] of [
  ['kernel', (c: Config) => { c.kernel = { staleLossCnt: 1 } }],
  ['kernel', (c: Config) => { c.kernel = { rtoMaxMs: 1000, tcpRetries2: 60 } }],
  ['probe', (c: Config) => { c.probe.enabled = true }],
  ['probe', (c: Config) => { c.probe.ratePerSecond = 10 }],
  ['transparent', (c: Config) => { c.transparent.listenPort = 7101 }],
  ['management', (c: Config) => { c.management.token = '0123456789abcdef0123' }],
  ['mptcp', (c: Config) => { c.mptcp.onUnavailable = c.mptcp.onUnavailable === 'fail' ? 'fallback' : 'fail' }]
] as const) {
  test(`reload plan: a change of ${key} needs a restart (refused, key named)`, () => {
    const next = base()
    change(next)
    assert.equal(startOnlyChange(frozen(base()), frozen(next)), key)
    assert.throws(() => { checkReload(frozen(base()), frozen(next)) }, (err: unknown) => {
      const e = err as { code: string, message: string, detail?: { key?: string } }
      assert.equal(e.code, 'HYBRID_ERR_CONFIG_INVALID')
      assert.equal(e.detail?.key, key)
      assert.match(e.message, new RegExp(`^${key}: changed; this key needs a restart`))
      return true
    })
  })
}
