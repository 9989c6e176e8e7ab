/**
 * The CPE's CONNECT-UDP client against an in-process HTTP/2 server on loopback (node:http2 with
 * extended CONNECT): datagrams both ways as DATAGRAM capsules, held until the 2xx, refusals by
 * status, drops (queue, backpressure, unknown context, unknown capsule), a malformed capsule
 * stream, a server without extended CONNECT and the back-off after a failed connect.
 */
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import net from 'node:net'
import { once } from 'node:events'
import { createLogger } from '../../../../shared/src/log.ts'
import { CapsuleReader, encodeCapsule, encodeDatagramCapsule } from '../../../../shared/src/codec/capsule.ts'
import { checkConnectUdpRequest } from '../../../../shared/src/codec/connect-udp.ts'
import { ConnectUdpClient } from '../../../../cpe/src/udp/connect-udp-client.ts'
import type { TunnelEnd, TunnelHandlers } from '../../../../cpe/src/udp/connect-udp-client.ts'
import type { UdpDrop } from '../../../../shared/src/metrics/udp-metrics.ts'

const log = createLogger({ level: 'silent', name: 'test' })

type StreamHandler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void

/** An HTTP/2 server on 127.0.0.1 (plain TCP), extended CONNECT on unless `connectProtocol` is false. */
async function server (t: TestContext, onStream: StreamHandler, connectProtocol = true): Promise<{
  port: number
  requests: http2.IncomingHttpHeaders[]
}> {
  const requests: http2.IncomingHttpHeaders[] = []
  const h2 = http2.createServer({ settings: { enableConnectProtocol: connectProtocol } })
  h2.on('stream', (stream, headers) => { requests.push(headers); onStream(stream, headers) })
  const sockets = new Set<net.Socket>()
  const tcp = net.createServer((s) => { sockets.add(s); h2.emit('connection', s) })
  tcp.listen(0, '127.0.0.1')
  await once(tcp, 'listening')
  t.after(() => { for (const s of sockets) s.destroy(); tcp.close(); h2.close() })
  return { port: (tcp.address() as net.AddressInfo).port, requests }
}

/** The echo proxy: 200, then every DATAGRAM capsule back; `before` can send extra bytes first. */
const echo = (before?: Buffer): StreamHandler => (stream) => {
  stream.respond({ ':status': 200, 'capsule-protocol': '?1' })
  if (before !== undefined) stream.write(before)
  const r = new CapsuleReader()
  stream.on('data', (c: Buffer) => {
    r.push(c)
    for (let n = r.next(); 'capsule' in n; n = r.next()) stream.write(encodeCapsule(n.capsule.type, n.capsule.value))
  })
  stream.on('error', () => {})
}

function client (port: number, over: Partial<ConstructorParameters<typeof ConnectUdpClient>[0]> = {}): ConnectUdpClient {
  return new ConnectUdpClient({
    authority: `127.0.0.1:${port}`,
    connect: async () => {
      const s = net.connect(port, '127.0.0.1')
      await once(s, 'connect')
      return s
    },
    openQueue: 4,
    maxBufferedBytes: 1 << 20,
    log,
    timeoutMs: 2000,
    ...over
  })
}

/** A client whose connects are counted. */
function countingClient (port: number): { c: ConnectUdpClient, connects: () => number } {
  let n = 0
  const c = client(port, {
    connect: async () => {
      n++
      const s = net.connect(port, '127.0.0.1')
      await once(s, 'connect')
      return s
    }
  })
  return { c, connects: () => n }
}

interface Recorder extends TunnelHandlers {
  readonly got: string[]
  readonly drops: UdpDrop[]
  readonly ends: TunnelEnd[]
  opened: boolean
  until: (what: () => boolean, ms?: number) => Promise<void>
}

function recorder (): Recorder {
  const r: Recorder = {
    got: [],
    drops: [],
    ends: [],
    opened: false,
    onOpen: () => { r.opened = true },
    onDatagram: (p) => { r.got.push(Buffer.from(p).toString()) },
    onDrop: (d) => { r.drops.push(d) },
    onEnd: (e) => { r.ends.push(e) },
    until: async (what, ms = 3000) => {
      const end = Date.now() + ms
      while (!what()) {
        if (Date.now() > end) throw new Error('timed out')
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    }
  }
  return r
}

test('datagrams sent before the 2xx are held, then echoed back in order; the request is a valid RFC 9298 request', async (t) => {
  const srv = await server(t, echo())
  const c = client(srv.port, { credentials: { username: 'cpe1', password: 'secret' } })
  t.after(async () => { await c.close() })
  const r = recorder()
  const tun = c.open({ host: '2001:db8::42', port: 443 }, r)
  assert.equal(tun.send(Buffer.from('one')), 'queued')
  assert.equal(tun.send(Buffer.from('two')), 'queued')
  await r.until(() => r.got.length === 2)
  assert.equal(tun.send(Buffer.from('three')), 'sent')
  await r.until(() => r.got.length === 3)
  assert.deepEqual(r.got, ['one', 'two', 'three'])
  assert.equal(r.opened, true)
  const req = srv.requests[0] as http2.IncomingHttpHeaders
  assert.deepEqual(checkConnectUdpRequest(req as Record<string, string>), { ok: true, target: { type: 'ipv6', host: '2001:db8::42', port: 443 } })
  assert.equal(req['proxy-authorization'], `Basic ${Buffer.from('cpe1:secret').toString('base64')}`)
  assert.equal(c.sessionUp, true)
  tun.close()
  await r.until(() => r.ends.length === 1)
  assert.deepEqual(r.ends, [{ kind: 'closed' }])
})

test('one HTTP/2 session carries many flows', async (t) => {
  const srv = await server(t, echo())
  const { c, connects } = countingClient(srv.port)
  t.after(async () => { await c.close() })
  const recs = Array.from({ length: 5 }, () => recorder())
  recs.forEach((r, i) => { c.open({ host: '192.0.2.7', port: 1000 + i }, r).send(Buffer.from(`flow ${i}`)) })
  for (const r of recs) await r.until(() => r.got.length === 1)
  assert.deepEqual(recs.map((r) => r.got[0]), [0, 1, 2, 3, 4].map((i) => `flow ${i}`))
  assert.equal(connects(), 1)
})

test('refusals by status: 403 policy, 407 auth, 503 unavailable, 400 malformed, 500 upstream_error', async (t) => {
  const statuses: Record<string, number> = { '/1/': 403, '/2/': 407, '/3/': 503, '/4/': 400, '/5/': 500 }
  const srv = await server(t, (stream, h) => {
    const key = Object.keys(statuses).find((k) => String(h[':path']).endsWith(k)) ?? '/5/'
    stream.respond({ ':status': statuses[key] as number, 'proxy-status': 'hybrid; error=destination_ip_prohibited' }, { endStream: true })
  })
  const c = client(srv.port)
  t.after(async () => { await c.close() })
  const ends: TunnelEnd[] = []
  for (const port of [1, 2, 3, 4, 5]) {
    const r = recorder()
    c.open({ host: '192.0.2.7', port }, r).send(Buffer.from('x'))
    await r.until(() => r.ends.length === 1)
    ends.push(r.ends[0] as TunnelEnd)
  }
  assert.deepEqual(ends.map((e) => (e.kind === 'refused' ? [e.reason, e.status] : [e.kind])),
    [['policy', 403], ['auth', 407], ['unavailable', 503], ['malformed', 400], ['upstream_error', 500]])
  assert.match((ends[0] as { detail: string }).detail, /destination_ip_prohibited/)
})

test('drops: open queue full; unknown context IDs and capsule types from the concentrator; backpressure', async (t) => {
  const junk = Buffer.concat([encodeDatagramCapsule(Buffer.from('ctx2'), 2), encodeCapsule(0x17, Buffer.from('grease'))])
  const srv = await server(t, echo(junk))
  const c = client(srv.port, { maxBufferedBytes: 1500 })
  t.after(async () => { await c.close() })
  const r = recorder()
  const tun = c.open({ host: '192.0.2.7', port: 9 }, r)
  const verdicts = [1, 2, 3, 4, 5, 6].map((i) => tun.send(Buffer.from(`q${i}`)))
  assert.deepEqual(verdicts, ['queued', 'queued', 'queued', 'queued', 'queue_full', 'queue_full'])
  await r.until(() => r.got.length === 4)
  assert.deepEqual(r.drops.sort(), ['unknown_capsule', 'unknown_context'])
  // A burst far above maxBufferedBytes within one tick: the stream's buffer fills, the rest is dropped.
  const burst = Array.from({ length: 200 }, () => tun.send(Buffer.alloc(1200)))
  assert.ok(burst.includes('backpressure'), 'no datagram dropped for backpressure')
  assert.ok(burst.filter((v) => v === 'sent').length < 200)
})

test('a malformed capsule stream from the concentrator resets the flow', async (t) => {
  const srv = await server(t, (stream) => {
    stream.respond({ ':status': 200 })
    stream.write(Buffer.from('00ffffffffffffffff', 'hex')) // a DATAGRAM announcing 2^62 − 1 bytes
    stream.on('error', () => {})
  })
  const c = client(srv.port)
  t.after(async () => { await c.close() })
  const r = recorder()
  c.open({ host: '192.0.2.7', port: 9 }, r)
  await r.until(() => r.ends.length === 1)
  assert.deepEqual(r.ends, [{ kind: 'closed' }])
})

test('a server without extended CONNECT, then no server: flows are refused as unavailable, with a back-off', async (t) => {
  const srv = await server(t, echo(), false)
  const { c, connects } = countingClient(srv.port)
  t.after(async () => { await c.close() })
  const a = recorder()
  c.open({ host: '192.0.2.7', port: 9 }, a)
  await a.until(() => a.ends.length === 1)
  assert.deepEqual({ ...a.ends[0], detail: undefined }, { kind: 'refused', reason: 'unavailable', detail: undefined })
  assert.match((a.ends[0] as { detail: string }).detail, /extended CONNECT/)
  const b = recorder()
  c.open({ host: '192.0.2.7', port: 10 }, b)
  assert.equal(b.ends.length, 1, 'refused at once during the back-off')
  assert.match((b.ends[0] as { detail: string }).detail, /back-off/)
  assert.equal(connects(), 1)

  const dead = client(1) // nothing listens on port 1 of 127.0.0.1
  t.after(async () => { await dead.close() })
  const d = recorder()
  dead.open({ host: '192.0.2.7', port: 9 }, d)
  await d.until(() => d.ends.length === 1)
  assert.equal((d.ends[0] as { reason: string }).reason, 'unavailable')
})
