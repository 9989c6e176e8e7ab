import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AuthBackoff } from '../../../../concentrator/src/auth/auth-backoff.ts'

function make (): { b: AuthBackoff, clock: { t: number } } {
  const clock = { t: 1_000_000 }
  const b = new AuthBackoff({ maxFailures: 5, windowMs: 60_000, initialMs: 1000, maxMs: 60_000, maxSources: 3, now: () => clock.t })
  return { b, clock }
}

test('five failures in the window start a 1 s back-off, doubling up to 60 s', () => {
  const { b, clock } = make()
  for (let i = 0; i < 4; i++) assert.equal(b.recordFailure('s'), 0)
  assert.equal(b.throttledFor('s'), 0)
  assert.equal(b.recordFailure('s'), 1000)
  assert.equal(b.throttledFor('s'), 1000)
  assert.equal(b.throttledCount(), 1)
  const periods: number[] = []
  for (let i = 0; i < 8; i++) {
    clock.t += b.throttledFor('s')
    periods.push(b.recordFailure('s'))
  }
  assert.deepEqual(periods, [2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000])
})

test('failures outside the window do not count; success forgets the source', () => {
  const { b, clock } = make()
  for (let i = 0; i < 4; i++) { b.recordFailure('s'); clock.t += 20_000 }
  assert.equal(b.recordFailure('s'), 0, 'only 3 failures fall inside 60 s')
  b.recordSuccess('s')
  assert.equal(b.size, 0)
  assert.equal(b.throttledFor('other'), 0)
})

test('sources are independent, the table is bounded, sweep forgets quiet sources', () => {
  const { b, clock } = make()
  for (const s of ['a', 'b', 'c', 'd']) b.recordFailure(s)
  assert.equal(b.size, 3, 'oldest evicted')
  clock.t += 61_000
  b.sweep()
  assert.equal(b.size, 0)
})
