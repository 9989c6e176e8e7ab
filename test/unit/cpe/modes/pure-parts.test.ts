import { test } from 'node:test'
import assert from 'node:assert/strict'
import { coalesceDecision } from '../../../../cpe/src/modes/first-bytes.ts'
import { outcomeFor, outcomeForRep } from '../../../../cpe/src/modes/reply-action.ts'
import { PipeliningMemory } from '../../../../cpe/src/modes/pipelining-memory.ts'

const limits = { windowMs: 2, maxBytes: 16_384 }

test('coalescing: wait inside the window, send at its end, at the cap, on FIN, or at once with window 0', () => {
  assert.equal(coalesceDecision({ buffered: 0, elapsedMs: 0, ended: false }, limits), 'wait')
  assert.equal(coalesceDecision({ buffered: 500, elapsedMs: 1, ended: false }, limits), 'wait')
  assert.equal(coalesceDecision({ buffered: 0, elapsedMs: 2, ended: false }, limits), 'send')
  assert.equal(coalesceDecision({ buffered: 16_384, elapsedMs: 0, ended: false }, limits), 'send')
  assert.equal(coalesceDecision({ buffered: 0, elapsedMs: 0, ended: true }, limits), 'send')
  assert.equal(coalesceDecision({ buffered: 0, elapsedMs: 0, ended: false }, { ...limits, windowMs: 0 }), 'send')
})

test('every reply failure resets the LAN connection; counted by REP', () => {
  const cases: Array<[number, string, string]> = [
    [1, 'upstream', 'other'], [2, 'rejected', 'acl_denied'], [3, 'upstream', 'unreachable'], [4, 'upstream', 'unreachable'],
    [5, 'upstream', 'refused'], [6, 'upstream', 'timeout'], [7, 'rejected', 'unsupported_cmd'], [8, 'rejected', 'malformed'],
    [200, 'upstream', 'other']
  ]
  for (const [rep, kind, reason] of cases) {
    const o = outcomeForRep(rep)
    assert.equal(o.lan, 'reset')
    assert.deepEqual(o.count, { kind, reason }, `rep ${rep}`)
  }
  assert.deepEqual(outcomeFor({ type: 'auth' }).count, { kind: 'rejected', reason: 'auth_failed' })
  assert.deepEqual(outcomeFor({ type: 'timeout' }).count, { kind: 'upstream', reason: 'timeout' })
  assert.deepEqual(outcomeFor({ type: 'connect', errno: 'ECONNREFUSED' }).count, { kind: 'upstream', reason: 'refused' })
  assert.deepEqual(outcomeFor({ type: 'connect', errno: 'EHOSTUNREACH' }).count, { kind: 'upstream', reason: 'unreachable' })
  assert.deepEqual(outcomeFor({ type: 'closed' }).count, { kind: 'upstream', reason: 'reset' })
  assert.deepEqual(outcomeFor({ type: 'fin' }).count, { kind: 'upstream', reason: 'closed' })
})

test('pipelining memory: auto goes stepwise for a refusing concentrator until the memory expires', () => {
  let now = 0
  const m = new PipeliningMemory(1000, () => now, 2)
  assert.equal(m.shouldPipeline('auto', 'a'), true)
  assert.equal(m.shouldPipeline('never', 'a'), false)
  m.recordRefused('a')
  assert.equal(m.shouldPipeline('auto', 'a'), false)
  assert.equal(m.shouldPipeline('always', 'a'), true)
  assert.equal(m.shouldPipeline('auto', 'b'), true)
  assert.deepEqual(m.stepwiseKeys(), ['a'])
  now = 1000
  assert.equal(m.shouldPipeline('auto', 'a'), true)
  m.recordRefused('a'); m.recordRefused('b'); m.recordRefused('c') // bounded: the oldest is dropped
  assert.deepEqual(m.stepwiseKeys().sort(), ['b', 'c'])
  m.recordAccepted('b')
  assert.equal(m.shouldPipeline('auto', 'b'), true)
})
