import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CrashJournal, parseJournal, undoJournal, type JournalEntry } from '../../../../shared/src/sys/crash-journal.ts'
import { createLogger } from '../../../../shared/src/log.ts'
import { testTempDir } from '../../../helpers/temp-dir.ts'

const log = createLogger({ level: 'silent', name: 't' })
const SYSCTL: JournalEntry = { kind: 'sysctl', key: 'net.mptcp.allow_join_initial_addr_port', before: '1' }
const RULE: JournalEntry = { kind: 'command', undo: ['ip', '-4', 'rule', 'del', 'fwmark', '0x4000/0x4000', 'lookup', '7100', 'priority', '90'] }
const EP: JournalEntry = { kind: 'mptcp-endpoint', address: '198.51.100.82', port: 7101 }

test('record writes through (pid, entries, deduplicated); forgetting the last entry removes the file', () => {
  const dir = testTempDir('hat-cj-')
  const j = CrashJournal.open({ dir, name: 'concentrator', log, netnsId: '42' })
  assert.equal(j.file, join(dir, 'concentrator-netns42.json'))
  assert.ok(!existsSync(j.file), 'nothing recorded: no file')
  j.record(SYSCTL)
  j.record(RULE)
  j.record(SYSCTL)
  const onDisk = parseJournal(readFileSync(j.file, 'utf8'))
  assert.equal(onDisk?.pid, process.pid)
  assert.deepEqual(onDisk?.entries, [SYSCTL, RULE])
  j.forget(SYSCTL)
  assert.deepEqual(parseJournal(readFileSync(j.file, 'utf8'))?.entries, [RULE])
  j.forget(RULE)
  assert.ok(!existsSync(j.file))
})

test('open: entries of a dead process are leftovers; of a live other process → HYBRID_ERR_STATE_LOCKED; of this process → none', () => {
  const dir = testTempDir('hat-cj-')
  const file = join(dir, 'cpe-netns7.json')
  writeFileSync(file, JSON.stringify({ pid: 999_999_999, name: 'cpe', written: 'x', entries: [SYSCTL, { kind: 'bogus' }, EP] }))
  const dead = CrashJournal.open({ dir, name: 'cpe', log, netnsId: '7', isAlive: () => false })
  assert.deepEqual(dead.leftovers, [SYSCTL, EP], 'unknown entry kinds are dropped')
  assert.throws(() => CrashJournal.open({ dir, name: 'cpe', log, netnsId: '7', isAlive: () => true }),
    (err: Error & { code?: string }) => err.code === 'HYBRID_ERR_STATE_LOCKED' && /pid 999999999/.test(err.message))
  dead.leftoversUndone()
  assert.ok(!existsSync(file), 'undone leftovers leave no file')
  writeFileSync(file, JSON.stringify({ pid: process.pid, entries: [SYSCTL] }))
  assert.deepEqual(CrashJournal.open({ dir, name: 'cpe', log, netnsId: '7' }).leftovers, [])
  writeFileSync(file, 'not json')
  assert.deepEqual(CrashJournal.open({ dir, name: 'cpe', log, netnsId: '7' }).leftovers, [], 'an unreadable journal is ignored (logged)')
})

test('open: a directory that cannot be created is a config error naming the key', () => {
  const dir = testTempDir('hat-cj-')
  writeFileSync(join(dir, 'file'), '')
  assert.throws(() => CrashJournal.open({ dir: join(dir, 'file', 'sub'), name: 'cpe', log, netnsId: '1' }),
    (err: Error & { code?: string }) => err.code === 'HYBRID_ERR_CONFIG_INVALID' && /^stateDir: cannot create/.test(err.message))
})

test('undoJournal: newest first; sysctl written back, commands run, endpoints deleted by address and port; a failure does not stop the rest',
  async () => {
    const calls: string[] = []
    const run = async (argv: readonly string[]): Promise<string> => {
      calls.push(argv.join(' '))
      if (argv[0] === 'ip' && argv[3] === 'del') throw new Error('no such rule')
      if (argv.join(' ') === 'ip -j mptcp endpoint show') {
        return JSON.stringify([{ address: '198.51.100.82', port: 7101, id: 3 }, { address: '198.51.100.82', port: 7999, id: 4 },
          { address: '198.51.100.9', id: 5 }])
      }
      return ''
    }
    await undoJournal([RULE, EP, SYSCTL], run, log)
    assert.deepEqual(calls, [
      'sysctl -qw net.mptcp.allow_join_initial_addr_port=1',
      'ip -j mptcp endpoint show',
      'ip mptcp endpoint delete id 3',
      'ip -4 rule del fwmark 0x4000/0x4000 lookup 7100 priority 90'
    ])
  })
