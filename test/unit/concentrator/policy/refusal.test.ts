import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RefusalReason, refusalCount, refuse } from '../../../../concentrator/src/policy/refusal.ts'
import { RejectReason } from '../../../../shared/src/metrics/labels.ts'

test('policy refusals map to the closed reject-reason set; lookups count as upstream dns', () => {
  assert.deepEqual(refusalCount('ssrf_blocked'), { kind: 'rejected', reason: 'ssrf_blocked' })
  assert.deepEqual(refusalCount('port_denied'), { kind: 'rejected', reason: 'acl_denied' })
  assert.deepEqual(refusalCount('acl_denied'), { kind: 'rejected', reason: 'acl_denied' })
  assert.deepEqual(refusalCount('invalid_destination'), { kind: 'rejected', reason: 'malformed' })
  for (const r of ['dns_failed', 'dns_timeout', 'dns_busy'] as const) assert.deepEqual(refusalCount(r), { kind: 'upstream', reason: 'dns' }, r)
})

test('every refusal carries its SOCKS5 REP, Convert Error and count', () => {
  const table = [
    ['invalid_destination', 0x02, 1], ['ssrf_blocked', 0x02, 32], ['acl_denied', 0x02, 32], ['port_denied', 0x02, 32],
    ['dns_failed', 0x04, 32], ['dns_timeout', 0x04, 32], ['dns_busy', 0x01, 32]
  ] as const
  assert.equal(table.length, Object.values(RefusalReason).length)
  for (const [reason, rep, convert] of table) {
    const r = refuse(reason, 'detail')
    assert.equal(r.socks5Reply, rep, reason)
    assert.equal(r.convertError.code, convert, reason)
    assert.deepEqual(r.count, refusalCount(reason), reason)
    if (r.count.kind === 'rejected') assert.ok((RejectReason as readonly string[]).includes(r.count.reason), reason)
  }
  assert.equal(refuse('ssrf_blocked', 'loopback', true).convertError.code, 1, 'malformed selects Error 1')
})
