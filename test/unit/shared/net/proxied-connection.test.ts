/**
 * The shared per-connection lifecycle (shared/src/net/proxied-connection.ts) on real loopback TCP
 * sockets: refusals (linger with a reply, FIN, reset), the one deadline, the signal, the relay with
 * its session entry and relay-end accounting, and exactly one done().
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import type net from 'node:net'
import pino from 'pino'
import { ProxiedConnection, type ProxiedMetrics } from '../../../../shared/src/net/proxied-connection.ts'
import type { SessionEntry } from '../../../../shared/src/mgmt/session-table.ts'
import { socketPair } from '../../../helpers/socket-pair.ts'

type Call = [metric: string, labels: Record<string, unknown>, value?: number | undefined]

function fakeMetrics (calls: Call[]): ProxiedMetrics {
  const metric = (name: string): unknown => ({
    inc: (labels: Record<string, unknown> = {}, v?: number) => { calls.push([name, labels, v]) },
    dec: (labels: Record<string, unknown> = {}) => { calls.push([`${name}-`, labels]) },
    observe: (labels: Record<string, unknown>, v: number) => { calls.push([name, labels, v]) }
  })
  return {
    connectionsRejected: metric('rejected'),
    connectionsClosed: metric('closed'),
    connectionDuration: metric('duration'),
    bytesReceived: metric('received'),
    bytesSent: metric('sent'),
    backpressurePauses: metric('backpressure'),
    halfClosedConnections: metric('halfclosed')
  } as unknown as ProxiedMetrics
}

/** How the peer saw the stream end: bytes before it, and FIN or the error code. */
async function ending (s: net.Socket): Promise<{ data: Buffer, end: boolean, code: string | undefined }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    s.on('data', (c: Buffer) => chunks.push(c))
    s.once('end', () => { resolve({ data: Buffer.concat(chunks), end: true, code: undefined }) })
    s.once('error', (err: NodeJS.ErrnoException) => { resolve({ data: Buffer.concat(chunks), end: false, code: err.code }) })
  })
}

function harness (socket: net.Socket) {
  const calls: Call[] = []
  const sessions = new Map<number, SessionEntry>()
  let done = 0
  const conn = new ProxiedConnection(socket, {
    id: 7,
    mode: 'socks5',
    mptcp: false,
    log: pino({ level: 'silent' }),
    onDone: () => { done++ },
    metrics: fakeMetrics(calls),
    sessions: { add: (e) => { sessions.set(e.id, e) }, delete: (id) => { sessions.delete(id) } }
  })
  return { conn, calls, sessions, doneCount: () => done }
}

const settle = async (ms = 50): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

test('refuse linger: the reply and a FIN reach the client, the refusal is counted once, the signal aborts, done once', async () => {
  const [mine, peer, close] = await socketPair()
  const h = harness(mine)
  const seen = ending(peer)
  assert.equal(h.conn.refuse({ reply: Buffer.from([5, 2, 0, 1, 0, 0, 0, 0, 0, 0]), close: 'linger', count: 'malformed', why: 'test' }), true)
  assert.equal(h.conn.refuse({ close: 'reset', count: 'overload', why: 'second' }), false, 'a second refusal is ignored')
  assert.equal(h.conn.signal.aborted, true)
  assert.equal(h.conn.settled, true)
  const r = await seen
  assert.deepEqual([...r.data], [5, 2, 0, 1, 0, 0, 0, 0, 0, 0])
  assert.equal(r.end, true)
  peer.end()
  await once(mine, 'close')
  assert.equal(h.doneCount(), 1)
  assert.deepEqual(h.calls.filter((c) => c[0] === 'rejected'), [['rejected', { mode: 'socks5', reason: 'malformed' }, undefined]])
  peer.destroy()
  close()
})

test('refuse reset: the client sees a reset; fin: a plain FIN; both end in one done()', async () => {
  const [a, peerA, closeA] = await socketPair()
  const ha = harness(a)
  const seenA = ending(peerA)
  ha.conn.refuse({ close: 'reset', count: 'acl_denied', why: 'test' })
  assert.equal((await seenA).code, 'ECONNRESET')
  await settle()
  assert.equal(ha.doneCount(), 1)
  peerA.destroy()
  closeA()

  const [b, peerB, closeB] = await socketPair()
  const hb = harness(b)
  const seenB = ending(peerB)
  hb.conn.refuse({ close: 'fin', count: 'handshake_timeout', why: 'test' })
  assert.equal((await seenB).end, true)
  await settle()
  assert.equal(hb.doneCount(), 1)
  peerB.destroy()
  closeB()
})

test('the one deadline fires once; a new one replaces it; clearDeadline stops it', async () => {
  const [mine, peer, close] = await socketPair()
  const h = harness(mine)
  let fired = 0
  h.conn.deadline(20, () => { fired += 10 })
  h.conn.deadline(30, () => { fired += 1 })
  await settle(80)
  assert.equal(fired, 1)
  h.conn.deadline(20, () => { fired += 100 })
  h.conn.clearDeadline()
  await settle(60)
  assert.equal(fired, 1)
  mine.destroy() // the socket closes (a mode's end handler, an error): done() follows
  await once(mine, 'close')
  peer.destroy()
  assert.equal(h.doneCount(), 1)
  peer.destroy()
  close()
})

test('relayTo: early data first, bytes both ways, a session entry while it runs, relay end counted, done once', async () => {
  const [client, clientPeer, closeC] = await socketPair()
  const [upstream, server, closeU] = await socketPair()
  const h = harness(client)
  const toServer = ending(server)
  const toClient = ending(clientPeer)
  h.conn.relayTo(upstream, {
    limits: { idleTimeoutMs: 0, halfCloseTimeoutMs: 0, keepaliveIdleMs: 0, keepaliveIntervalMs: 0, keepaliveCount: 0, userTimeoutMs: 0 },
    session: { dst: '203.0.113.5:80', upstream: '203.0.113.5:80' },
    earlyData: Buffer.from('early ')
  })
  assert.equal(h.conn.relaying, true)
  const entry = h.sessions.get(7)
  assert.equal(entry?.dst, '203.0.113.5:80')
  assert.equal(entry?.src, `127.0.0.1:${clientPeer.localPort}`)
  clientPeer.end('up')
  server.end('down!')
  assert.equal((await toServer).data.toString(), 'early up')
  assert.equal((await toClient).data.toString(), 'down!')
  await settle(100)
  assert.equal(h.doneCount(), 1)
  assert.equal(h.sessions.size, 0, 'the session entry is removed at the end')
  const closed = h.calls.find((c) => c[0] === 'closed')
  assert.deepEqual(closed?.[1], { mode: 'socks5', reason: 'normal' })
  assert.deepEqual(h.calls.filter((c) => c[0] === 'received').map((c) => [c[1].side, c[2]]), [['client', 8], ['server', 5]])
  clientPeer.destroy()
  server.destroy()
  closeC()
  closeU()
})

test('abort before the relay destroys the client socket; answerAndClose answers without counting a refusal', async () => {
  const [a, peerA, closeA] = await socketPair()
  const ha = harness(a)
  const seen = ending(peerA)
  ha.conn.abort('drain')
  const r = await seen
  assert.ok(r.end || r.code !== undefined)
  await settle()
  assert.equal(ha.doneCount(), 1)
  peerA.destroy()
  closeA()

  const [b, peerB, closeB] = await socketPair()
  const hb = harness(b)
  const seenB = ending(peerB)
  hb.conn.answerAndClose(Buffer.from('info'))
  assert.equal((await seenB).data.toString(), 'info')
  assert.equal(hb.calls.filter((c) => c[0] === 'rejected').length, 0)
  peerB.end()
  await once(b, 'close')
  assert.equal(hb.doneCount(), 1)
  peerB.destroy()
  closeB()
})
