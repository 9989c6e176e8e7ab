import { test } from 'node:test'
import assert from 'node:assert/strict'
import { HealthState, type Transition } from '../../../../cpe/src/health/health-state.ts'

const params = { downAfter: 3, upAfter: 3, holdDownMs: 1000, window: 10 }
type Step = ['ok' | 'lost' | 'carrier_up' | 'carrier_down', number]

/** Feeds a sequence of (event, time) and returns the transitions as `to@time`. */
function run (steps: readonly Step[], carrier = true): { h: HealthState, out: string[], all: Transition[] } {
  const h = new HealthState(params, 0, carrier)
  const all: Transition[] = []
  for (const [e, t] of steps) {
    const tr = e === 'ok' ? h.probe(10, t) : e === 'lost' ? h.probe(undefined, t) : h.carrier(e === 'carrier_up', t)
    if (tr !== undefined) all.push(tr)
  }
  return { h, out: all.map((tr) => `${tr.to}@${tr.at}`), all }
}
const every = (e: Step[0], from: number, n: number, step = 100): Step[] => Array.from({ length: n }, (_, i) => [e, from + i * step])

test('starts up with carrier, down without', () => {
  assert.equal(new HealthState(params, 0).state, 'up')
  assert.equal(new HealthState(params, 0, false).state, 'down')
})

test('N consecutive losses take it down; fewer do not', () => {
  assert.deepEqual(run([...every('lost', 100, 2), ['ok', 300], ...every('lost', 400, 2)]).out, [])
  const r = run(every('lost', 100, 3))
  assert.deepEqual(r.out, ['down@300'])
  assert.equal(r.all[0]?.detail, '3 probes lost')
  assert.equal(r.all[0]?.reason, 'probes_lost')
})

test('M answers bring it up, but not within the hold-down', () => {
  const down = every('lost', 100, 3) // down at 300
  assert.deepEqual(run([...down, ...every('ok', 400, 3)]).out, ['down@300'], 'answers at 400–600: hold-down until 1300')
  assert.deepEqual(run([...down, ...every('ok', 400, 10)]).out, ['down@300', 'up@1300'], 'first answer after the hold-down')
  assert.deepEqual(run([...down, ...every('ok', 2000, 3)]).out, ['down@300', 'up@2200'])
})

test('a loss resets the run of answers', () => {
  const steps: Step[] = [...every('lost', 100, 3), ...every('ok', 2000, 2), ['lost', 2200], ...every('ok', 2300, 2)]
  assert.deepEqual(run(steps).out, ['down@300'])
  assert.deepEqual(run([...steps, ['ok', 2500]]).out, ['down@300', 'up@2500'])
})

test('flapping path: alternating loss and answer never changes state', () => {
  const steps: Step[] = Array.from({ length: 40 }, (_, i) => [i % 2 === 0 ? 'lost' : 'ok', 100 * (i + 1)])
  const r = run(steps)
  assert.deepEqual(r.out, [])
  assert.equal(r.h.snapshot().lossRatio, 0.5)
})

test('flapping between down and up is bounded by the hold-down', () => {
  // 3 lost, 3 ok, repeatedly at 100 ms: at most one down per hold-down period plus the ups.
  const steps: Step[] = []
  for (let c = 0; c < 10; c++) for (let i = 0; i < 6; i++) steps.push([i < 3 ? 'lost' : 'ok', (c * 6 + i + 1) * 100])
  const r = run(steps)
  const downs = r.out.filter((s) => s.startsWith('down')).length
  assert.ok(downs <= Math.ceil(6000 / params.holdDownMs), `downs ${downs}`)
  for (let i = 1; i < r.all.length; i++) {
    const prev = r.all[i - 1]; const cur = r.all[i]
    if (prev?.to === 'down' && cur !== undefined) assert.ok(cur.at - prev.at >= params.holdDownMs)
  }
})

test('carrier loss: down at once, probes ignored until carrier returns, then M answers', () => {
  const r = run([['ok', 100], ['carrier_down', 150], ...every('ok', 200, 5), ['carrier_up', 700], ...every('ok', 1200, 3)])
  assert.deepEqual(r.out, ['down@150', 'up@1400'])
  assert.equal(r.all[0]?.reason, 'carrier_down')
  assert.equal(r.all[0]?.detail, 'carrier down')
})

test('carrier loss while already down changes nothing', () => {
  assert.deepEqual(run([...every('lost', 100, 3), ['carrier_down', 400]]).out, ['down@300'])
})

test('loss ratio over the sliding window; RTT EWMA', () => {
  const h = new HealthState(params, 0)
  for (let i = 0; i < 10; i++) h.probe(undefined, i)
  assert.equal(h.snapshot().lossRatio, 1)
  for (let i = 0; i < 5; i++) h.probe(8, 10 + i)
  assert.equal(h.snapshot().lossRatio, 0.5)
  assert.equal(h.snapshot().rttMs, 8)
  h.probe(16, 20)
  assert.equal(h.snapshot().rttMs, 9)
})

test('adaptive probe timeout: max(srtt + 4 × rttvar, 2 × srtt) clamped; fixed without a minimum', () => {
  const h = new HealthState(params, 0)
  assert.equal(h.probeTimeoutMs(20, 300), 300, 'no RTT yet: the upper bound')
  h.probe(20, 100) // srtt 20, rttvar 10 → 60
  assert.equal(h.probeTimeoutMs(20, 300), 60)
  assert.equal(h.probeTimeoutMs(undefined, 300), 300, 'adaptation off')
  for (let i = 0; i < 50; i++) h.probe(20, 200 + i) // steady 20 ms: rttvar decays
  assert.equal(h.probeTimeoutMs(30, 300), 40, 'twice the smoothed RTT')
  assert.equal(h.probeTimeoutMs(100, 300), 100, 'floor')
  h.rttSample(1000) // a late reply: the timeout grows, no verdict
  assert.ok(h.probeTimeoutMs(30, 300) >= 300)
  assert.equal(h.state, 'up')
  assert.ok(h.probeTimeoutMs(30, 2000) > 200, 'one slow sample raises srtt and rttvar')
})
