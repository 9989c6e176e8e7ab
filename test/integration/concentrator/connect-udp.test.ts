/**
 * The CONNECT-UDP proxy (RFC 9298 over HTTP/2 extended CONNECT, RFC 8441) in-process: a real
 * node:http2 client over TCP to the proxy on 127.0.0.1, a real UDP echo server on 127.0.0.2
 * (allowed by the harness's `policy.allowPrefixes: [127.0.0.0/8]`; 127.0.0.1 is an own address).
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import http2 from 'node:http2'
import net from 'node:net'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { CapsuleReader, encodeCapsule, encodeDatagramCapsule } from '../../../shared/src/codec/capsule.ts'
import { connectUdpPath } from '../../../shared/src/codec/connect-udp.ts'
import { encodeVarint } from '../../../shared/src/codec/quic-varint.ts'
import { buildRuntime } from '../../../concentrator/src/build-runtime.ts'
import type { ConcentratorConfig } from '../../../concentrator/src/config/config.ts'
import { createConcentratorMetrics } from '../../../concentrator/src/metrics.ts'
import { startUdpProxy } from '../../../concentrator/src/udp/udp-proxy.ts'
import { dial } from '../../../shared/src/net/dial.ts'
import { isMptcpFallback, socketProtocol } from '../../../shared/src/net/sockopt.ts'
import { ECHO_HOST, eventually, makeConfig, metricValue, silentLogger, startConcentrator, tempDir } from '../../helpers/concentrator-harness.ts'

interface Proxy { port: number, registry: Registry, flowCount: () => number, connections: () => number }

function udpConfig (udp: Record<string, unknown> = {}, doc: Record<string, unknown> = {}): ConcentratorConfig {
  const config = makeConfig({ ...doc, udp: { listen: { host: '127.0.0.1', port: 1 }, protocol: 'tcp', ...udp } })
  ;(config.udp as unknown as { listen: { port: number } }).listen.port = 0
  return config
}

async function startProxy (t: TestContext, config: ConcentratorConfig): Promise<Proxy> {
  const registry = new Registry()
  const metrics = createConcentratorMetrics(registry, { kernelMib: false })
  const rt = await buildRuntime(config, { metrics })
  t.after(() => { rt.policy.close() })
  const udp = config.udp
  assert.ok(udp !== undefined)
  const proxy = await startUdpProxy(udp, { log: silentLogger(), metrics, runtime: () => rt, onMptcpUnavailable: 'fallback' })
  t.after(async () => { await proxy.stop() })
  return { port: proxy.address.port, registry, flowCount: proxy.flowCount, connections: proxy.connectionCount }
}

async function value (p: Proxy, name: string, labels: Record<string, string> = {}): Promise<number> {
  return metricValue({ registry: p.registry } as Parameters<typeof metricValue>[0], name, labels)
}

async function udpEcho (t: TestContext): Promise<{ port: number, peers: Set<string> }> {
  const socket = dgram.createSocket('udp4')
  const peers = new Set<string>()
  socket.on('message', (msg, rinfo) => { peers.add(`${rinfo.address}:${rinfo.port}`); socket.send(msg, rinfo.port, rinfo.address) })
  socket.bind(0, ECHO_HOST)
  await once(socket, 'listening')
  t.after(() => { socket.close() })
  return { port: socket.address().port, peers }
}

async function h2 (t: TestContext, port: number): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(`http://127.0.0.1:${port}`)
  session.on('error', () => {})
  t.after(() => { session.destroy() })
  const [settings] = await once(session, 'remoteSettings') as [http2.Settings]
  assert.equal(settings.enableConnectProtocol, true, 'the proxy announces SETTINGS_ENABLE_CONNECT_PROTOCOL')
  return session
}

interface Flow {
  stream: http2.ClientHttp2Stream
  status: number
  headers: http2.IncomingHttpHeaders
  body: () => string
  datagrams: Buffer[]
  closed: Promise<number>
}

function request (session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders): Promise<Flow> {
  const stream = session.request(headers, { endStream: false })
  stream.on('error', () => {})
  const reader = new CapsuleReader()
  const datagrams: Buffer[] = []
  const chunks: Buffer[] = []
  let status = 0
  stream.on('data', (d: Buffer) => {
    chunks.push(d)
    if (status !== 200) return
    reader.push(d)
    for (let n = reader.next(); 'capsule' in n; n = reader.next()) datagrams.push(Buffer.from(n.capsule.value.subarray(1)))
  })
  const closed = new Promise<number>((resolve) => { stream.on('close', () => { resolve(stream.rstCode ?? 0) }) })
  return new Promise((resolve, reject) => {
    stream.once('response', (h) => {
      status = Number(h[':status'])
      resolve({ stream, status, headers: h, body: () => Buffer.concat(chunks).toString(), datagrams, closed })
    })
    stream.once('close', () => { reject(new Error(`stream closed before a response (rst ${stream.rstCode})`)) })
  })
}

function connectUdp (host: string, port: number, extra: http2.OutgoingHttpHeaders = {}): http2.OutgoingHttpHeaders {
  return {
    ':method': 'CONNECT',
    ':protocol': 'connect-udp',
    ':scheme': 'https',
    ':authority': 'concentrator.example',
    ':path': connectUdpPath(host, port),
    'capsule-protocol': '?1',
    ...extra
  }
}

test('datagrams make the round trip through one outside binding, counted per direction', async (t) => {
  const echo = await udpEcho(t)
  const p = await startProxy(t, udpConfig())
  const session = await h2(t, p.port)
  const flow = await request(session, connectUdp(ECHO_HOST, echo.port))
  assert.equal(flow.status, 200)
  assert.equal(flow.headers['capsule-protocol'], '?1')
  for (const text of ['one', 'two', 'three']) flow.stream.write(encodeDatagramCapsule(Buffer.from(text)))
  await eventually(() => flow.datagrams.length === 3)
  assert.deepEqual(flow.datagrams.map((d) => d.toString()).sort(), ['one', 'three', 'two'])
  assert.equal(echo.peers.size, 1, 'every datagram of the flow left from the same address and port')
  assert.equal(await value(p, 'hybrid_udp_datagrams_total', { direction: 'up' }), 3)
  assert.equal(await value(p, 'hybrid_udp_datagrams_total', { direction: 'down' }), 3)
  assert.equal(await value(p, 'hybrid_udp_bytes_total', { direction: 'down' }), 11)
  assert.equal(await value(p, 'hybrid_udp_flows_active'), 1)
  flow.stream.end()
  await flow.closed
  await eventually(async () => await value(p, 'hybrid_udp_flows_ended_total', { reason: 'closed' }) === 1)
  assert.equal(await value(p, 'hybrid_udp_flows_active'), 0)
  assert.equal(p.flowCount(), 0)
})

test('request checks answer 400, 404 and 405', async (t) => {
  const p = await startProxy(t, udpConfig())
  const session = await h2(t, p.port)
  const bad = await request(session, connectUdp(ECHO_HOST, 53, { ':protocol': 'websocket' }))
  assert.equal(bad.status, 400)
  const badPort = await request(session, { ...connectUdp(ECHO_HOST, 53), ':path': '/.well-known/masque/udp/127.0.0.2/0/' })
  assert.equal(badPort.status, 400)
  const notFound = await request(session, { ...connectUdp(ECHO_HOST, 53), ':path': '/elsewhere/' })
  assert.equal(notFound.status, 404)
  const get = await request(session, { ':method': 'GET', ':path': connectUdpPath(ECHO_HOST, 53) })
  assert.equal(get.status, 405)
  await get.closed
  assert.match(get.body(), /method_not_allowed/)
  assert.equal(await value(p, 'hybrid_udp_flows_refused_total', { reason: 'malformed' }), 4)
})

test('the destination policy refuses with 403 and a Proxy-Status naming the reason', async (t) => {
  const p = await startProxy(t, udpConfig({}, { policy: { allowPrefixes: ['127.0.0.0/8'], hostAddresses: { except: ['127.0.0.0/8'] }, deniedPorts: [25] } }))
  const session = await h2(t, p.port)
  const own = await request(session, connectUdp('127.0.0.1', 53))
  assert.equal(own.status, 403)
  assert.match(String(own.headers['proxy-status']), /^hybrid-concentrator; error=destination_ip_prohibited; details="ssrf_blocked: 127\.0\.0\.1 is an address of this concentrator"$/)
  const priv = await request(session, connectUdp('10.1.2.3', 53))
  assert.equal(priv.status, 403)
  assert.match(String(priv.headers['proxy-status']), /ssrf_blocked/)
  const port = await request(session, connectUdp(ECHO_HOST, 25))
  assert.equal(port.status, 403)
  assert.match(String(port.headers['proxy-status']), /error=http_request_denied; details="port_denied/)
  const loopbackName = await request(session, connectUdp('localhost', 53))
  assert.equal(loopbackName.status, 403)
  assert.equal(await value(p, 'hybrid_udp_policy_refusals_total', { reason: 'ssrf_blocked' }), 3)
  assert.equal(await value(p, 'hybrid_udp_policy_refusals_total', { reason: 'port_denied' }), 1)
  assert.equal(await value(p, 'hybrid_udp_flows_refused_total', { reason: 'policy' }), 4)
  assert.equal(p.flowCount(), 0, 'refused requests leave no slot behind')
})

test('names are resolved through the policy resolver and vetted like TCP destinations', async (t) => {
  const echo = await udpEcho(t)
  const config = udpConfig()
  const registry = new Registry()
  const metrics = createConcentratorMetrics(registry, { kernelMib: false })
  const resolver = {
    resolve: async (name: string) => name === 'echo.example'
      ? { ok: true as const, cached: false, addresses: [{ address: ECHO_HOST, family: 4 as const }] }
      : { ok: true as const, cached: false, addresses: [{ address: '169.254.169.254', family: 4 as const }] }
  }
  const rt = await buildRuntime(config, { metrics, resolver })
  const proxy = await startUdpProxy(config.udp!, { log: silentLogger(), metrics, runtime: () => rt, onMptcpUnavailable: 'fallback' })
  t.after(async () => { await proxy.stop() })
  const session = await h2(t, proxy.address.port)
  const ok = await request(session, connectUdp('echo.example', echo.port))
  assert.equal(ok.status, 200)
  ok.stream.write(encodeDatagramCapsule(Buffer.from('named')))
  await eventually(() => ok.datagrams.length === 1)
  const meta = await request(session, connectUdp('metadata.example', 80))
  assert.equal(meta.status, 403)
  assert.match(String(meta.headers['proxy-status']), /metadata\.example resolves to 169\.254\.169\.254/)
})

test('407 without or with wrong Basic credentials, 200 with the right ones (auth.credentialsFile)', async (t) => {
  const echo = await udpEcho(t)
  const file = join(tempDir(), 'users')
  writeFileSync(file, 'alice:s3cret\n')
  const p = await startProxy(t, udpConfig({}, { auth: { trustedPrefixes: [], credentialsFile: file } }))
  const session = await h2(t, p.port)
  const none = await request(session, connectUdp(ECHO_HOST, echo.port))
  assert.equal(none.status, 407)
  assert.match(String(none.headers['proxy-authenticate']), /^Basic realm=/)
  const basic = (u: string, pw: string): string => `Basic ${Buffer.from(`${u}:${pw}`).toString('base64')}`
  const wrong = await request(session, connectUdp(ECHO_HOST, echo.port, { 'proxy-authorization': basic('alice', 'nope') }))
  assert.equal(wrong.status, 407)
  const right = await request(session, connectUdp(ECHO_HOST, echo.port, { 'proxy-authorization': basic('alice', 's3cret') }))
  assert.equal(right.status, 200)
  assert.equal(await value(p, 'hybrid_auth_attempts_total', { method: 'userpass', result: 'failure' }), 1)
  assert.equal(await value(p, 'hybrid_auth_attempts_total', { method: 'userpass', result: 'success' }), 1)
  assert.equal(await value(p, 'hybrid_udp_flows_refused_total', { reason: 'auth' }), 2)
})

test('an untrusted source without configured credentials gets 403 not_trusted', async (t) => {
  const p = await startProxy(t, udpConfig({}, { auth: { trustedPrefixes: [] } }))
  const session = await h2(t, p.port)
  const r = await request(session, connectUdp(ECHO_HOST, 53))
  assert.equal(r.status, 403)
  assert.match(String(r.headers['proxy-status']), /not_trusted/)
})

test('a flow without datagrams ends at its idle timeout', async (t) => {
  const echo = await udpEcho(t)
  const p = await startProxy(t, udpConfig({ idleTimeoutMs: 1000 }))
  const session = await h2(t, p.port)
  const flow = await request(session, connectUdp(ECHO_HOST, echo.port))
  assert.equal(flow.status, 200)
  const started = Date.now()
  flow.stream.write(encodeDatagramCapsule(Buffer.from('x')))
  await flow.closed
  const took = Date.now() - started
  assert.ok(took >= 900 && took < 5000, `ended after ${took} ms`)
  assert.equal(await value(p, 'hybrid_udp_flows_ended_total', { reason: 'idle' }), 1)
  assert.equal(await value(p, 'hybrid_udp_flows_active'), 0)
})

test('caps: per subscriber 429, in total 503, each with connection_limit_reached', async (t) => {
  const echo = await udpEcho(t)
  const per = await startProxy(t, udpConfig({ perSubscriberMaxFlows: 1 }))
  const s1 = await h2(t, per.port)
  assert.equal((await request(s1, connectUdp(ECHO_HOST, echo.port))).status, 200)
  const second = await request(s1, connectUdp(ECHO_HOST, echo.port))
  assert.equal(second.status, 429)
  assert.match(String(second.headers['proxy-status']), /error=connection_limit_reached/)
  const total = await startProxy(t, udpConfig({ maxFlows: 1 }))
  const s2 = await h2(t, total.port)
  const first = await request(s2, connectUdp(ECHO_HOST, echo.port))
  assert.equal(first.status, 200)
  assert.equal((await request(s2, connectUdp(ECHO_HOST, echo.port))).status, 503)
  first.stream.end()
  await first.closed
  await eventually(() => total.flowCount() === 0)
  assert.equal((await request(s2, connectUdp(ECHO_HOST, echo.port))).status, 200, 'the slot is free again')
  assert.equal(await value(per, 'hybrid_udp_flows_refused_total', { reason: 'source_cap' }), 1)
  assert.equal(await value(total, 'hybrid_udp_flows_refused_total', { reason: 'global_cap' }), 1)
})

test('oversized, unknown-context and unknown-type capsules are dropped and counted; the flow goes on', async (t) => {
  const echo = await udpEcho(t)
  const p = await startProxy(t, udpConfig({ maxDatagramBytes: 100 }))
  const session = await h2(t, p.port)
  const flow = await request(session, connectUdp(ECHO_HOST, echo.port))
  flow.stream.write(encodeDatagramCapsule(Buffer.alloc(101, 1)))
  flow.stream.write(encodeDatagramCapsule(Buffer.from('ctx2'), 2))
  flow.stream.write(encodeCapsule(0x17, Buffer.from('grease')))
  flow.stream.write(encodeCapsule(0x00, Buffer.alloc(0)))
  flow.stream.write(encodeDatagramCapsule(Buffer.from('after')))
  await eventually(() => flow.datagrams.length === 1)
  assert.equal(flow.datagrams[0]?.toString(), 'after')
  const dropped = async (reason: string): Promise<number> => value(p, 'hybrid_udp_datagrams_dropped_total', { reason })
  assert.equal(await dropped('oversized'), 1)
  assert.equal(await dropped('unknown_context'), 1)
  assert.equal(await dropped('unknown_capsule'), 1)
  assert.equal(await dropped('malformed'), 1)
  assert.equal(await value(p, 'hybrid_udp_datagrams_total', { direction: 'up' }), 1)
})

test('a stream ending inside a capsule, or a capsule over the budget, is reset (PROTOCOL_ERROR)', async (t) => {
  const echo = await udpEcho(t)
  const p = await startProxy(t, udpConfig())
  const session = await h2(t, p.port)
  const truncated = await request(session, connectUdp(ECHO_HOST, echo.port))
  // The client has half-closed: Node's close() ends the server's side before the RST_STREAM, so
  // this client sees a plain close; the fault is visible in the end reason.
  truncated.stream.end(encodeDatagramCapsule(Buffer.from('cut short')).subarray(0, 5))
  await truncated.closed
  await eventually(async () => await value(p, 'hybrid_udp_flows_ended_total', { reason: 'closed' }) === 1)
  const large = await request(session, connectUdp(ECHO_HOST, echo.port))
  large.stream.write(Buffer.concat([Buffer.from([0x00]), encodeVarint(70_000)]))
  assert.equal(await large.closed, http2.constants.NGHTTP2_PROTOCOL_ERROR)
  assert.equal(await value(p, 'hybrid_udp_flows_ended_total', { reason: 'closed' }), 2)
  assert.equal(p.flowCount(), 0)
})

test('garbage, silence, resets and vanished clients never crash the proxy', async (t) => {
  const echo = await udpEcho(t)
  const p = await startProxy(t, udpConfig({}, { limits: { handshakeTimeoutMs: 500 } }))
  // Not HTTP/2 at all.
  const raw = net.connect(p.port, '127.0.0.1')
  raw.on('error', () => {})
  t.after(() => { raw.destroy() })
  await once(raw, 'connect')
  await eventually(() => p.connections() === 1)
  raw.end(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))
  await eventually(() => p.connections() === 0)
  // Silent after connecting: closed at the handshake deadline (limits.handshakeTimeoutMs, 500 ms here).
  const silent = net.connect(p.port, '127.0.0.1')
  silent.on('error', () => {})
  t.after(() => { silent.destroy() })
  await once(silent, 'connect')
  await eventually(() => p.connections() === 1)
  await eventually(() => p.connections() === 0, 3000)
  const session = await h2(t, p.port)
  for (let i = 0; i < 20; i++) {
    const flow = await request(session, connectUdp(ECHO_HOST, echo.port))
    const junk = Buffer.from(Array.from({ length: 1 + (i * 37) % 300 }, (_v, k) => (k * 131 + i * 17) & 0xff))
    flow.stream.write(junk)
    if (i % 3 === 0) flow.stream.close(http2.constants.NGHTTP2_CANCEL)
  }
  // A client that disappears with flows open.
  const gone = await h2(t, p.port)
  const f = await request(gone, connectUdp(ECHO_HOST, echo.port))
  f.stream.write(encodeDatagramCapsule(Buffer.from('bye')))
  gone.destroy()
  await eventually(() => p.flowCount() <= 20)
  const fresh = await h2(t, p.port)
  const ok = await request(fresh, connectUdp(ECHO_HOST, echo.port))
  ok.stream.write(encodeDatagramCapsule(Buffer.from('still here')))
  await eventually(() => ok.datagrams.length === 1)
  assert.equal(ok.datagrams[0]?.toString(), 'still here')
})

async function freePort (): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1')
  await once(s, 'listening')
  const port = (s.address() as net.AddressInfo).port
  await new Promise<void>((resolve) => { s.close(() => { resolve() }) })
  return port
}

test('the concentrator starts the proxy from `udp` and ends its flows on stop (reason stopped)', async (t) => {
  const echo = await udpEcho(t)
  const config = makeConfig({ udp: { listen: { host: '127.0.0.1', port: await freePort() }, protocol: 'tcp' } })
  const { conc } = await startConcentrator(t, config)
  const session = await h2(t, config.udp?.listen.port ?? 0)
  const flow = await request(session, connectUdp(ECHO_HOST, echo.port))
  assert.equal(flow.status, 200)
  flow.stream.write(encodeDatagramCapsule(Buffer.from('via the daemon')))
  await eventually(() => flow.datagrams.length === 1)
  await conc.stop()
  await flow.closed
  assert.equal(await metricValue(conc, 'hybrid_udp_flows_ended_total', { reason: 'stopped' }), 1)
})

test('over MPTCP: an MPTCP client reaches the MPTCP listener without fallback and relays datagrams', async (t) => {
  const echo = await udpEcho(t)
  let p: Proxy
  try {
    p = await startProxy(t, udpConfig({ protocol: 'mptcp' }))
  } catch (err) {
    t.skip(`no kernel MPTCP here: ${(err as Error).message}`)
    return
  }
  const socket = dial({ host: '127.0.0.1', port: p.port, protocol: 'mptcp', onMptcpUnavailable: 'fail' })
  socket.on('error', () => {})
  await once(socket, 'connect')
  const session = http2.connect(`http://127.0.0.1:${p.port}`, { createConnection: () => socket })
  session.on('error', () => {})
  t.after(() => { session.destroy() })
  await once(session, 'remoteSettings')
  const flow = await request(session, connectUdp(ECHO_HOST, echo.port))
  assert.equal(flow.status, 200)
  flow.stream.write(encodeDatagramCapsule(Buffer.from('bonded')))
  await eventually(() => flow.datagrams.length === 1)
  assert.equal(socketProtocol(socket), 'mptcp')
  assert.equal(isMptcpFallback(socket), false, 'the connection to the proxy is MPTCP end to end')
})
