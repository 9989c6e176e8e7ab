/**
 * NftOwner: pure helpers everywhere; the holder itself against the real kernel in a scratch
 * namespace (`hat-cpe-nft`, needs root like the e2e tests).
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createNamespace, e2eSkipReason, removeNamespaces, type Netns } from '../../../../lab/netns.ts'
import { flattenRuleset, NftOwner, renameTable } from '../../../../shared/src/sys/nft-owner.ts'
import type { HybridError } from '../../../../shared/src/errors.ts'

const PREFIX = 'hat-cpe-nft'
const skip = e2eSkipReason()
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

before(async () => { if (skip === undefined) ns = await createNamespace(PREFIX) })
after(async () => { if (skip === undefined) await removeNamespaces(PREFIX) })

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
    await assert.rejects(owner.apply(RULES(80).replace('counter', 'countr')), (e: HybridError) => e.code === 'HYBRID_ERR_NFT_CHECK' && /countr/.test(e.message))
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
