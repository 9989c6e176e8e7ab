import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CredentialVerifier, parseCredentials } from '../../../../concentrator/src/auth/credentials.ts'

test('parses user:password lines; comments, blanks and CRLF; passwords may contain colons', () => {
  const c = parseCredentials('# users\n\nalice:one\r\nbob:a:b:c\n')
  assert.equal(c.digests.size, 2)
  const v = new CredentialVerifier(c)
  assert.equal(v.verify(Buffer.from('alice'), Buffer.from('one')), true)
  assert.equal(v.verify(Buffer.from('bob'), Buffer.from('a:b:c')), true)
  assert.equal(v.verify(Buffer.from('alice'), Buffer.from('one ')), false)
  assert.equal(v.verify(Buffer.from('carol'), Buffer.from('one')), false, 'unknown user')
  assert.equal(v.verify(Buffer.from('Alice'), Buffer.from('one')), false, 'usernames are exact')
})

test('rejects malformed lines with the line number and never the password', () => {
  for (const [text, line] of [['x\n', 1], ['ok:1\n:nouser\n', 2], ['a:\n', 1], ['a:1\na:2\n', 2], [`${'u'.repeat(256)}:p\n`, 1]] as const) {
    assert.throws(() => parseCredentials(text, 'f'), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'HYBRID_ERR_CONFIG_INVALID')
      assert.match(err.message, new RegExp(`^f:${line}: `))
      return true
    })
  }
  assert.throws(() => parseCredentials('alice:hunter2 x\nalice:hunter2\n'), (err: Error) => !err.message.includes('hunter2'))
})
