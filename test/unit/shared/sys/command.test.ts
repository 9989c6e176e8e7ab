import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  formatArgv, nftJsonObjects, parseJsonOutput, prefixedRunner, runCommand, runJsonArray,
  type CommandRunner
} from '../../../../shared/src/sys/command.ts'
import type { HybridError } from '../../../../shared/src/errors.ts'

test('runCommand returns stdout and passes input on stdin (no shell)', async () => {
  assert.equal(await runCommand(['echo', 'a;b', '$HOME']), 'a;b $HOME\n')
  assert.equal(await runCommand(['cat'], { input: 'piped' }), 'piped')
})

test('failure throws HYBRID_ERR_CMD_FAILED naming the full command, exit code and stderr', async () => {
  await assert.rejects(runCommand(['ip', 'route', 'add', 'bogus value']), (err: HybridError) => {
    assert.equal(err.code, 'HYBRID_ERR_CMD_FAILED')
    assert.match(err.message, /^command failed \(exit \d+\): ip route add 'bogus value': .+/)
    assert.deepEqual(err.detail?.['argv'], ['ip', 'route', 'add', 'bogus value'])
    assert.notEqual(err.detail?.['stderr'], '')
    return true
  })
  await assert.rejects(runCommand(['/nonexistent/tool']),
    (err: HybridError) => err.code === 'HYBRID_ERR_CMD_FAILED' && /\/nonexistent\/tool/.test(err.message))
  await assert.rejects(runCommand(['sleep', '5'], { timeoutMs: 50 }), (err: HybridError) => /killed \(SIGTERM/.test(err.message))
})

test('formatArgv quotes what a shell would split', () => {
  assert.equal(formatArgv(['nft', '-c', '-f', '-']), 'nft -c -f -')
  assert.equal(formatArgv(['a b', "it's", '']), "'a b' 'it'\\''s' ''")
})

test('prefixedRunner prepends its prefix', async () => {
  const seen: string[][] = []
  const base: CommandRunner = async (argv) => { seen.push([...argv]); return '' }
  await prefixedRunner(['ip', 'netns', 'exec', 'x'], base)(['nft', 'list', 'ruleset'])
  assert.deepEqual(seen, [['ip', 'netns', 'exec', 'x', 'nft', 'list', 'ruleset']])
})

test('JSON helpers: empty output is [], non-JSON and non-arrays are HYBRID_ERR_CMD_OUTPUT, nft objects by kind', async () => {
  assert.deepEqual(parseJsonOutput(['ip'], '  \n'), [])
  assert.throws(() => parseJsonOutput(['ip', '-j'], 'add_addr_accepted 0'), (e: HybridError) => e.code === 'HYBRID_ERR_CMD_OUTPUT')
  const fake: CommandRunner = async () => '{"a":1}'
  await assert.rejects(runJsonArray(fake, ['ip', '-j', 'x']), (e: HybridError) => e.code === 'HYBRID_ERR_CMD_OUTPUT')
  assert.deepEqual(await runJsonArray(async () => '[{"a":1},2,null]', ['ip']), [{ a: 1 }])
  const nft = '{"nftables":[{"metainfo":{"version":"1.0.6"}},{"table":{"family":"inet","name":"hybrid_cpe","handle":1,"flags":"owner"}}]}'
  assert.deepEqual(nftJsonObjects(['nft', '-j'], nft, 'table'), [{ family: 'inet', name: 'hybrid_cpe', handle: 1, flags: 'owner' }])
  assert.throws(() => nftJsonObjects(['nft'], '[]', 'table'), (e: HybridError) => e.code === 'HYBRID_ERR_CMD_OUTPUT')
})
