import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseLabArgs, USAGE } from '../../../lab/cli.ts'
import { modeUnavailable } from '../../../lab/demo.ts'

test('defaults', () => {
  assert.deepEqual(parseLabArgs([]), { mode: 'mptcp', seconds: 10, dsl: 'vdsl', lte: 'lte', json: false, keep: false, prefix: 'ha-', withPrometheus: false })
})

test('options', () => {
  assert.deepEqual(parseLabArgs(['--seconds', '5', '--dsl', 'adsl', '--lte', 'fast', '--json', '--keep', '--prefix', 'hat-x-']),
    { mode: 'mptcp', seconds: 5, dsl: 'adsl', lte: 'fast', json: true, keep: true, prefix: 'hat-x-', withPrometheus: false })
  assert.equal(parseLabArgs(['--help']), 'help')
  assert.equal(parseLabArgs(['-h']), 'help')
  assert.match(USAGE, /--keep/)
})

test('daemon modes and --with-prometheus; unknown modes and bad values are usage errors', () => {
  for (const mode of ['socks5', 'convert', 'transparent']) {
    assert.deepEqual(parseLabArgs(['--mode', mode, '--keep', '--with-prometheus']),
      { mode, seconds: 10, dsl: 'vdsl', lte: 'lte', json: false, keep: true, prefix: 'ha-', withPrometheus: true })
    assert.equal(modeUnavailable(mode), undefined)
  }
  const noDaemons = parseLabArgs(['--with-prometheus'])
  assert.ok(typeof noDaemons === 'object' && 'error' in noDaemons && /daemon mode/.test(noDaemons.error))
  assert.equal(modeUnavailable('mptcp'), undefined)
  assert.match(USAGE, /--with-prometheus/)
  const bad = [['--mode', 'gre'], ['--seconds', '0'], ['--seconds', 'x'], ['--prefix', 'lab-'], ['--bogus']]
  for (const argv of bad) {
    const r = parseLabArgs(argv)
    assert.ok(typeof r === 'object' && 'error' in r, argv.join(' '))
  }
})
