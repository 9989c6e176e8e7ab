import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseLabArgs, USAGE } from '../../../lab/cli.ts'
import { modeUnavailable } from '../../../lab/demo.ts'

test('defaults: the report card over every mode, 5 s per transfer; one mode defaults to 10 s', () => {
  assert.deepEqual(parseLabArgs([]),
    { mode: 'all', seconds: 5, dsl: 'vdsl', lte: 'lte', json: false, keep: false, prefix: 'ha-', withPrometheus: false })
  assert.deepEqual(parseLabArgs(['--mode', 'mptcp']),
    { mode: 'mptcp', seconds: 10, dsl: 'vdsl', lte: 'lte', json: false, keep: false, prefix: 'ha-', withPrometheus: false })
  assert.deepEqual(parseLabArgs(['--mode', 'all', '--with-prometheus']),
    { mode: 'all', seconds: 5, dsl: 'vdsl', lte: 'lte', json: false, keep: false, prefix: 'ha-', withPrometheus: true })
})

test('options', () => {
  assert.deepEqual(parseLabArgs(['--seconds', '7', '--dsl', 'adsl', '--lte', 'fast', '--json', '--keep', '--prefix', 'hat-x-']),
    { mode: 'all', seconds: 7, dsl: 'adsl', lte: 'fast', json: true, keep: true, prefix: 'hat-x-', withPrometheus: false })
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
  const noDaemons = parseLabArgs(['--mode', 'mptcp', '--with-prometheus'])
  assert.ok(typeof noDaemons === 'object' && 'error' in noDaemons && /needs the daemons/.test(noDaemons.error))
  const unknown = parseLabArgs(['--mode', 'gre'])
  assert.ok(typeof unknown === 'object' && 'error' in unknown && /known: mptcp, socks5, convert, transparent, or all/.test(unknown.error),
    JSON.stringify(unknown))
  assert.equal(modeUnavailable('mptcp'), undefined)
  assert.match(USAGE, /--with-prometheus/)
  const bad = [['--mode', 'gre'], ['--seconds', '0'], ['--seconds', 'x'], ['--prefix', 'lab-'], ['--bogus']]
  for (const argv of bad) {
    const r = parseLabArgs(argv)
    assert.ok(typeof r === 'object' && 'error' in r, argv.join(' '))
  }
})

test('--scenario udp; --modes belongs to failover', () => {
  assert.deepEqual(parseLabArgs(['--scenario', 'udp']),
    { mode: 'all', seconds: 5, dsl: 'vdsl', lte: 'lte', json: false, keep: false, prefix: 'ha-', withPrometheus: false, udp: true })
  assert.ok('error' in (parseLabArgs(['--scenario', 'udp', '--modes', 'socks5']) as object))
})

test('--scenario priority (with a hat- prefix); --modes/--faults belong to failover', () => {
  assert.deepEqual(parseLabArgs(['--scenario', 'priority', '--prefix', 'hat-lab-']),
    { mode: 'all', seconds: 5, dsl: 'vdsl', lte: 'lte', json: false, keep: false, prefix: 'hat-lab-', withPrometheus: false, priority: true })
  assert.ok('error' in (parseLabArgs(['--scenario', 'priority', '--modes', 'socks5']) as object))
  assert.match((parseLabArgs(['--scenario', 'fastest']) as { error: string }).error, /known: failover, priority/)
})

test('--scenario soak: socks5 for 10 min at 25/s by default; --hours, --rate, --modes, --results; soak options need it', () => {
  const base = { mode: 'all', seconds: 5, dsl: 'vdsl', lte: 'lte', json: false, keep: false, prefix: 'hat-sk-', withPrometheus: false }
  assert.deepEqual(parseLabArgs(['--scenario', 'soak', '--prefix', 'hat-sk-']), { ...base, soak: { modes: ['socks5'], minutes: 10, rate: 25 } })
  assert.deepEqual(parseLabArgs(['--scenario', 'soak', '--prefix', 'hat-sk-', '--hours', '1.5', '--rate', '40', '--modes', 'socks5,convert',
    '--results', '/tmp/x']),
  { ...base, soak: { modes: ['socks5', 'convert'], minutes: 90, rate: 40, results: '/tmp/x' } })
  const bad = [
    ['--minutes', '10'], ['--scenario', 'failover', '--rate', '5'], ['--scenario', 'soak', '--minutes', '1'], ['--scenario', 'soak', '--hours', '25'],
    ['--scenario', 'soak', '--minutes', '5', '--hours', '1'], ['--scenario', 'soak', '--rate', '51'], ['--scenario', 'soak', '--modes', 'mptcp'],
    ['--scenario', 'soak', '--faults', 'dsl-flap']
  ]
  for (const argv of bad) {
    const r = parseLabArgs(argv)
    assert.ok(typeof r === 'object' && 'error' in r, argv.join(' '))
  }
  assert.match(USAGE, /--scenario soak/)
})

test('--concentrators n: the scale-out lab, socks5 by default, convert or transparent; bad counts and other modes are usage errors', () => {
  const base = { mode: 'all', seconds: 5, dsl: 'vdsl', lte: 'lte', json: false, keep: false, prefix: 'ha-', withPrometheus: false }
  assert.deepEqual(parseLabArgs(['--concentrators', '3']), { ...base, scaleOut: { instances: 3, mode: 'socks5' } })
  assert.deepEqual(parseLabArgs(['--concentrators', '8', '--mode', 'convert', '--keep']),
    { ...base, mode: 'convert', seconds: 10, keep: true, scaleOut: { instances: 8, mode: 'convert' } })
  assert.deepEqual(parseLabArgs(['--concentrators', '2', '--mode', 'transparent']),
    { ...base, mode: 'transparent', seconds: 10, scaleOut: { instances: 2, mode: 'transparent' } })
  for (const n of ['0', '99', '9', '-1', '2.5', 'three', '']) {
    const r = parseLabArgs([`--concentrators=${n}`])
    assert.ok(typeof r === 'object' && 'error' in r, n)
    assert.match(r.error, /--concentrators must be an integer in 1\.\.8/, n)
  }
  const other = [
    [['--mode', 'mptcp'], /socks5 or convert or transparent mode, got --mode mptcp/],
    [['--scenario', 'failover'], /drop --scenario/],
    [['--with-prometheus'], /not supported with --concentrators/]
  ] as const
  for (const [argv, message] of other) {
    const r = parseLabArgs(['--concentrators', '3', ...argv])
    assert.ok(typeof r === 'object' && 'error' in r && message.test(r.error), `${argv.join(' ')}: ${JSON.stringify(r)}`)
  }
  assert.match(USAGE, /--concentrators <n>/)
})
