import { test } from 'node:test'
import assert from 'node:assert/strict'
import { echoServer, exchange, relayWarmUpStep, warmUp, type WarmUpStep } from '../../../../shared/src/daemon/warm-up.ts'

test('warmUp runs the steps in order and reports each', async () => {
  const order: string[] = []
  const step = (name: string): WarmUpStep => ({ name, run: async () => { order.push(name) } })
  const r = await warmUp([step('a'), step('b')])
  assert.deepEqual(order, ['a', 'b'])
  assert.deepEqual(r.steps.map((s) => [s.name, s.ok]), [['a', true], ['b', true]])
})

test('a failing step is reported, never thrown, and the next step still runs', async () => {
  const r = await warmUp([{ name: 'bad', run: async () => { throw new Error('boom') } }, { name: 'good', run: async () => {} }])
  assert.deepEqual(r.steps.map((s) => [s.name, s.ok, s.error]), [['bad', false, 'boom'], ['good', true, undefined]])
})

test('a step past the budget is aborted and the rest are skipped', async () => {
  let aborted = false
  const hang: WarmUpStep = {
    name: 'hang',
    run: async (signal) => new Promise<void>(() => { signal.addEventListener('abort', () => { aborted = true }) })
  }
  const started = performance.now()
  const r = await warmUp([hang, { name: 'after', run: async () => {} }], { budgetMs: 50 })
  assert.ok(performance.now() - started < 1000)
  assert.equal(aborted, true)
  assert.deepEqual(r.steps.map((s) => [s.name, s.ok]), [['hang', false], ['after', false]])
  assert.equal(r.steps[1]?.error, 'budget spent')
})

test('exchange gets the echo back from a loopback echo server', async () => {
  const signal = AbortSignal.timeout(2000)
  const echo = await echoServer(signal)
  try {
    assert.equal((await exchange(echo.port, Buffer.from('hello'), signal)).toString(), 'hello')
  } finally { echo.close() }
})

test('the relay step relays its payload over loopback (TCP and MPTCP-or-fallback clients)', async () => {
  for (const protocol of ['tcp', 'mptcp'] as const) {
    const r = await warmUp([relayWarmUpStep(undefined, protocol)], { budgetMs: 2000 })
    assert.deepEqual(r.steps.map((s) => [s.name, s.ok, s.error]), [['relay', true, undefined]], protocol)
  }
})
