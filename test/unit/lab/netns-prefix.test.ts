import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ownPrefix, staleRunNamespaces } from '../../../lab/netns.ts'

test('ownPrefix: <base><pid>-, so two runs of one tool never share (and delete) a namespace', () => {
  assert.equal(ownPrefix('hat-bench-', 4242), 'hat-bench-4242-')
  assert.notEqual(ownPrefix('hat-bench-', 1), ownPrefix('hat-bench-', 2))
})

test('staleRunNamespaces: only <base><pid>-… of dead pids; live runs, other tools and the old fixed name are left alone', () => {
  const names = ['hat-bench-100-relay', 'hat-bench-200-relay', 'hat-bench-relay', 'hat-tp-hag', 'hat-bench-x-relay', 'hat-bench-300-']
  const alive = (pid: number): boolean => pid === 200
  assert.deepEqual(staleRunNamespaces(names, 'hat-bench-', alive), ['hat-bench-100-relay', 'hat-bench-300-'])
})
