import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Registry } from 'prom-client'
import { createLogger } from '../../../shared/src/log.ts'
import { warmUp } from '../../../shared/src/daemon/warm-up.ts'
import { createServices } from '../../../cpe/src/cpe-services.ts'
import { initialState } from '../../../cpe/src/cpe-state.ts'
import { asConfig } from '../../../cpe/src/cpe-reload.ts'
import { cpeWarmUpSteps } from '../../../cpe/src/cpe-warm-up.ts'
import { makeCpeConfig } from '../../helpers/cpe-harness.ts'

for (const mode of ['socks5', 'transparent'] as const) {
  test(`${mode}: the warm-up relays through the mode's upstream on loopback and counts nothing`, async () => {
    const config = makeCpeConfig({ mode, concentrator: { host: '192.0.2.1', port: 1080 } })
    const state = initialState(asConfig(config))
    const registry = new Registry()
    const s = createServices(state, { log: createLogger({ level: 'silent', name: 'test' }), registry, kernelMib: false, listenManagement: false })
    const r = await warmUp(cpeWarmUpSteps(s, state), { budgetMs: 3000 })
    const upstream = mode === 'transparent' ? 'transparent upstream' : 'socks5 upstream'
    assert.deepEqual(r.steps.map((x) => [x.name, x.ok, x.error]), [['relay', true, undefined], [upstream, true, undefined]])
    assert.equal(s.sessions.size, 0)
    const accepted = await registry.getSingleMetric('hybrid_connections_accepted_total')?.get()
    assert.equal(accepted?.values.reduce((n, v) => n + v.value, 0) ?? 0, 0)
    const bytes = await registry.getSingleMetric('hybrid_bytes_sent_total')?.get()
    assert.equal(bytes?.values.reduce((n, v) => n + v.value, 0) ?? 0, 0)
  })
}
