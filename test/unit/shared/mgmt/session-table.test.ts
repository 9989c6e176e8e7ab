import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SessionTable, type SessionEntry } from '../../../../shared/src/mgmt/session-table.ts'

interface Entry extends SessionEntry { readonly path: string | undefined, readonly tfo: string }

function entry (id: number, up: number, down: number, path?: string): Entry {
  return {
    id,
    src: `192.0.2.10:${4000 + id}`,
    dst: '203.0.113.5:443',
    upstream: '198.51.100.1:1080',
    started: Date.UTC(2026, 11, 7, 12, 0, 0),
    mptcp: true,
    path,
    tfo: 'none',
    progress: () => ({ up, down }),
    buffered: () => ({ client: 0, server: 0 }),
    abort: () => {}
  }
}

test('page: largest first, ties by id, one page; data fields listed, functions not, undefined as null', () => {
  const t = new SessionTable<Entry>()
  t.add(entry(3, 10, 10, 'dsl'))
  t.add(entry(1, 5, 0))
  t.add(entry(2, 0, 20, 'lte'))
  t.add(entry(4, 1, 0))
  assert.equal(t.size, 4)
  const now = Date.UTC(2026, 11, 7, 12, 0, 30)
  const page = t.page(0, 3, now)
  assert.equal(page.total, 4)
  assert.deepEqual(page.sessions.map((s) => s.id), [2, 3, 1])
  assert.deepEqual(page.sessions[2], {
    id: 1,
    src: '192.0.2.10:4001',
    dst: '203.0.113.5:443',
    upstream: '198.51.100.1:1080',
    mptcp: true,
    path: null,
    tfo: 'none',
    started: '2026-12-07T12:00:00.000Z',
    durationSeconds: 30,
    bytesUp: 5,
    bytesDown: 0
  })
  assert.deepEqual(t.page(3, 10, now).sessions.map((s) => s.id), [4])
  t.delete(2)
  assert.deepEqual([...t.relays()].map((e) => e.id), [3, 1, 4])
  assert.equal(t.page(0, 10, now - 60_000).sessions[0]?.durationSeconds, 0, 'a clock behind the start gives 0, not a negative duration')
})
