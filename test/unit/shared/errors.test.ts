import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { ConfigError, ErrorCodes, HybridError, isHybridError } from '../../../shared/src/errors.ts'

const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8')
const documented = new Set([...doc.matchAll(/^\| `(HYBRID_ERR_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]))

test('every error code is documented in docs/errors.md', () => {
  const missing = Object.keys(ErrorCodes).filter((c) => !documented.has(c))
  assert.deepEqual(missing, [])
})

test('docs/errors.md lists no code that does not exist', () => {
  const stale = [...documented].filter((c) => c !== undefined && !(c in ErrorCodes))
  assert.deepEqual(stale, [])
})

test('codes follow HYBRID_ERR_<AREA>_<DETAIL>', () => {
  for (const code of Object.keys(ErrorCodes)) assert.match(code, /^HYBRID_ERR_[A-Z0-9]+(_[A-Z0-9]+)*$/)
})

test('errors carry their code and wrap their cause', () => {
  const cause = new Error('root')
  const err = new ConfigError('HYBRID_ERR_CONFIG_INVALID', 'bad', { cause })
  assert.equal(err.code, 'HYBRID_ERR_CONFIG_INVALID')
  assert.equal(err.cause, cause)
  assert.ok(isHybridError(err))
  assert.ok(err instanceof HybridError)
  assert.equal(new HybridError('HYBRID_ERR_INTERNAL').message, ErrorCodes.HYBRID_ERR_INTERNAL)
})
