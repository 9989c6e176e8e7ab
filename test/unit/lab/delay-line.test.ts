import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { DelayLine, DirectionLine, JitterCurve, mulberry32, type Clock } from '../../../lab/delay-line.ts'

test('mulberry32 is deterministic per seed and uniform enough', () => {
  const a = mulberry32(42)
  const b = mulberry32(42)
  const xs = Array.from({ length: 10_000 }, () => a())
  assert.deepEqual(xs.slice(0, 5), Array.from({ length: 5 }, () => b()))
  assert.ok(xs.every((x) => x >= 0 && x < 1))
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length
  assert.ok(Math.abs(mean - 0.5) < 0.01, `mean ${mean}`)
})

test('jitter curve: bounded, slope ≤ 0.5, mean ≈ 0, spans the range', () => {
  fc.assert(fc.property(fc.integer(), fc.double({ min: 0.5, max: 50, noNaN: true }), (seed, j) => {
    const c = new JitterCurve(mulberry32(seed), j)
    let prev = c.offsetAt(0)
    for (let t = 0.1; t < 200 * j; t += 0.1 + j / 50) {
      const v = c.offsetAt(t)
      assert.ok(Math.abs(v) <= j + 1e-9)
      prev = v
    }
    return Math.abs(prev) <= j
  }), { numRuns: 50 })
  const c = new JitterCurve(mulberry32(7), 5)
  const vs: number[] = []
  for (let t = 0; t < 100_000; t += 0.25) vs.push(c.offsetAt(t))
  for (let i = 1; i < vs.length; i++) assert.ok(Math.abs((vs[i] as number) - (vs[i - 1] as number)) <= 0.5 * 0.25 + 1e-9)
  const mean = vs.reduce((s, v) => s + v, 0) / vs.length
  assert.ok(Math.abs(mean) < 0.3, `mean ${mean}`)
  assert.ok(vs.some((v) => v > 4) && vs.some((v) => v < -4))
})

test('FIFO: departures never reorder, also across live delay decreases', () => {
  fc.assert(fc.property(fc.integer(), fc.array(fc.double({ min: 0, max: 5, noNaN: true }), { minLength: 1, maxLength: 300 }), (seed, gaps) => {
    const d = new DirectionLine('up', { delayMs: 30, jitterMs: 5, lossPct: 0 }, mulberry32(seed), () => {})
    let t = 0
    let last = -Infinity
    gaps.forEach((g, i) => {
      t += g
      if (i === 100) d.setParams({ delayMs: 2, jitterMs: 1, lossPct: 0 }, t)
      const due = d.schedule(t)
      assert.ok(due !== undefined && due >= last && due >= t)
      last = due
    })
  }), { numRuns: 100 })
})

test('high packet rate keeps the mean delay at delayMs (no FIFO pile-up towards delay + jitter)', () => {
  const d = new DirectionLine('down', { delayMs: 30, jitterMs: 5, lossPct: 0 }, mulberry32(3), () => {})
  let sum = 0
  const n = 200_000
  for (let i = 0; i < n; i++) sum += (d.schedule(i * 0.25) as number) - i * 0.25 // 4000 packets/s
  assert.ok(Math.abs(sum / n - 30) < 0.5, `mean ${sum / n}`)
})

test('loss: binomial count within 4 sigma; 0 % never drops; 100 % and blackhole always drop', () => {
  const n = 100_000
  for (const pct of [0.1, 1, 5, 50]) {
    const d = new DirectionLine('up', { delayMs: 0, jitterMs: 0, lossPct: pct }, mulberry32(pct * 1000), () => {})
    let lost = 0
    for (let i = 0; i < n; i++) if (d.schedule(i) === undefined) lost++
    const p = pct / 100
    const sigma = Math.sqrt(n * p * (1 - p))
    assert.ok(Math.abs(lost - n * p) <= 4 * sigma, `${pct}%: ${lost}`)
  }
  const none = new DirectionLine('up', { delayMs: 1, jitterMs: 0, lossPct: 0 }, mulberry32(1), () => {})
  for (let i = 0; i < 1000; i++) assert.notEqual(none.schedule(i), undefined)
  const all = new DirectionLine('up', { delayMs: 1, jitterMs: 0, lossPct: 100 }, mulberry32(1), () => {})
  for (let i = 0; i < 1000; i++) assert.equal(all.schedule(i), undefined)
  none.setBlackhole(true)
  assert.equal(none.schedule(5000), undefined)
})

/** Fake clock: time advances only through `advance`, firing the armed callback on the way. */
function fakeClock (): Clock & { advance: (ms: number) => void, t: number } {
  let armed: { at: number, fn: () => void } | undefined
  const c = {
    t: 0,
    now: () => c.t,
    arm: (at: number, fn: () => void) => { armed = { at, fn } },
    cancel: () => { armed = undefined },
    advance: (ms: number) => {
      const end = c.t + ms
      while (armed !== undefined && armed.at <= end) {
        const a = armed
        armed = undefined
        c.t = Math.max(c.t, a.at)
        a.fn()
      }
      c.t = end
    }
  }
  return c
}

test('delay line engine: each packet leaves at arrival + delay, in order, one timer for both directions', () => {
  const clock = fakeClock()
  const out: Array<[string, number, number]> = []
  const up = new DirectionLine('up', { delayMs: 10, jitterMs: 0, lossPct: 0 }, mulberry32(1), (p) => out.push(['up', p[0] as number, clock.t]))
  const down = new DirectionLine('down', { delayMs: 3, jitterMs: 0, lossPct: 0 }, mulberry32(2), (p) => out.push(['down', p[0] as number, clock.t]))
  const line = new DelayLine(up, down, clock, { quantumMs: 0, latenessMs: 0 })
  line.onPacket(up, Buffer.from([1]))
  clock.advance(1)
  line.onPacket(down, Buffer.from([2]))
  line.onPacket(up, Buffer.from([3]))
  clock.advance(20)
  assert.deepEqual(out, [['down', 2, 4], ['up', 1, 10], ['up', 3, 11]])
  assert.equal(up.stats.forwarded, 2)
  assert.equal(up.stats.queued, 0)
  assert.equal(up.stats.errorMaxMs, 0)
})

test('zero delay writes at once without arming the timer', () => {
  const clock = fakeClock()
  let armed = 0
  const arm = clock.arm
  clock.arm = (at, fn) => { armed++; arm(at, fn) }
  const out: number[] = []
  const up = new DirectionLine('up', { delayMs: 0, jitterMs: 0, lossPct: 0 }, mulberry32(1), (p) => out.push(p[0] as number))
  const line = new DelayLine(up, new DirectionLine('down', { delayMs: 0, jitterMs: 0, lossPct: 0 }, mulberry32(1), () => {}), clock)
  for (let i = 0; i < 5; i++) line.onPacket(up, Buffer.from([i]))
  assert.deepEqual(out, [0, 1, 2, 3, 4])
  assert.equal(armed, 0)
})

test('release quantum batches wakes; packets leave on time or at most quantum/2 early; learnt lateness is compensated', () => {
  const clock = fakeClock()
  const LATE = 0.3 // this fake timer always wakes 0.3 ms late
  const arm = clock.arm
  clock.arm = (at, fn) => { arm(at + LATE, fn) }
  const errors: number[] = []
  const due = new Map<number, number>()
  const up = new DirectionLine('up', { delayMs: 10, jitterMs: 0, lossPct: 0 }, mulberry32(1),
    (p) => errors.push(clock.t - (due.get(p.readUInt32BE(0)) as number)))
  const line = new DelayLine(up, new DirectionLine('down', { delayMs: 0, jitterMs: 0, lossPct: 0 }, mulberry32(1), () => {}), clock,
    { quantumMs: 1, latenessMs: 0 })
  const n = 4000
  for (let i = 0; i < n; i++) {
    const p = Buffer.alloc(4)
    p.writeUInt32BE(i)
    due.set(i, clock.t + 10)
    line.onPacket(up, p)
    clock.advance(0.24) // ≈ 50 Mbit/s of 1500-byte packets
  }
  clock.advance(20)
  assert.equal(errors.length, n)
  const tail = errors.slice(1000) // after the lateness estimate has converged
  assert.ok(tail.every((e) => e >= -0.5 - 1e-6 && e <= 0.01), `error range ${Math.min(...tail)} .. ${Math.max(...tail)}`)
  assert.ok(line.wakes < n * 0.5, `wakes ${line.wakes}`)
  assert.ok(Math.abs(line.latenessMs - LATE) < 0.05, `lateness ${line.latenessMs}`)
})
