import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LookupLimiter } from '../../../../concentrator/src/policy/lookup-limiter.ts'

test('slots: global and per-source caps, FIFO hand-over, bounded queue, abort while queued', async () => {
  const l = new LookupLimiter({ maxConcurrent: 3, maxPerSource: 2, maxQueued: 3 })
  const a1 = await l.acquire('a')
  const a2 = await l.acquire('a')
  const b1 = await l.acquire('b')
  assert.ok(a1 !== undefined && a2 !== undefined && b1 !== undefined)
  assert.equal(l.active, 3)
  const ac = new AbortController()
  const waitA = l.acquire('a')
  const waitB = l.acquire('b', ac.signal)
  const waitC = l.acquire('c')
  assert.equal(l.queued, 3)
  assert.equal(await l.acquire('d'), undefined, 'queue full')
  ac.abort()
  assert.equal(await waitB, undefined, 'aborted while queued')
  assert.equal(l.queued, 2)
  b1()
  b1()
  assert.equal(l.active, 3, 'double release is harmless; the freed slot went to the next waiter that fits')
  assert.equal(l.activeFor('b'), 0)
  const c = await waitC
  assert.ok(c !== undefined, "'a' is at its per-source cap, so 'c' overtakes it")
  a1()
  const a3 = await waitA
  assert.ok(a3 !== undefined)
  assert.equal(l.activeFor('a'), 2)
  for (const r of [a2, a3, c]) r()
  assert.equal(l.active, 0)
})

test('per-source queue share is maxPerSource × 4', async () => {
  const l = new LookupLimiter({ maxConcurrent: 100, maxPerSource: 1, maxQueued: 100 })
  await l.acquire('x')
  for (let i = 0; i < 4; i++) l.acquire('x').catch(() => {}) // stay queued
  assert.equal(await l.acquire('x'), undefined)
  assert.ok(await l.acquire('y') !== undefined)
  assert.equal(l.queued, 4)
})
