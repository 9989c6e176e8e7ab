import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createLogger } from '../../../../shared/src/log.ts'
import { HybridError } from '../../../../shared/src/errors.ts'
import { HagSetup, type HagSetupInput } from '../../../../concentrator/src/modes/hag-setup.ts'
import { CrashJournal, parseJournal, undoJournal, type JournalEntry } from '../../../../shared/src/sys/crash-journal.ts'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { testTempDir } from '../../../helpers/temp-dir.ts'

const config: HagSetupInput = {
  accessInterfaces: ['dsl0'],
  listenPort: 7100,
  joinEndpoints: [{ address: '198.51.100.82', interface: 'lte0', port: 7101 }],
  failMode: 'closed', // plain table through the runner (open mode spawns nft -i)
  mark: 0x4000,
  routeTable: 7100,
  rulePriority: 90,
  nftTable: 'hybrid_hag',
  ipv6: false,
  subflowsLimit: 2
}

/** A fake system: sysctl value, limits, endpoints; records every command. */
function fakeSystem (opts: { sysctl?: string, subflows?: number, endpointInUse?: boolean } = {}) {
  const calls: string[] = []
  let sysctl = opts.sysctl ?? '1'
  let subflows = opts.subflows ?? 0
  const endpoints: Array<Record<string, unknown>> = []
  const run = async (argv: readonly string[]): Promise<string> => {
    const line = argv.join(' ')
    calls.push(line)
    if (line.startsWith('ip -4 rule del')) throw new Error('no such rule')
    if (line === 'sysctl -n net.mptcp.allow_join_initial_addr_port') return `${sysctl}\n`
    if (line.startsWith('sysctl -qw net.mptcp.allow_join_initial_addr_port=')) { sysctl = line.slice(-1); return '' }
    if (line === 'ip mptcp limits show') return `add_addr_accepted 2 subflows ${subflows} \n`
    if (line.startsWith('ip mptcp limits set subflows ')) { subflows = Number(argv[5]); return '' }
    if (line === 'ip -j mptcp endpoint show') return JSON.stringify(endpoints)
    if (line.startsWith('ip mptcp endpoint add')) {
      if (opts.endpointInUse === true) {
        throw new HybridError('HYBRID_ERR_CMD_FAILED', 'x',
          { detail: { stderr: 'Error: create listen socket error: -98.' } })
      }
      endpoints.push({ address: argv[4], port: Number(argv[8]), id: 7, signal: true })
      return ''
    }
    if (line.startsWith('ip mptcp endpoint delete id')) { endpoints.splice(0); return '' }
    return ''
  }
  return { run, calls, state: () => ({ sysctl, subflows, endpoints: endpoints.length }) }
}

const log = createLogger({ level: 'silent', name: 't' })

test('apply: routing first, then limits, endpoint, C-flag sysctl, rules last; remove restores what it changed', async () => {
  const sys = fakeSystem()
  const setup = new HagSetup({ config, log, run: sys.run })
  await setup.apply()
  const order = sys.calls.filter((c) => !c.includes(' show') && !c.startsWith('sysctl -n') && !c.includes('rule del'))
  assert.deepEqual(order, [
    'ip -4 route replace local default dev lo table 7100',
    'ip -4 rule add fwmark 0x4000/0x4000 lookup 7100 priority 90',
    'ip mptcp limits set subflows 2 add_addr_accepted 2',
    'ip mptcp endpoint add 198.51.100.82 dev lte0 port 7101 signal',
    'sysctl -qw net.mptcp.allow_join_initial_addr_port=0',
    'nft -f -'
  ])
  assert.deepEqual(sys.state(), { sysctl: '0', subflows: 2, endpoints: 1 })
  await setup.remove()
  assert.deepEqual(sys.state(), { sysctl: '1', subflows: 0, endpoints: 0 })
  assert.ok(sys.calls.includes('ip -4 route del local default dev lo table 7100'))
})

test('remove leaves alone what was already so (sysctl 0, limits high enough)', async () => {
  const sys = fakeSystem({ sysctl: '0', subflows: 4 })
  const setup = new HagSetup({ config, log, run: sys.run })
  await setup.apply()
  await setup.remove()
  assert.ok(!sys.calls.some((c) => c.startsWith('sysctl -qw')))
  assert.ok(!sys.calls.some((c) => c.startsWith('ip mptcp limits set')))
  assert.deepEqual(sys.state(), { sysctl: '0', subflows: 4, endpoints: 0 })
})

test('a join port still in use (TIME_WAIT) does not fail the start; the retry stops at remove', async () => {
  const sys = fakeSystem({ endpointInUse: true })
  const setup = new HagSetup({ config, log, run: sys.run })
  await setup.apply()
  assert.equal(sys.state().sysctl, '0')
  await setup.remove()
  assert.equal(sys.state().sysctl, '1')
})

test('crash journal: every change is on disk before it is made; a SIGKILL-like stop leaves it, the next start undoes it and then restores the ORIGINAL C flag', async () => {
  const dir = testTempDir('hat-journal-')
  const sys = fakeSystem()
  // Run 1 "crashes" after apply: no remove(); its journal is what a SIGKILL leaves behind.
  const crashed = CrashJournal.open({ dir, name: 'concentrator', log, netnsId: 'x', isAlive: () => false })
  const atRecord: string[] = []
  const recording = {
    record: (e: JournalEntry) => {
      // What the entry covers is not done yet when it is recorded.
      const st = sys.state()
      if (e.kind === 'sysctl') assert.equal(st.sysctl, '1')
      if (e.kind === 'mptcp-endpoint') assert.equal(st.endpoints, 0)
      if (e.kind === 'command' && e.undo.includes('limits')) assert.equal(st.subflows, 0)
      if (e.kind === 'command' && e.undo.includes('rule')) assert.ok(!sys.calls.some((c) => c.startsWith('ip -4 rule add')))
      crashed.record(e)
      atRecord.push(e.kind)
    },
    forget: (e: JournalEntry) => { crashed.forget(e) }
  }
  await new HagSetup({ config, log, run: sys.run, journal: recording }).apply()
  assert.deepEqual(sys.state(), { sysctl: '0', subflows: 2, endpoints: 1 })
  const left = parseJournal(readFileSync(crashed.file, 'utf8'))
  assert.deepEqual(left?.entries.map((e) => e.kind === 'command' ? e.undo.slice(0, 4).join(' ') : e.kind), [
    'ip -4 route del', 'ip -4 rule del', 'ip mptcp limits set', 'mptcp-endpoint', 'sysctl'
  ])
  assert.ok(left?.entries.some((e) => e.kind === 'sysctl' && e.before === '1'), 'the original C flag is on disk')
  assert.equal(atRecord.length, 5)

  // Run 2: another process (the journal's pid is "dead"), another join port.
  const journal = openAsNextRun(dir, left?.pid ?? 0)
  assert.equal(journal.leftovers.length, 5)
  await undoJournal(journal.leftovers, sys.run, log)
  journal.leftoversUndone()
  assert.deepEqual(sys.state(), { sysctl: '1', subflows: 0, endpoints: 0 }, 'the dead run\'s changes are undone, the original values are back')
  const next = new HagSetup({
    config: { ...config, joinEndpoints: [{ address: '198.51.100.82', interface: 'lte0', port: 7102 }] },
    log,
    run: sys.run,
    journal
  })
  await next.apply()
  assert.deepEqual(sys.state(), { sysctl: '0', subflows: 2, endpoints: 1 },
    'a restart on another join port works (no "already is an MPTCP endpoint")')
  await next.remove()
  assert.deepEqual(sys.state(), { sysctl: '1', subflows: 0, endpoints: 0 }, 'a clean stop restores the original C flag, not the leaked 0')
  assert.ok(!existsSync(journal.file), 'a clean stop leaves no journal')
})

/** The journal as a new process would open it: the file's pid is made foreign and dead. */
function openAsNextRun (dir: string, pid: number): CrashJournal {
  const file = join(dir, 'concentrator-netnsx.json')
  const body = JSON.parse(readFileSync(file, 'utf8')) as { pid: number }
  writeFileSync(file, JSON.stringify({ ...body, pid: pid + 1_000_000 }))
  return CrashJournal.open({ dir, name: 'concentrator', log, netnsId: 'x', isAlive: () => false })
}
