/**
 * The join recipe on its own (concentrator/src/join/join-setup.ts), as the concentrator applies it
 * for `join.endpoints` (scale-out, explicit modes), against a fake `ip`/`sysctl`: the order, what
 * is restored, the journal, and the refusal of a conflicting endpoint naming the key. The real
 * kernel: test/e2e/scale-out-join.e2e.test.ts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createLogger } from '../../../../shared/src/log.ts'
import { JoinSetup } from '../../../../concentrator/src/join/join-setup.ts'
import type { JournalEntry } from '../../../../shared/src/sys/crash-journal.ts'

function fakeSystem (opts: { sysctl?: string, subflows?: number, existing?: Array<Record<string, unknown>> } = {}) {
  const calls: string[] = []
  let sysctl = opts.sysctl ?? '1'
  let subflows = opts.subflows ?? 0
  const endpoints: Array<Record<string, unknown>> = [...(opts.existing ?? [])]
  const run = async (argv: readonly string[]): Promise<string> => {
    const line = argv.join(' ')
    calls.push(line)
    if (line === 'sysctl -n net.mptcp.allow_join_initial_addr_port') return `${sysctl}\n`
    if (line.startsWith('sysctl -qw net.mptcp.allow_join_initial_addr_port=')) { sysctl = line.slice(-1); return '' }
    if (line === 'ip mptcp limits show') return `add_addr_accepted 2 subflows ${subflows} \n`
    if (line.startsWith('ip mptcp limits set subflows ')) { subflows = Number(argv[5]); return '' }
    if (line === 'ip -j mptcp endpoint show') return JSON.stringify(endpoints)
    if (line.startsWith('ip mptcp endpoint add')) { endpoints.push({ address: argv[4], port: Number(argv[8]), id: 10 + endpoints.length, signal: true }); return '' }
    if (line.startsWith('ip mptcp endpoint delete id')) {
      const i = endpoints.findIndex((e) => e['id'] === Number(argv[5]))
      if (i >= 0) endpoints.splice(i, 1)
      return ''
    }
    return ''
  }
  return { run, calls, state: () => ({ sysctl, subflows, endpoints: endpoints.map((e) => `${String(e['address'])}:${String(e['port'])}`) }) }
}

const log = createLogger({ level: 'silent', name: 't' })
const endpoints = [{ address: '192.0.2.11', interface: 'acc0', port: 7201 }, { address: '2001:db8::11', interface: 'acc0', port: 7201 }]

test('apply: limits, one signal endpoint per address with its port, C flag last; remove restores all three in reverse', async () => {
  const sys = fakeSystem()
  const journal: JournalEntry[] = []
  const setup = new JoinSetup({ endpoints, subflowsLimit: 2, key: 'join.endpoints', log, run: sys.run, journal: { record: (e) => journal.push(e), forget: (e) => { journal.splice(journal.findIndex((x) => JSON.stringify(x) === JSON.stringify(e)), 1) } } })
  await setup.apply()
  assert.deepEqual(sys.state(), { sysctl: '0', subflows: 2, endpoints: ['192.0.2.11:7201', '2001:db8::11:7201'] })
  const mutating = sys.calls.filter((c) => !c.includes('show') && !c.startsWith('sysctl -n'))
  assert.deepEqual(mutating, [
    'ip mptcp limits set subflows 2 add_addr_accepted 2',
    'ip mptcp endpoint add 192.0.2.11 dev acc0 port 7201 signal',
    'ip mptcp endpoint add 2001:db8::11 dev acc0 port 7201 signal',
    'sysctl -qw net.mptcp.allow_join_initial_addr_port=0'
  ])
  assert.deepEqual(journal.map((e) => e.kind), ['command', 'mptcp-endpoint', 'mptcp-endpoint', 'sysctl'])
  await setup.remove()
  assert.deepEqual(sys.state(), { sysctl: '1', subflows: 0, endpoints: [] })
  assert.deepEqual(journal, [])
})

test('what already was so is left alone: C flag already 0, limits high enough, an identical endpoint adopted (and removed at stop)', async () => {
  const sys = fakeSystem({ sysctl: '0', subflows: 4, existing: [{ address: '192.0.2.11', port: 7201, id: 3, signal: true }] })
  const setup = new JoinSetup({ endpoints: endpoints.slice(0, 1), subflowsLimit: 2, key: 'join.endpoints', log, run: sys.run })
  await setup.apply()
  assert.ok(!sys.calls.some((c) => c.startsWith('sysctl -qw') || c.startsWith('ip mptcp limits set') || c.startsWith('ip mptcp endpoint add')))
  await setup.remove()
  assert.deepEqual(sys.state(), { sysctl: '0', subflows: 4, endpoints: [] })
})

test('an existing endpoint on the address with another port is refused, naming the key; nothing is left changed', async () => {
  const sys = fakeSystem({ existing: [{ address: '192.0.2.11', port: 9999, id: 3, signal: true }] })
  const setup = new JoinSetup({ endpoints: endpoints.slice(0, 1), subflowsLimit: 2, key: 'join.endpoints', log, run: sys.run })
  await assert.rejects(setup.apply(), (err: Error) => /^join\.endpoints: 192\.0\.2\.11 already is an MPTCP endpoint \(id 3\)/.test(err.message))
  assert.deepEqual(sys.state(), { sysctl: '1', subflows: 0, endpoints: ['192.0.2.11:9999'] })
})
