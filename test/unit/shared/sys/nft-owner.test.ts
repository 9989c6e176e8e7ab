/**
 * NftOwner: pure helpers everywhere; spawn failures with `nft` kept off PATH (no root needed); the
 * holder itself against the real kernel in a scratch namespace (`hat-cpe-nft`, needs root like the
 * e2e tests, and nft: without it those tests are skipped with that reason).
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resolveOnPath } from '../../../../shared/src/sys/prerequisites.ts'
import { createNamespace, e2eSkipReason, removeNamespaces, type Netns } from '../../../../lab/netns.ts'
import { flattenRuleset, NftOwner, renameTable } from '../../../../shared/src/sys/nft-owner.ts'
import type { HybridError } from '../../../../shared/src/errors.ts'

const PREFIX = 'hat-cpe-nft'
const nsSkip = e2eSkipReason()
const skip = nsSkip ?? (resolveOnPath('nft',
  process.env['PATH'] ?? '') === undefined
  ? 'nft not installed (Debian package nftables: apt-get install nftables)'
  : undefined)
let ns: Netns
const RULES = (port: number): string => [
  'table inet hat_t {',
  '  flags owner',
  '  # a comment line',
  '  set ports {',
  '    type inet_service',
  `    elements = { ${port}, 22 }`,
  '  }',
  '  chain c {',
  '    type filter hook input priority 0; policy accept;',
  '    tcp dport @ports counter',
  '  }',
  '}'
].join('\n')

test('flattenRuleset: one line, comments and blanks dropped', () => {
  assert.equal(flattenRuleset('table inet t {\n  # x\n\n  flags owner\n}\n'), 'table inet t { ; flags owner ; }')
})

test('renameTable renames only the table header', () => {
  assert.equal(renameTable('table inet hybrid_cpe {\n  chain hybrid_cpe {}\n}', 'inet', 'hybrid_cpe', 'hybrid_cpe_check'),
    'table inet hybrid_cpe_check {\n  chain hybrid_cpe {}\n}')
})

before(async () => { if (nsSkip === undefined) ns = await createNamespace(PREFIX) })
after(async () => { if (nsSkip === undefined) await removeNamespaces(PREFIX) })

/** Run `fn` with PATH set to a fresh directory holding only `links` (symlinks to the real tools) and `files`. */
async function withPath<T> (links: readonly string[], files: Readonly<Record<string, { text: string, mode: number }>>,
  fn: () => Promise<T>): Promise<T> {
  const saved = process.env['PATH']
  const dir = mkdtempSync(join(tmpdir(), 'hat-pq-nft-'))
  for (const name of links) {
    const real = resolveOnPath(name, saved ?? '')
    if (real !== undefined) symlinkSync(real, join(dir, name))
  }
  for (const [name, f] of Object.entries(files)) writeFileSync(join(dir, name), f.text, { mode: f.mode })
  process.env['PATH'] = dir
  try {
    return await fn()
  } finally {
    process.env['PATH'] = saved
    rmSync(dir, { recursive: true, force: true })
  }
}

const holderError = (re: RegExp) => (e: HybridError): boolean => {
  assert.equal(e.code, 'HYBRID_ERR_NFT_HOLDER')
  assert.match(e.message, re)
  return true
}

test('nft absent from PATH: start rejects at once naming nft and nftables (no hang waiting for an exit that never comes)', async () => {
  const started = Date.now()
  await withPath([], {}, async () => {
    await assert.rejects(NftOwner.start({ family: 'inet', table: 'hat_t' }),
      holderError(/^cannot start nft -i: 'nft' not found on PATH \(Debian package nftables\): install with apt-get install nftables$/))
  })
  assert.ok(Date.now() - started < 500, `took ${Date.now() - started} ms`)
})

test('nft on PATH but not executable (EACCES): start rejects at once', async () => {
  const started = Date.now()
  await withPath([], { nft: { text: '#!/bin/sh\n', mode: 0o644 } }, async () => {
    await assert.rejects(NftOwner.start({ family: 'inet', table: 'hat_t' }), holderError(/^cannot start nft -i: .*EACCES/))
  })
  assert.ok(Date.now() - started < 500, `took ${Date.now() - started} ms`)
})

test('nft dies at once (prints an error, exits 1): start rejects with its stderr; close returns', async () => {
  await withPath([], { nft: { text: '#!/bin/sh\necho "nft: something is wrong" >&2\nexit 1\n', mode: 0o755 } }, async () => {
    await assert.rejects(NftOwner.start({ family: 'inet', table: 'hat_t' }), holderError(/exited \(code 1, signal null\): nft: something is wrong/))
  })
})

test('with a namespace prefix and nft missing: `ip netns exec` cannot exec nft; start rejects naming it', { skip: nsSkip }, async () => {
  await withPath(['ip'], {}, async () => {
    await assert.rejects(NftOwner.start({ family: 'inet', table: 'hat_t', commandPrefix: ['ip', 'netns', 'exec', PREFIX] }),
      holderError(/exited \(code 1, signal null\): exec of "nft" failed: No such file or directory/))
  })
})

const start = async (): Promise<NftOwner> => NftOwner.start({ family: 'inet', table: 'hat_t', commandPrefix: ['ip', 'netns', 'exec', PREFIX] })
const tables = async (): Promise<string> => ns.exec(['nft', 'list', 'tables'])

test('holder: apply replaces atomically; bad text is refused by nft -c and leaves the old ruleset; close removes the table', { skip }, async () => {
  const owner = await start()
  try {
    assert.match(await tables(), /table inet hat_t/)
    await owner.apply(RULES(80))
    await owner.apply(RULES(8080)) // reinstall: add-then-delete in one batch
    const listed = await ns.exec(['nft', 'list', 'table', 'inet', 'hat_t'])
    assert.match(listed, /flags owner/)
    assert.match(listed, /elements = \{ 22, 8080 \}/)
    await assert.rejects(owner.apply(RULES(80).replace('counter', 'countr')),
      (e: HybridError) => e.code === 'HYBRID_ERR_NFT_CHECK' && /countr/.test(e.message))
    await assert.rejects(owner.apply('table inet other {\n flags owner\n}'), (e: HybridError) => e.code === 'HYBRID_ERR_NFT_CHECK')
    assert.match(await ns.exec(['nft', 'list', 'table', 'inet', 'hat_t']), /8080/)
    // Another process can neither delete the table nor take it over.
    await assert.rejects(ns.exec(['nft', 'delete', 'table', 'inet', 'hat_t']), /Operation not permitted/)
    await assert.rejects(start(), (e: HybridError) => e.code === 'HYBRID_ERR_NFT_HOLDER' && /Operation not permitted/.test(e.message))
    await ns.exec(['nft', 'flush', 'ruleset'])
    assert.match(await tables(), /table inet hat_t/, 'a foreign flush ruleset leaves the owner table')
  } finally {
    await owner.close()
  }
  assert.doesNotMatch(await tables(), /hat_t/)
})

test('holder death: the table vanishes, exit is reported, later calls reject', { skip }, async () => {
  const owner = await start()
  await owner.apply(RULES(80))
  const exited = once(owner, 'exit')
  process.kill(owner.pid as number, 'SIGKILL')
  const [, signal] = await exited as [number | null, string | null]
  assert.equal(signal, 'SIGKILL')
  assert.equal(owner.alive, false)
  assert.doesNotMatch(await tables(), /hat_t/)
  await assert.rejects(owner.apply(RULES(80)), (e: HybridError) => e.code === 'HYBRID_ERR_NFT_HOLDER')
  await owner.close()
})
