/**
 * ConvertUpstream over real loopback sockets (test/helpers/cpe-signalling-harness.ts): a LAN
 * client's half-close during first-bytes collection (relayed, or handed to the socks5 fallback), and
 * a converter FIN before its reply TLVs.
 */
import { afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { createConverterSideReader } from '../../../../shared/src/codec/convert-reader.ts'
import { buildConvertSuccess } from '../../../../shared/src/codec/convert.ts'
import { Socks5ServerParser } from '../../../../shared/src/codec/socks5-server-parser.ts'
import { encodeReply, Socks5Reply } from '../../../../shared/src/codec/socks5.ts'
import { ConverterMemory } from '../../../../cpe/src/modes/convert-reply.ts'
import { ConvertUpstream, type ConvertSettings } from '../../../../cpe/src/modes/convert.ts'
import type { CpeConnection } from '../../../../cpe/src/modes/cpe-connection.ts'
import type { FirstBytes } from '../../../../cpe/src/modes/first-bytes.ts'
import { PipeliningMemory } from '../../../../cpe/src/modes/pipelining-memory.ts'
import { Socks5Upstream } from '../../../../cpe/src/modes/socks5.ts'
import type { ConvertClientConfig } from '../../../../cpe/src/config/convert.ts'
import {
  convertConfig, endpoint, lanClosed, lanPair, limitsConfig, listenPeer, readAll, signallingDeps, silentLog, socks5Config, until,
  type Peer
} from '../../../helpers/cpe-signalling-harness.ts'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

interface Seen { payload: Buffer, ended: boolean }

/** A converter that answers the Connect with `reply` (success by default) or, with `fin`, a bare FIN. */
async function converter (opts: { fin?: boolean, seen?: Seen, answer?: string } = {}): Promise<Peer> {
  const peer = await listenPeer((s) => {
    const reader = createConverterSideReader()
    let replied = false
    const got = (b: Uint8Array): void => { if (opts.seen !== undefined) opts.seen.payload = Buffer.concat([opts.seen.payload, b]) }
    s.on('data', (chunk: Buffer) => {
      if (replied) { got(chunk); return }
      const r = reader.feed(chunk)
      if (r.status !== 'message') return
      replied = true
      if (opts.fin === true) { s.end(); return }
      s.write(buildConvertSuccess())
      got(r.rest)
    })
    s.on('end', () => { if (opts.seen !== undefined) opts.seen.ended = true; if (opts.fin !== true) s.end(opts.answer ?? '') })
  })
  cleanups.push(peer.close)
  return peer
}

/** A no-auth SOCKS5 concentrator (the shared server parser) answering REP 0. */
async function socks5Server (seen: Seen, answer: string): Promise<Peer> {
  const peer = await listenPeer((s) => {
    const parser = new Socks5ServerParser({ allowNoAuth: true, allowUserPass: false })
    s.on('data', (chunk: Buffer) => {
      for (const ev of parser.feed(chunk)) {
        if (ev.type === 'method-selected') s.write(ev.reply)
        else if (ev.type === 'request') {
          s.write(encodeReply(Socks5Reply.Succeeded)); seen.payload = Buffer.concat([seen.payload,
            ev.earlyData])
        } else if (ev.type === 'data') seen.payload = Buffer.concat([seen.payload, ev.data])
      }
    })
    s.on('end', () => { seen.ended = true; s.end(answer) })
  })
  cleanups.push(peer.close)
  return peer
}

async function start (converterPort: number, convert: Partial<ConvertClientConfig>, socks5Port?: number) {
  const deps = signallingDeps()
  const pair = await lanPair()
  cleanups.push(pair.close)
  let doneAt: number | undefined
  const t0 = performance.now()
  const info = {
    id: 1,
    destination: { family: 4 as const, address: '192.0.2.10', port: 80 },
    log: silentLog,
    onDone: () => { doneAt = performance.now() - t0 }
  }
  const base = { socketMark: 0, onMptcpUnavailable: 'fallback' as const, highWaterMark: 65_536, limits: limitsConfig() }
  const settings: ConvertSettings = { ...base, concentrator: endpoint(converterPort), convert: convertConfig({ replyTimeoutMs: 3000, ...convert }) }
  const fallbackSocks5 = socks5Port === undefined
    ? undefined
    : (lan: CpeConnection,
        first: FirstBytes) => new Socks5Upstream(lan, info, { ...base, concentrator: endpoint(socks5Port), socks5: socks5Config({ coalesceMs: 0 }) },
        { ...deps, pipelining: new PipeliningMemory(600_000) }, first)
  const conn = new ConvertUpstream(pair.lan, info, settings,
    { ...deps, memory: new ConverterMemory(), ...(fallbackSocks5 === undefined ? {} : { fallbackSocks5 }) })
  cleanups.push(() => { conn.abort('drain') })
  return { ...deps, ...pair, conn, doneMs: () => doneAt }
}

test('convert: LAN half-close during first-bytes collection → the converter gets the bytes then a FIN, the relay ends normally', async () => {
  const seen: Seen = { payload: Buffer.alloc(0), ended: false }
  const conv = await converter({ seen, answer: 'RESP' })
  const c = await start(conv.port, { coalesceMs: 50 })
  const reply = readAll(c.client)
  c.client.end('GET / HTTP/1.0\r\n\r\n')
  assert.ok(await until(() => seen.ended, 2000), 'the converter saw the FIN')
  assert.equal(seen.payload.toString(), 'GET / HTTP/1.0\r\n\r\n')
  const r = await reply
  assert.equal(r.data.toString(), 'RESP')
  assert.ok(await until(() => c.doneMs() !== undefined, 2000))
  assert.equal(await c.count('hybrid_connections_closed_total', { mode: 'convert', reason: 'normal' }), 1)
})

test('convert → socks5 fallback: the half-closed client\'s bytes and FIN are handed over (no unshift after end)', async () => {
  const seen: Seen = { payload: Buffer.alloc(0), ended: false }
  const dead = await listenPeer(() => {})
  await dead.close() // nothing listens: ECONNREFUSED → converter unreachable → fallback
  const socks = await socks5Server(seen, 'RESP')
  const c = await start(dead.port, { coalesceMs: 50, fallback: 'socks5' }, socks.port)
  const reply = readAll(c.client)
  c.client.end('GET / HTTP/1.0\r\n\r\n')
  assert.ok(await until(() => seen.ended, 2000), 'the SOCKS5 concentrator saw the FIN')
  assert.equal(seen.payload.toString(), 'GET / HTTP/1.0\r\n\r\n')
  assert.equal((await reply).data.toString(), 'RESP')
  assert.ok(await until(() => c.doneMs() !== undefined, 2000))
})

test('convert: converter FIN before any reply byte → noticed at once, counted closed, then the fallback (none: LAN reset)', async () => {
  const conv = await converter({ fin: true })
  const c = await start(conv.port, { coalesceMs: 0, fallback: 'none' })
  const closed = await lanClosed(c.client)
  assert.ok(closed.ms < 1000, `LAN closed after ${closed.ms.toFixed(0)} ms (reply deadline 3000 ms)`)
  assert.equal(closed.reset, true)
  assert.equal(await c.count('hybrid_upstream_connect_failures_total', { reason: 'closed' }), 1)
})

test('convert: converter FIN in the middle of its reply TLVs → LAN reset at once, counted closed', async () => {
  const conv = await listenPeer((s) => { s.once('data', () => { s.end(buildConvertSuccess().subarray(0, 2)) }) })
  cleanups.push(conv.close)
  const c = await start(conv.port, { coalesceMs: 0, fallback: 'none' })
  const closed = await lanClosed(c.client)
  assert.ok(closed.ms < 1000, `LAN closed after ${closed.ms.toFixed(0)} ms (reply deadline 3000 ms)`)
  assert.equal(closed.reset, true)
  assert.equal(await c.count('hybrid_upstream_connect_failures_total', { reason: 'closed' }), 1)
  assert.equal(await c.count('hybrid_upstream_connect_failures_total', { reason: 'timeout' }), 0)
})
