import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getProfile, loadProfiles, parseProfiles } from '../../../lab/link-profile.ts'
import { tbfArgs } from '../../../lab/link-emulation.ts'
import { isHybridError } from '../../../shared/src/errors.ts'

test('the shipped profiles load and carry the agreed numbers', () => {
  const p = loadProfiles()
  for (const name of ['vdsl', 'lte', 'adsl', 'fast', 'ideal']) assert.ok(p.has(name), name)
  assert.deepEqual(p.get('vdsl')?.down, { rateMbit: 50, delayMs: 10, jitterMs: 0, lossPct: 0 })
  assert.deepEqual(p.get('vdsl')?.up, { rateMbit: 10, delayMs: 10, jitterMs: 0, lossPct: 0 })
  assert.deepEqual(p.get('lte')?.down, { rateMbit: 40, delayMs: 30, jitterMs: 5, lossPct: 0.1 })
  assert.equal(p.get('lte')?.up.rateMbit, 15)
  assert.equal(getProfile('adsl').up.queueMs, 200)
  assert.equal(getProfile('lte-shallow').down.queueMs, 10)
})

function expectInvalid (doc: unknown, key: RegExp): void {
  assert.throws(() => parseProfiles(doc, 'x.yaml'), (err: unknown) => {
    assert.ok(isHybridError(err))
    assert.equal(err.code, 'HYBRID_ERR_CONFIG_INVALID')
    assert.match(err.message, /^x\.yaml: /)
    assert.match(err.message, key)
    return true
  })
}

test('validation names the file and the key path', () => {
  const ok = { rateMbit: 1, delayMs: 1, jitterMs: 0, lossPct: 0 }
  expectInvalid([], /\(root\)/)
  expectInvalid({ a: { up: ok } }, /a\.down must be a mapping/)
  expectInvalid({ a: { up: ok, down: { ...ok, lossPct: 101 } } }, /a\.down\.lossPct must be a number in \[0, 100\]/)
  expectInvalid({ a: { up: { ...ok, delayMs: '5' }, down: ok } }, /a\.up\.delayMs/)
  expectInvalid({ a: { up: { ...ok, rate: 3 }, down: ok } }, /a\.up\.rate unknown key/)
  expectInvalid({ a: { up: { delayMs: 1, jitterMs: 0, lossPct: 0 }, down: ok } }, /a\.up\.rateMbit is required/)
  expectInvalid({ a: { up: { ...ok, jitterMs: 2 }, down: ok } }, /a\.up\.jitterMs must not exceed delayMs/)
  expectInvalid({ a: { up: ok, down: ok, side: ok } }, /a\.side unknown key/)
  expectInvalid({ A: { up: ok, down: ok } }, /A profile names/)
})

test('read and YAML errors name the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hat-tun-'))
  try {
    const bad = join(dir, 'bad.yaml')
    writeFileSync(bad, 'a: [1,\n')
    assert.throws(() => loadProfiles(bad), (e: unknown) => isHybridError(e) && e.code === 'HYBRID_ERR_CONFIG_PARSE' && e.message.includes(bad))
    assert.throws(() => loadProfiles(join(dir, 'missing.yaml')), (e: unknown) => isHybridError(e) && e.code === 'HYBRID_ERR_CONFIG_READ')
    assert.throws(() => getProfile('nope'), /no profile 'nope' \(known: .*vdsl/)
  } finally {
    rmSync(dir, { recursive: true })
  }
})

test('tbf arguments: rate in kbit, burst ≥ 2 packets and 2 ms, queue = queueMs at the rate', () => {
  assert.equal(tbfArgs({ rateMbit: 0, delayMs: 0, jitterMs: 0, lossPct: 0 }), undefined)
  assert.deepEqual(tbfArgs({ rateMbit: 50, delayMs: 0, jitterMs: 0, lossPct: 0 }), ['tbf', 'rate', '50000kbit', 'burst', '12500', 'limit', '312500'])
  assert.deepEqual(tbfArgs({ rateMbit: 1, delayMs: 0, jitterMs: 0, lossPct: 0, queueMs: 200 }),
    ['tbf', 'rate', '1000kbit', 'burst', '3100', 'limit', '25000'])
})
