import { test } from 'node:test'
import assert from 'node:assert/strict'
import { dslBulkAt } from '../../../lab/scenario-priority.ts'

test('dslBulkAt: first window of at least windowMs where DSL carries the share; late samples widen the window', () => {
  // kB per sample: LTE only, then DSL only; samples 100 ms apart
  const s = { t: [0, 100, 200, 300, 400, 500, 600], dsl: [0, 0, 0, 100, 200, 300, 400], lte: [0, 100, 200, 200, 200, 200, 200] }
  assert.equal(dslBulkAt(s, 0, 300, 0.8), 200)
  assert.equal(dslBulkAt(s, 250, 300, 0.8), 300)
  // on a loaded host the samples come 400 ms apart: still found (a 300 ms window spans one gap)
  const late = { t: [0, 400, 800, 1200], dsl: [0, 0, 400, 800], lte: [0, 400, 400, 400] }
  assert.equal(dslBulkAt(late, 0, 300, 0.8), 400)
  assert.equal(dslBulkAt({ t: [0, 100], dsl: [0, 0], lte: [0, 0] }, 0, 300, 0.8), undefined, 'no window long enough')
  assert.equal(dslBulkAt({ t: [0, 400], dsl: [0, 0], lte: [0, 0] }, 0, 300, 0.8), undefined, 'no bytes')
})
