/**
 * Socks5Upstream over real loopback sockets (test/helpers/cpe-signalling-harness.ts): a LAN client's
 * half-close during first-bytes collection, a concentrator FIN before the reply, and what switches
 * the concentrator to the stepwise handshake.
 */
import { afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import type net from 'node:net'
import { Socks5ServerParser } from '../../../../shared/src/codec/socks5-server-parser.ts'
import { encodeReply, Socks5Reply } from '../../../../shared/src/codec/socks5.ts'
import { PipeliningMemory } from '../../../../cpe/src/modes/pipelining-memory.ts'
import { Socks5Upstream, type Socks5Settings } from '../../../../cpe/src/modes/socks5.ts'
import type { Socks5Config } from '../../../../cpe/src/config/socks5.ts'
import {
  endpoint, lanClosed, lanPair, limitsConfig, listenPeer, readAll, signallingDeps, silentLog, socks5Config, until,
  type Peer
} from '../../../helpers/cpe-signalling-harness.ts'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

interface ServerScript {
  /** What the concentrator does with a CONNECT request: answer REP (default 0), or nothing. */
  onRequest?: (s: net.Socket, index: number) => void
  /** Called with the application bytes the concentrator got after the request, and on their FIN. */
  onPayload?: (s: net.Socket, data: Buffer) => void
  onEnd?: (s: net.Socket, payload: Buffer) => void
}

/** A SOCKS5 concentrator on loopback (the shared server parser, no auth) with a scripted CONNECT. */
async function concentrator (script: ServerScript = {}): Promise<Peer> {
  const peer = await listenPeer((s, index) => {
    const parser = new Socks5ServerParser({ allowNoAuth: true, allowUserPass: false })
    let payload = Buffer.alloc(0)
    const got = (b: Buffer): void => { if (b.length > 0) { payload = Buffer.concat([payload, b]); script.onPayload?.(s, b) } }
    s.on('data', (chunk: Buffer) => {
      for (const ev of parser.feed(chunk)) {
        if (ev.type === 'method-selected') s.write(ev.reply)
        else if (ev.type === 'request') {
          if (script.onRequest !== undefined) script.onRequest(s, index)
          else s.write(encodeReply(Socks5Reply.Succeeded))
          got(ev.earlyData)
        } else if (ev.type === 'data') got(ev.data)
        else if (ev.type === 'failure') s.destroy()
      }
    })
    s.on('end', () => { script.onEnd?.(s, payload) })
  })
  cleanups.push(peer.close)
  return peer
}

function settings (port: number, socks5: Partial<Socks5Config> = {}): Socks5Settings {
  return {
    concentrator: endpoint(port),
    socketMark: 0,
    onMptcpUnavailable: 'fallback',
    highWaterMark: 65_536,
    socks5: socks5Config({ replyTimeoutMs: 3000, ...socks5 }),
    limits: limitsConfig()
  }
}

async function start (port: number, socks5: Partial<Socks5Config> = {}, pipelining = new PipeliningMemory(600_000)) {
  const deps = signallingDeps()
  const pair = await lanPair()
  cleanups.push(pair.close)
  let doneAt: number | undefined
  const t0 = performance.now()
  const conn = new Socks5Upstream(pair.lan, {
    id: 1,
    destination: { family: 4, address: '192.0.2.10', port: 80 },
    log: silentLog,
    onDone: () => { doneAt = performance.now() - t0 }
  }, settings(port, socks5), { ...deps, pipelining })
  cleanups.push(() => { conn.abort('drain') })
  return { ...deps, ...pair, conn, pipelining, doneMs: () => doneAt }
}

for (const pipelining of ['always', 'never'] as const) {
  test(`LAN half-close during first-bytes collection (${pipelining}): the concentrator gets the bytes then a FIN, the relay ends normally`,
    async () => {
      const seen: { payload: Buffer, ended: boolean } = { payload: Buffer.alloc(0), ended: false }
      const conc = await concentrator({ onEnd: (s, payload) => { seen.payload = payload; seen.ended = true; s.end('RESP') } })
      const c = await start(conc.port, { pipelining, coalesceMs: 50 })
      const reply = readAll(c.client)
      c.client.end('GET / HTTP/1.0\r\n\r\n') // nc -N: request, then FIN at once (inside the coalesce window)
      assert.ok(await until(() => seen.ended, 2000), 'the concentrator saw the FIN')
      assert.equal(seen.payload.toString(), 'GET / HTTP/1.0\r\n\r\n')
      const r = await reply
      assert.equal(r.data.toString(), 'RESP')
      assert.equal(r.how, 'end')
      assert.ok(await until(() => c.doneMs() !== undefined, 2000), 'the connection is done')
      assert.equal(await c.count('hybrid_connections_closed_total', { mode: 'socks5', reason: 'normal' }), 1)
    })
}

test('LAN half-close before any byte: the FIN is carried (server-speaks-first answers still arrive), then the relay ends', async () => {
  const seen: { payload: Buffer, ended: boolean } = { ended: false, payload: Buffer.from('x') }
  const conc = await concentrator({ onEnd: (s, payload) => { seen.ended = true; seen.payload = payload; s.end('220 banner\r\n') } })
  const c = await start(conc.port, { coalesceMs: 50 })
  const reply = readAll(c.client)
  c.client.end()
  assert.ok(await until(() => seen.ended, 2000), 'the concentrator saw the FIN')
  assert.equal(seen.payload.length, 0)
  assert.equal((await reply).data.toString(), '220 banner\r\n')
  assert.ok(await until(() => c.doneMs() !== undefined, 2000))
})

for (const pipelining of ['always', 'never', 'auto'] as const) {
  test(`concentrator FIN before the CONNECT reply (${pipelining}): LAN reset at once, counted closed, no stepwise memory`, async () => {
    const conc = await concentrator({ onRequest: (s) => { s.end() } }) // draining / over a cap / its deadline
    const c = await start(conc.port, { pipelining, coalesceMs: 0, replyTimeoutMs: 3000 })
    const closed = await lanClosed(c.client)
    assert.ok(closed.ms < 1000, `LAN closed after ${closed.ms.toFixed(0)} ms (reply deadline 3000 ms)`)
    assert.equal(closed.reset, true, 'the LAN client sees ECONNRESET')
    assert.equal(await c.count('hybrid_upstream_connect_failures_total', { reason: 'closed' }), 1)
    assert.equal(await c.count('hybrid_upstream_connect_failures_total', { reason: 'timeout' }), 0)
    assert.deepEqual(c.pipelining.stepwiseKeys(), [], 'a FIN after the greeting that a stepwise retry also gets is not about pipelining')
    if (pipelining === 'auto') assert.equal(conc.accepted.length, 2, 'one stepwise retry')
  })
}

test('concentrator FIN before the greeting reply (always): LAN reset at once, counted closed', async () => {
  const conc = await listenPeer((s) => { s.once('data', () => { s.end() }) })
  cleanups.push(conc.close)
  const c = await start(conc.port, { pipelining: 'always', coalesceMs: 0 })
  const closed = await lanClosed(c.client)
  assert.ok(closed.ms < 1000, `LAN closed after ${closed.ms.toFixed(0)} ms`)
  assert.equal(await c.count('hybrid_upstream_connect_failures_total', { reason: 'closed' }), 1)
})

test('one destination that never answers (no credentials) does not switch the concentrator to stepwise', async () => {
  // The concentrator answers the greeting and then waits for its dial of a SYN-dropping destination.
  const conc = await concentrator({ onRequest: () => {} })
  const memory = new PipeliningMemory(600_000)
  const c = await start(conc.port, { coalesceMs: 0, replyTimeoutMs: 200 }, memory)
  const closed = await lanClosed(c.client)
  assert.equal(closed.reset, true)
  assert.equal(await c.count('hybrid_upstream_connect_failures_total', { reason: 'timeout' }), 1)
  assert.deepEqual(memory.stepwiseKeys(), [], 'other destinations keep the pipelined handshake')
  assert.equal(memory.shouldPipeline('auto', '127.0.0.1:' + String(conc.port)), true)
})

type StrictKind = 'discard' | 'close' | 'fin' | 'garbage'

/**
 * A concentrator that does not read ahead: it takes the greeting from the first chunk and then
 * discards the rest, closes (RST on unread bytes), sends FIN, or answers with a wrong-shaped reply;
 * stepwise clients (one message per chunk) are served normally and their payload echoed upper-cased.
 */
async function strictConcentrator (kind: StrictKind): Promise<Peer> {
  const peer = await listenPeer((s) => {
    const parser = new Socks5ServerParser({ allowNoAuth: true, allowUserPass: false })
    let first = true
    let relaying = false
    s.on('data', (chunk: Buffer) => {
      if (relaying) { s.write(chunk.toString().toUpperCase()); return }
      let bytes = chunk
      if (first) {
        first = false
        const greeting = 2 + (chunk[1] ?? 0)
        if (chunk.length > greeting) {
          if (kind === 'close') { s.destroy(); return }
          if (kind === 'fin') { s.end(); return }
          if (kind === 'garbage') { s.end(Buffer.from('HTTP/1.0 400 Bad Request\r\n\r\n')); return }
          bytes = chunk.subarray(0, greeting) // 'discard'
        }
      }
      for (const ev of parser.feed(bytes)) {
        if (ev.type === 'method-selected') s.write(ev.reply)
        else if (ev.type === 'request') { s.write(encodeReply(Socks5Reply.Succeeded)); relaying = true }
      }
    })
    s.on('end', () => { s.end() })
  })
  cleanups.push(peer.close)
  return peer
}

for (const kind of ['discard', 'close', 'fin', 'garbage'] as const) {
  test(`a concentrator that does not read a pipelined handshake (${kind}) is still found: stepwise retry works and is remembered`, async () => {
    const conc = await strictConcentrator(kind)
    const memory = new PipeliningMemory(600_000)
    const c = await start(conc.port, { coalesceMs: 0, replyTimeoutMs: 300 }, memory)
    const reply = readAll(c.client)
    c.client.write('ping')
    await until(() => c.conn.relaying, 2000)
    assert.equal(c.conn.relaying, true, 'the stepwise retry relays')
    c.client.end()
    assert.equal((await reply).data.toString(), 'PING')
    assert.deepEqual(memory.stepwiseKeys(), [`127.0.0.1:${conc.port}`])
    assert.equal(conc.accepted.length, 2, 'one pipelined attempt, one stepwise')
  })
}
