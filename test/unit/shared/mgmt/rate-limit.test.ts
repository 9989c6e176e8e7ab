import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { buildMgmtServer } from '../../../../shared/src/mgmt/mgmt-server.ts'

test('beyond the budget requests get 429 with Retry-After until the window rolls over', async (t) => {
  let clock = 1_000_000
  const app = buildMgmtServer({
    log: pino({ level: 'silent' }),
    registry: new Registry(),
    token: undefined,
    allowedHosts: ['localhost'],
    readiness: () => ({ ready: true, checks: {} }),
    status: () => ({}),
    rateLimit: { max: 3, windowMs: 2000, now: () => clock }
  })
  t.after(() => app.close())
  for (let i = 0; i < 3; i++) assert.equal((await app.inject({ method: 'GET', url: '/status' })).statusCode, 200)
  const limited = await app.inject({ method: 'GET', url: '/status' })
  assert.equal(limited.statusCode, 429)
  assert.equal(limited.headers['retry-after'], '2')
  assert.equal(limited.json().error.code, 'HYBRID_ERR_MGMT_RATE_LIMITED')
  clock += 2000
  assert.equal((await app.inject({ method: 'GET', url: '/status' })).statusCode, 200)
})
