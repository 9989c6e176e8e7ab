import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { DedupWindow } from '../../../../shared/src/udp/dedup-window.ts'

test('first copy delivered, second dropped, in any interleaving of the two accesses', () => {
  const w = new DedupWindow(64)
  const dsl = [1, 2, 3, 4, 5]
  const lte = [1, 2, 3, 4, 5]
  const got = [dsl[0], lte[0], dsl[1], dsl[2], lte[1], lte[2], dsl[3], lte[3], lte[4], dsl[4]].map((s) => w.accept(s as number))
  assert.deepEqual(got, ['new', 'duplicate', 'new', 'new', 'duplicate', 'duplicate', 'new', 'duplicate', 'new', 'duplicate'])
  assert.deepEqual(w.stats, { delivered: 5, duplicates: 5, tooOld: 0, resyncs: 0 })
})

test('reordering inside the window: late originals delivered once', () => {
  const w = new DedupWindow(32)
  assert.deepEqual([10, 14, 12, 11, 13, 12, 14].map((s) => w.accept(s)), ['new', 'new', 'new', 'new', 'new', 'duplicate', 'duplicate'])
})

test('below the window: too_old; far ahead: the window moves and forgets', () => {
  const w = new DedupWindow(32)
  w.accept(100)
  assert.equal(w.accept(68), 'too_old')
  assert.equal(w.accept(69), 'new')
  assert.equal(w.accept(1000), 'new')
  assert.equal(w.accept(969), 'new')
  assert.equal(w.accept(968), 'too_old')
  assert.equal(w.accept(969), 'duplicate')
})

test('the sequence wraps at 2^32 (serial arithmetic)', () => {
  const w = new DedupWindow(64)
  const seqs = [0xfffffffd, 0xfffffffe, 0xffffffff, 0, 1, 2]
  assert.deepEqual(seqs.map((s) => w.accept(s)), seqs.map(() => 'new'))
  assert.deepEqual(seqs.map((s) => w.accept(s)), seqs.map(() => 'duplicate'))
  assert.equal(w.accept(0xfffffffc), 'new')
})

test('a sender that restarts far below the window is dropped only until resyncAfter datagrams in a row', () => {
  const w = new DedupWindow(32, 4)
  w.accept(1_000_000)
  assert.deepEqual([1, 2, 3].map((s) => w.accept(s)), ['too_old', 'too_old', 'too_old'])
  assert.equal(w.accept(4), 'new')
  assert.equal(w.accept(5), 'new')
  assert.equal(w.accept(4), 'duplicate')
  assert.equal(w.stats.resyncs, 1)
})

test('model check: within the window, exactly the first copy of each sequence is new', () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 400 }), (seqs) => {
    const w = new DedupWindow(256)
    const seen = new Set<number>()
    for (const s of seqs) {
      const v = w.accept(s)
      assert.equal(v, seen.has(s) ? 'duplicate' : 'new', String(s))
      seen.add(s)
    }
  }))
})

test('bad sizes and sequences are refused (caller bug)', () => {
  for (const size of [0, 16, 48, 131072, 1.5]) assert.throws(() => new DedupWindow(size), RangeError, String(size))
  assert.throws(() => new DedupWindow(32, 0), RangeError)
  const w = new DedupWindow()
  for (const s of [-1, 2 ** 32, 1.5]) assert.throws(() => w.accept(s), RangeError)
})
