import { test } from 'node:test'
import assert from 'node:assert/strict'
import { bearerToken, createTokenCheck, MIN_TOKEN_LENGTH } from '../../../../shared/src/mgmt/bearer-auth.ts'
import { ConfigError } from '../../../../shared/src/errors.ts'

test('bearerToken parses RFC 6750 credentials only', () => {
  assert.equal(bearerToken('Bearer abc.DEF-123_~+/=='), 'abc.DEF-123_~+/==')
  assert.equal(bearerToken('bearer  abc '), 'abc')
  assert.equal(bearerToken(undefined), undefined)
  assert.equal(bearerToken('Basic abc'), undefined)
  assert.equal(bearerToken('Bearer a b'), undefined)
  assert.equal(bearerToken('Bearer '), undefined)
})

test('the check accepts exactly the configured token', () => {
  const token = 'x'.repeat(MIN_TOKEN_LENGTH)
  const check = createTokenCheck(token)
  assert.equal(check(token), true)
  assert.equal(check(token + 'x'), false)
  assert.equal(check(token.slice(1)), false)
  assert.equal(check(''), false)
  assert.equal(check(undefined), false)
})

test('no configured token rejects everything; a short token is a configuration error', () => {
  const check = createTokenCheck(undefined)
  assert.equal(check(''), false)
  assert.equal(check('anything-at-all-long-enough'), false)
  assert.throws(() => createTokenCheck('short'), ConfigError)
})
