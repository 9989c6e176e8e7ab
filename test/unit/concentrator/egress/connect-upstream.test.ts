import { test } from 'node:test'
import assert from 'node:assert/strict'
import { errnoToSocks5Reply } from '../../../../shared/src/codec/socks5.ts'
import { connectUpstream } from '../../../../concentrator/src/egress/connect-upstream.ts'
import { upstreamFailureReason } from '../../../../shared/src/net/connect-error.ts'

test('errno → metric reason and SOCKS5 REP', () => {
  const table = [
    ['ECONNREFUSED', 'refused', 5], ['ETIMEDOUT', 'timeout', 4], ['EHOSTUNREACH', 'unreachable', 4],
    ['ENETUNREACH', 'unreachable', 3], ['ECONNRESET', 'reset', 1], ['EACCES', 'other', 2], ['EWHATEVER', 'other', 1]
  ] as const
  for (const [code, reason, rep] of table) {
    assert.equal(upstreamFailureReason(code), reason, code)
    assert.equal(errnoToSocks5Reply(code), rep, code)
  }
})

test('an aborted attempt resolves ECANCELED without dialling and never throws', async () => {
  const controller = new AbortController()
  controller.abort()
  const r = await connectUpstream([{ address: '127.0.0.2', family: 4 }], { port: 9, timeoutMs: 1000, signal: controller.signal })
  assert.deepEqual(r.ok ? 'connected' : r.errno, 'ECANCELED')
})
