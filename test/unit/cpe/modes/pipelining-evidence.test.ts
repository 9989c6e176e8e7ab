import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pipeliningEvidence, type PipelinedFailure } from '../../../../cpe/src/modes/pipelining-evidence.ts'

const judge = (f: PipelinedFailure): string => pipeliningEvidence(f).evidence

test('pipelining evidence: only the credentials probe is conclusive', () => {
  assert.equal(judge({ event: 'probe', greetingOnly: true, silent: false }), 'conclusive')
  assert.equal(judge({ event: 'probe', greetingOnly: false, silent: false }), 'none')
})

test('pipelining evidence: a destination-shaped failure (greeting and auth answered, CONNECT not) is no evidence', () => {
  // With credentials the auth status arrived: greetingOnly is false at the deadline.
  assert.equal(judge({ event: 'deadline', greetingOnly: false, silent: false }), 'none')
  assert.equal(judge({ event: 'deadline', greetingOnly: false, silent: true }), 'none', 'silent concentrator: a timeout')
  assert.equal(judge({ event: 'fin', greetingOnly: false, silent: false }), 'none', 'FIN after the auth status')
  assert.equal(judge({ event: 'close', greetingOnly: false, silent: true, errno: 'ECONNREFUSED' }), 'none', 'refused connect')
  assert.equal(judge({ event: 'close', greetingOnly: false, silent: true, errno: 'ETIMEDOUT' }), 'none')
})

test('pipelining evidence: what a server that does not read ahead does is a suspicion (confirmed by a stepwise retry)', () => {
  assert.equal(judge({ event: 'deadline', greetingOnly: true, silent: false }), 'suspect')
  assert.equal(judge({ event: 'fin', greetingOnly: true, silent: false }), 'suspect')
  assert.equal(judge({ event: 'fin', greetingOnly: false, silent: true }), 'suspect')
  assert.equal(judge({ event: 'close', greetingOnly: true, silent: false }), 'suspect')
  assert.equal(judge({ event: 'close', greetingOnly: false, silent: true, errno: 'ECONNRESET' }), 'suspect')
  assert.equal(judge({ event: 'close', greetingOnly: false, silent: true }), 'suspect')
  assert.equal(judge({ event: 'bad-reply', greetingOnly: false, silent: false }), 'suspect')
})
