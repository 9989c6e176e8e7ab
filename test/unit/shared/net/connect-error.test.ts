import { test } from 'node:test'
import assert from 'node:assert/strict'
import { errnoOf, upstreamFailureReason } from '../../../../shared/src/net/connect-error.ts'
import { UpstreamFailureReason } from '../../../../shared/src/metrics/labels.ts'
import { HybridError, SyscallError } from '../../../../shared/src/errors.ts'

test('errno → upstream failure reason: one table for both daemons', () => {
  const table = [
    ['ECONNREFUSED', 'refused'], ['ETIMEDOUT', 'timeout'],
    ['EHOSTUNREACH', 'unreachable'], ['ENETUNREACH', 'unreachable'], ['EHOSTDOWN', 'unreachable'],
    ['ENETDOWN', 'unreachable'], ['EADDRNOTAVAIL', 'unreachable'],
    ['ECONNRESET', 'reset'], ['EPIPE', 'reset'],
    ['EACCES', 'other'], ['ECANCELED', 'other'], ['EIO', 'other'], ['HYBRID_ERR_SOCKET_ADDRESS', 'other'],
    ['constructor', 'other'], [undefined, 'other']
  ] as const
  for (const [errno, reason] of table) assert.equal(upstreamFailureReason(errno), reason, String(errno))
})

test('every reason the table yields is a label value of hybrid_upstream_connect_failures_total', () => {
  for (const errno of ['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNRESET', 'EWHATEVER']) {
    assert.ok((UpstreamFailureReason as readonly string[]).includes(upstreamFailureReason(errno)), errno)
  }
})

test('errnoOf: the errno name off a system error, a string errno, or the code as it is', () => {
  const sys = Object.assign(new Error('connect ECONNREFUSED 192.0.2.1:80'), { code: 'ECONNREFUSED', errno: -111 })
  assert.equal(errnoOf(sys), 'ECONNREFUSED')
  assert.equal(errnoOf({ errno: 'ETIMEDOUT' }), 'ETIMEDOUT')
  assert.equal(errnoOf({ code: 'HYBRID_ERR_X', errno: 'EHOSTUNREACH' }), 'EHOSTUNREACH', 'a string errno beats a non-errno code')
  assert.equal(errnoOf(new HybridError('HYBRID_ERR_SOCKET_ADDRESS', 'not an IP literal')), 'HYBRID_ERR_SOCKET_ADDRESS')
  assert.equal(errnoOf(new SyscallError('HYBRID_ERR_SOCKET_SYSCALL', 'socket', 24, 'socket failed')), 'HYBRID_ERR_SOCKET_SYSCALL', 'a numeric errno is not a name')
  assert.equal(errnoOf(new Error('plain')), undefined)
  assert.equal(errnoOf(undefined), undefined)
  assert.equal(errnoOf('ECONNRESET'), undefined)
})
