/**
 * The real concentrator as an RFC 8803 Transport Converter, in-process, inside ONE network namespace
 * (`hat-cv-int`): the Convert decoder refuses loopback destinations (Error 1), so the destination
 * must be a non-loopback local address. This file re-runs itself inside the namespace
 * (in-namespace.ts, env HAT_CV_IN_NS=1).
 *
 * Namespace: veth `d0` (peer `d1`, no address) with 192.0.2.1 (converter), 192.0.2.2 (echo server),
 * 192.0.2.100 (an untrusted source); 198.51.100.9 routed out of d0 to a static MAC nobody owns (SYNs
 * vanish → connect timeout);
 * `unreachable 203.0.113.0/25` (EHOSTUNREACH); tcp_fastopen 0x203 (client, server, no cookie).
 */
import { describe, test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { runInNamespace } from '../helpers/in-namespace.ts'
import { dial } from '../../shared/src/net/dial.ts'
import { buildConvertConnect, buildConvertInfo } from '../../shared/src/codec/convert.ts'
import { createClientSideReader } from '../../shared/src/codec/convert-reader.ts'
import { cookieFromMissingCookieValue } from '../../shared/src/codec/convert-error.ts'
import { echoServer, eventually, makeConfig, metricValue, RawClient, startConcentrator } from '../helpers/concentrator-harness.ts'

const PREFIX = 'hat-cv-int'
const SELF = fileURLToPath(import.meta.url)
const CONV = '192.0.2.1'
const ECHO = '192.0.2.2'
const UNTRUSTED = '192.0.2.100'

const setup = [
  ['ip', 'link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1'], ['ip', 'link', 'set', 'd0', 'up'], ['ip', 'link', 'set', 'd1', 'up'],
  ['ip', 'addr', 'add', `${CONV}/24`, 'dev', 'd0'], ['ip', 'addr', 'add', `${ECHO}/24`, 'dev', 'd0'],
  ['ip', 'addr', 'add', `${UNTRUSTED}/24`, 'dev', 'd0'],
  ['ip', 'route', 'add', '198.51.100.0/24', 'dev', 'd0'],
  ['ip', 'neigh', 'add', '198.51.100.9', 'lladdr', '02:00:00:00:00:09', 'dev', 'd0', 'nud', 'permanent'],
  ['ip', 'route', 'add', 'unreachable', '203.0.113.0/25'],
  ['sysctl', '-qw', 'net.ipv4.tcp_fastopen=0x203', 'net.mptcp.enabled=1']
]
if (runInNamespace({ name: PREFIX, self: SELF, flag: 'HAT_CV_IN_NS', setup })) inner()

interface Setup { port: number, echoPort: number, conc: Awaited<ReturnType<typeof startConcentrator>>['conc'] }

async function setUp (t: TestContext, convert: Record<string, unknown> = {}, limits: Record<string, unknown> = {}): Promise<Setup> {
  const echo = await echoServer(t, ECHO)
  const config = makeConfig({
    listeners: [{ host: CONV, port: 0, mode: 'convert', protocol: 'mptcp', fastOpenNoCookie: true }],
    auth: { trustedPrefixes: [`${CONV}/32`] },
    policy: {
      allowPrefixes: ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/25'],
      denyPrefixes: ['203.0.113.128/25'],
      hostAddresses: { except: [ECHO] }
    },
    limits: { connectTimeoutMs: 500, convertTimeoutMs: 400, ...limits },
    convert
  })
  const { conc, port } = await startConcentrator(t, config)
  return { port: port(), echoPort: echo.port, conc }
}

/** A Convert client socket: MPTCP + TFO without cookie, so the first write travels in the SYN. */
function client (port: number, localAddress = CONV): RawClient {
  return new RawClient(dial({ host: CONV, port, protocol: 'mptcp', fastOpen: true, fastOpenNoCookie: true, localAddress, allowHalfOpen: true }))
}

function hex (b: Uint8Array): string { return Buffer.from(b).toString('hex') }

/** Reads one converter reply with the codec (client side). */
async function readReply (c: RawClient): Promise<{ tlvs: ReadonlyArray<{ type: unknown, code?: number, value?: Uint8Array }>, bytes: Buffer }> {
  const head = await c.read(4)
  const body = await c.read((head[1] ?? 1) * 4 - 4)
  const bytes = Buffer.concat([head, body])
  const r = createClientSideReader().feed(bytes)
  assert.equal(r.status, 'message', `reply decodes: ${hex(bytes)}`)
  return { tlvs: r.status === 'message' ? r.message.tlvs as Array<{ type: unknown }> : [], bytes }
}

function inner (): void {
  describe('Transport Converter', { concurrency: false }, () => {
    test('Connect + data in one write: data reaches the destination, reply is 01 01 22 63 then the relay', async (t) => {
      const s = await setUp(t)
      const c = client(s.port)
      c.socket.write(buildConvertConnect({ port: s.echoPort, destination: { family: 4, address: ECHO } }, Buffer.from('ping')))
      assert.equal(hex(await c.read(4)), '01012263')
      assert.equal(String(await c.read(4)), 'ping')
      c.write(Buffer.from('more'))
      assert.equal(String(await c.read(4)), 'more')
      assert.equal(await metricValue(s.conc, 'hybrid_connections_accepted_total', { mode: 'convert' }), 1)
      c.socket.destroy()
    })

    test('INTEROP: a minimal hand-built client (plain net socket) gets the exact reply bytes', async (t) => {
      const s = await setUp(t)
      // Header (v1, 6 words, magic 0x2263) + Connect (type 10, 5 words, port, ::ffff:192.0.2.2) + "GET /\r\n"
      const msg = Buffer.from('01062263' + '0a05' + s.echoPort.toString(16).padStart(4, '0') + '00000000000000000000ffff' + 'c0000202', 'hex')
      const sock = net.connect({ host: CONV, port: s.port, localAddress: CONV })
      await once(sock, 'connect')
      sock.write(Buffer.concat([msg, Buffer.from('GET /\r\n')]))
      const c = new RawClient(sock)
      assert.equal(hex(await c.read(4 + 7)), '01012263' + Buffer.from('GET /\r\n').toString('hex'))
      sock.destroy()
    })

    test('INTEROP over MPTCP + TFO: header, Connect and data in the SYN, exact reply', async (t) => {
      const s = await setUp(t)
      const c = client(s.port)
      const msg = Buffer.from('01062263' + '0a05' + s.echoPort.toString(16).padStart(4, '0') + '00000000000000000000ffff' + 'c0000202' + '6869',
        'hex')
      c.socket.write(msg)
      assert.equal(hex(await c.read(6)), '01012263' + '6869')
      c.socket.destroy()
    })

    test('refused port → Error 96, then close', async (t) => {
      const s = await setUp(t)
      const c = client(s.port)
      c.socket.write(buildConvertConnect({ port: 9, destination: { family: 4, address: ECHO } }))
      assert.equal(hex(await c.read(8)), '010222631e016000')
      await c.waitClosed(1500)
      assert.equal(await metricValue(s.conc, 'hybrid_convert_errors_total', { direction: 'sent', code: 'connection_reset' }), 1)
    })

    test('policy: denied prefix → Error 32; loopback → Error 1; untrusted source → Error 32', async (t) => {
      const s = await setUp(t)
      const denied = client(s.port)
      denied.socket.write(buildConvertConnect({ port: 80, destination: { family: 4, address: '203.0.113.200' } }))
      assert.equal(hex(await denied.read(8)), '010222631e012000')
      await denied.waitClosed(1500)
      const loop = client(s.port)
      loop.socket.write(Buffer.from('010622630a050050' + '00000000000000000000ffff7f000001', 'hex'))
      const r = await readReply(loop)
      assert.equal(r.tlvs[0]?.code, 1)
      const stranger = client(s.port, UNTRUSTED)
      stranger.socket.write(buildConvertConnect({ port: s.echoPort, destination: { family: 4, address: ECHO } }))
      assert.equal(hex(await stranger.read(8)), '010222631e012000')
    })

    test('Info → Supported TCP Extensions [30], then close', async (t) => {
      const s = await setUp(t)
      const c = client(s.port)
      c.socket.write(buildConvertInfo())
      assert.equal(hex(await c.read(12)), '0103226315020000' + '1e000000')
      await c.waitClosed(1500)
    })

    test('malformed → Error 1 (echo); version 2 → Error 0 value 01; bad magic → reset, no bytes', async (t) => {
      const s = await setUp(t)
      const bad = client(s.port)
      bad.socket.write(Buffer.from('010222630a000000', 'hex'))
      const r = await readReply(bad)
      assert.equal(r.tlvs[0]?.code, 1)
      // RFC 8803 "Error TLV to Ease Message Correlation": code, one zero byte, then the echo on the next word.
      assert.equal(hex(r.bytes).slice(0, 32), '010422631e030100010222630a000000', 'Error 1 echoing the 8-byte message')
      const v2 = client(s.port)
      v2.socket.write(Buffer.from('02012263', 'hex'))
      assert.equal(hex(await v2.read(8)), '010222631e010001')
      await v2.waitClosed(1500)
      const magic = client(s.port)
      magic.socket.write(Buffer.from('01010000', 'hex'))
      await magic.waitClosed(1500)
      assert.equal(magic.buffered.length, 0)
    })

    test('slow client: closed at the Convert deadline with no bytes, counted handshake_timeout', async (t) => {
      const s = await setUp(t)
      const c = client(s.port)
      const started = Date.now()
      c.socket.write(Buffer.from('010622630a05', 'hex'))
      await c.waitClosed(2000)
      const ms = Date.now() - started
      assert.ok(ms >= 350 && ms < 1500, `closed after ${ms} ms (deadline 400 ms)`)
      assert.equal(c.buffered.length, 0)
      assert.equal(await metricValue(s.conc, 'hybrid_connections_rejected_total', { mode: 'convert', reason: 'handshake_timeout' }), 1)
    })

    test('downstream timeout → Error 65; EHOSTUNREACH → Error 97 value 1', async (t) => {
      const s = await setUp(t)
      const slow = client(s.port)
      slow.socket.write(buildConvertConnect({ port: 80, destination: { family: 4, address: '198.51.100.9' } }))
      assert.equal(hex(await slow.read(8, 3000)), '010222631e014100')
      const unreach = client(s.port)
      unreach.socket.write(buildConvertConnect({ port: 80, destination: { family: 4, address: '203.0.113.9' } }))
      assert.equal(hex(await unreach.read(8)), '010222631e016101')
    })

    test('Connect with the TFO (empty) and MPTCP options: relayed (TFO downstream, MPTCP when allowed)', async (t) => {
      const s = await setUp(t, { downstreamMptcp: true })
      const c = client(s.port)
      const options = [{ kind: 30, data: new Uint8Array(0) }, { kind: 34, data: new Uint8Array(0) }]
      c.socket.write(buildConvertConnect({ port: s.echoPort, destination: { family: 4, address: ECHO }, options }, Buffer.from('tfo!')))
      assert.equal(hex(await c.read(4)), '01012263')
      assert.equal(String(await c.read(4)), 'tfo!')
      c.socket.destroy()
    })

    test('cookie required: Error 3 with a cookie, retry with it succeeds, a bad cookie → Error 32', async (t) => {
      const s = await setUp(t, { cookie: { required: true } })
      const first = client(s.port)
      first.socket.write(buildConvertConnect({ port: s.echoPort, destination: { family: 4, address: ECHO } }, Buffer.from('x')))
      const r = await readReply(first)
      assert.equal(r.tlvs[0]?.code, 3)
      const cookie = Uint8Array.from(cookieFromMissingCookieValue(r.tlvs[0]?.value ?? new Uint8Array(1)).subarray(0, 8))
      assert.equal(cookie.length, 8)
      await first.waitClosed(1500)
      const retry = client(s.port)
      retry.socket.write(buildConvertConnect({ port: s.echoPort, destination: { family: 4, address: ECHO }, cookie }, Buffer.from('ok')))
      assert.equal(hex(await retry.read(6)), '01012263' + '6f6b')
      retry.socket.destroy()
      const bad = client(s.port)
      bad.socket.write(buildConvertConnect({ port: s.echoPort, destination: { family: 4, address: ECHO }, cookie: new Uint8Array(8) }))
      assert.equal(hex(await bad.read(8)), '010222631e012000')
      assert.equal(await metricValue(s.conc, 'hybrid_auth_attempts_total', { method: 'cookie', result: 'success' }), 1)
    })

    test('Error replies are rate-limited per source: over the burst, a plain close', async (t) => {
      const s = await setUp(t, { errorRateLimit: { perSecond: 1, burst: 2 } })
      const replies: number[] = []
      for (let i = 0; i < 3; i++) {
        const c = client(s.port)
        c.socket.write(Buffer.from('02012263', 'hex'))
        await c.waitClosed(1500)
        replies.push(c.buffered.length)
      }
      assert.deepEqual(replies, [8, 8, 0])
      await eventually(async () => await metricValue(s.conc, 'hybrid_convert_errors_total', { direction: 'sent', code: 'unsupported_version' }) === 2)
    })
  })
}
