/**
 * SOCKS5 through an in-process concentrator (plain-TCP listener on 127.0.0.1) to an echo server on
 * 127.0.0.2 (allowed by `policy.allowPrefixes: [127.0.0.0/8]`; 127.0.0.1 itself is an own address).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import net from 'node:net'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ECHO_HOST, RawClient, connectRequest, echoServer, eventually, makeConfig, metricValue, startConcentrator, tempDir } from '../../helpers/concentrator-harness.ts'

const GREETING_NOAUTH = Buffer.from('050100', 'hex')

function userPass (user: string, pass: string): Buffer {
  return Buffer.concat([Buffer.from([1, user.length]), Buffer.from(user), Buffer.from([pass.length]), Buffer.from(pass)])
}

test('pipelined greeting + CONNECT + data in one write reaches the echo server', async (t) => {
  const echo = await echoServer(t)
  const { conc, port } = await startConcentrator(t, makeConfig({}))
  const c = await RawClient.connect(port())
  c.write(Buffer.concat([GREETING_NOAUTH, connectRequest(ECHO_HOST, echo.port), Buffer.from('hello')]))
  assert.equal((await c.read(2)).toString('hex'), '0500')
  const reply = await c.read(10)
  assert.equal(reply.subarray(0, 4).toString('hex'), '05000001')
  assert.equal(reply.subarray(4, 8).join('.'), '127.0.0.1', 'BND.ADDR is the egress socket\'s local address')
  assert.equal((await c.read(5)).toString(), 'hello')
  assert.equal(conc.sessions.size, 1)
  c.socket.end()
  await c.waitClosed()
  assert.equal(await metricValue(conc, 'hybrid_socks5_replies_total', { rep: '0' }), 1)
  assert.equal(await metricValue(conc, 'hybrid_auth_attempts_total', { method: 'none', result: 'success' }), 1)
})

/** The first chunk the client reads after writing `bytes` in one write. */
async function firstChunk (port: number, bytes: Buffer): Promise<Buffer> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write(bytes)
  const [chunk] = await once(socket, 'data') as [Buffer]
  socket.destroy()
  return chunk
}

test('pipelined request: the method reply and the CONNECT reply (or refusal) leave in one write', async (t) => {
  const echo = await echoServer(t)
  const { port } = await startConcentrator(t, makeConfig({}))
  const ok = await firstChunk(port(), Buffer.concat([GREETING_NOAUTH, connectRequest(ECHO_HOST, echo.port), Buffer.from('hello')]))
  assert.equal(ok.subarray(0, 6).toString('hex'), '050005000001', 'method reply, then REP 00, in the first chunk')
  assert.ok(ok.length >= 12)
  const refused = await firstChunk(port(), Buffer.concat([GREETING_NOAUTH, connectRequest('10.0.0.1', 80)]))
  assert.equal(refused.toString('hex').slice(0, 8), '05000502', 'method reply, then REP 02, in the first chunk')
  assert.equal(refused.length, 12)
})

test('stepwise handshake, one message per write', async (t) => {
  const echo = await echoServer(t)
  const { port } = await startConcentrator(t, makeConfig({}))
  const c = await RawClient.connect(port())
  c.write(GREETING_NOAUTH)
  assert.equal((await c.read(2)).toString('hex'), '0500')
  const req = connectRequest(ECHO_HOST, echo.port)
  c.write(req.subarray(0, 3))
  await new Promise((resolve) => setTimeout(resolve, 20))
  c.write(req.subarray(3))
  assert.equal((await c.read(10))[1], 0)
  c.write('6162')
  assert.equal((await c.read(2)).toString(), 'ab')
  c.socket.destroy()
})

test('username/password: good, bad, back-off after 5 failures, recovery', async (t) => {
  const echo = await echoServer(t)
  const dir = tempDir()
  const file = join(dir, 'users')
  writeFileSync(file, '# test users\nalice:s3cret:with:colons\n')
  const { conc, port } = await startConcentrator(t, makeConfig({
    auth: { trustedPrefixes: [], credentialsFile: file, backoffInitialMs: 300, backoffMaxMs: 1000 }
  }))
  const attempt = async (pass: string): Promise<string> => {
    const c = await RawClient.connect(port())
    c.write(Buffer.concat([Buffer.from('050102', 'hex'), userPass('alice', pass), connectRequest(ECHO_HOST, echo.port)]))
    const out = (await c.read(4)).toString('hex')
    c.socket.destroy()
    return out
  }
  assert.equal(await attempt('s3cret:with:colons'), '05020100', 'good credentials')
  for (let i = 0; i < 5; i++) assert.equal(await attempt('wrong'), '05020101', `bad ${i}`)
  assert.equal(await attempt('s3cret:with:colons'), '05020101', 'throttled: refused even with the right password')
  assert.equal(await metricValue(conc, 'hybrid_auth_attempts_total', { method: 'userpass', result: 'throttled' }), 1)
  assert.equal(await metricValue(conc, 'hybrid_connections_rejected_total', { mode: 'socks5', reason: 'auth_failed' }), 6)
  await new Promise((resolve) => setTimeout(resolve, 350))
  assert.equal(await attempt('s3cret:with:colons'), '05020100', 'after the back-off')
  // An untrusted source offering only "no auth" gets 05 FF.
  const c = await RawClient.connect(port())
  c.write(GREETING_NOAUTH)
  assert.equal((await c.read(2)).toString('hex'), '05ff')
  await c.waitClosed()
})

test('policy refusal → REP 02 and close within 1 s', async (t) => {
  const { conc, port } = await startConcentrator(t, makeConfig({}))
  for (const host of ['127.0.0.1', '10.0.0.1']) {
    const c = await RawClient.connect(port())
    c.write(Buffer.concat([GREETING_NOAUTH, connectRequest(host, 80)]))
    await c.read(2)
    assert.equal((await c.read(10))[1], 2, host)
    const t0 = Date.now()
    await c.waitClosed(1500)
    assert.ok(Date.now() - t0 < 1200)
  }
  assert.equal(await metricValue(conc, 'hybrid_connections_rejected_total', { mode: 'socks5', reason: 'ssrf_blocked' }), 2)
  assert.equal(await metricValue(conc, 'hybrid_socks5_replies_total', { rep: '2' }), 2)
})

test('connection refused → REP 05; unknown command → REP 07', async (t) => {
  const { conc, port } = await startConcentrator(t, makeConfig({}))
  const probe = net.createServer().listen(0, ECHO_HOST)
  await once(probe, 'listening')
  const closedPort = (probe.address() as net.AddressInfo).port
  probe.close()
  const c = await RawClient.connect(port())
  c.write(Buffer.concat([GREETING_NOAUTH, connectRequest(ECHO_HOST, closedPort)]))
  await c.read(2)
  assert.equal((await c.read(10))[1], 5)
  await c.waitClosed()
  assert.equal(await metricValue(conc, 'hybrid_upstream_connect_failures_total', { reason: 'refused' }), 1)

  const b = await RawClient.connect(port())
  b.write(Buffer.concat([GREETING_NOAUTH, Buffer.from('050200017f0000020050', 'hex')]))
  await b.read(2)
  assert.equal((await b.read(10))[1], 7)
  await b.waitClosed()
  assert.equal(await metricValue(conc, 'hybrid_connections_rejected_total', { mode: 'socks5', reason: 'unsupported_cmd' }), 1)
})

test('slow handshake is destroyed at the deadline', async (t) => {
  const { conc, port } = await startConcentrator(t, makeConfig({ limits: { handshakeTimeoutMs: 200 } }))
  const c = await RawClient.connect(port())
  c.write(GREETING_NOAUTH)
  await c.read(2)
  const t0 = Date.now()
  await c.waitClosed(2000)
  assert.ok(Date.now() - t0 >= 150)
  assert.equal(await metricValue(conc, 'hybrid_connections_rejected_total', { mode: 'socks5', reason: 'handshake_timeout' }), 1)
  await eventually(() => conc.activeConnections() === 0)
})

test('idle relay is closed by the idle timeout', async (t) => {
  const echo = await echoServer(t)
  const { conc, port } = await startConcentrator(t, makeConfig({ limits: { idleTimeoutMs: 300 } }))
  const c = await RawClient.connect(port())
  c.write(Buffer.concat([GREETING_NOAUTH, connectRequest(ECHO_HOST, echo.port), Buffer.from('x')]))
  await c.read(13)
  await c.waitClosed(2000)
  await eventually(async () => await metricValue(conc, 'hybrid_connections_closed_total', { mode: 'socks5', reason: 'idle_timeout' }) === 1)
})

test('half-close: the client ends its side and still receives the server\'s answer', async (t) => {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {})
    let got = ''
    s.on('data', (d) => { got += String(d) })
    s.on('end', () => { setTimeout(() => { s.end(`bye ${got}`) }, 50) })
  }).listen(0, ECHO_HOST)
  await once(server, 'listening')
  t.after(() => server.close())
  const { conc, port } = await startConcentrator(t, makeConfig({}))
  const c = await RawClient.connect(port())
  c.write(Buffer.concat([GREETING_NOAUTH, connectRequest(ECHO_HOST, (server.address() as net.AddressInfo).port), Buffer.from('hi')]))
  await c.read(12)
  c.socket.end()
  assert.equal((await c.read(6)).toString(), 'bye hi')
  await c.waitClosed()
  await eventually(async () => await metricValue(conc, 'hybrid_connections_closed_total', { mode: 'socks5', reason: 'normal' }) === 1)
  assert.equal(await metricValue(conc, 'hybrid_bytes_received_total', { mode: 'socks5', side: 'client' }), 2)
  assert.equal(await metricValue(conc, 'hybrid_bytes_received_total', { mode: 'socks5', side: 'server' }), 6)
})

test('per-source cap: the connection over the cap is closed at once', async (t) => {
  const { conc, port } = await startConcentrator(t, makeConfig({ limits: { perSourceMaxConnections: 2 } }))
  const a = await RawClient.connect(port())
  const b = await RawClient.connect(port())
  await new Promise((resolve) => setTimeout(resolve, 50))
  const c = await RawClient.connect(port())
  await c.waitClosed()
  assert.equal(c.buffered.length, 0, 'closed without a reply')
  assert.equal(await metricValue(conc, 'hybrid_connections_rejected_total', { mode: 'socks5', reason: 'per_source_limit' }), 1)
  a.socket.destroy()
  await eventually(() => conc.activeConnections() === 1)
  const d = await RawClient.connect(port())
  d.write(GREETING_NOAUTH)
  assert.equal((await d.read(2)).toString('hex'), '0500', 'a slot was released')
  b.socket.destroy()
  d.socket.destroy()
})

test('early data over the cap → REP 01 and close', async (t) => {
  const echo = await echoServer(t)
  const { conc, port } = await startConcentrator(t, makeConfig({ limits: { earlyDataMaxBytes: 16 } }))
  const c = await RawClient.connect(port())
  c.write(Buffer.concat([GREETING_NOAUTH, connectRequest(ECHO_HOST, echo.port), Buffer.alloc(17, 0x61)]))
  await c.read(2)
  assert.equal((await c.read(10))[1], 1)
  await c.waitClosed()
  assert.equal(await metricValue(conc, 'hybrid_connections_rejected_total', { mode: 'socks5', reason: 'malformed' }), 1)
  const ok = await RawClient.connect(port())
  ok.write(Buffer.concat([GREETING_NOAUTH, connectRequest(ECHO_HOST, echo.port), Buffer.alloc(16, 0x62)]))
  await ok.read(12)
  assert.equal((await ok.read(16)).toString(), 'b'.repeat(16), 'exactly the cap is fine')
  ok.socket.destroy()
})

test('unauthenticated budget: a connection leaves it once authenticated and its request accepted', async (t) => {
  const echo = await echoServer(t)
  const file = join(tempDir(), 'users')
  writeFileSync(file, 'alice:pw\n')
  const { conc, port } = await startConcentrator(t, makeConfig({
    auth: { trustedPrefixes: [], credentialsFile: file },
    limits: { unauthenticatedMaxConnections: 1 }
  }))
  const a = await RawClient.connect(port())
  a.write(Buffer.concat([Buffer.from('050102', 'hex'), userPass('alice', 'pw'), connectRequest(ECHO_HOST, echo.port), Buffer.from('hi')]))
  assert.equal((await a.read(4)).toString('hex'), '05020100')
  assert.equal((await a.read(10))[1], 0)
  assert.equal(String(await a.read(2)), 'hi')
  const b = await RawClient.connect(port())
  b.write(Buffer.from('050102', 'hex'))
  assert.equal((await b.read(2)).toString('hex'), '0502', 'the budget slot of the relayed connection was freed')
  const c = await RawClient.connect(port())
  await c.waitClosed()
  assert.equal(c.buffered.length, 0)
  assert.equal(await metricValue(conc, 'hybrid_connections_rejected_total', { mode: 'socks5', reason: 'unauthenticated_limit' }), 1)
  for (const s of [a, b]) s.socket.destroy()
})
