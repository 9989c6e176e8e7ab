/**
 * Lifecycle of an in-process concentrator: drain on stop, reload (credentials swapped under an
 * established relay), management routes via inject(), no leaks over 500 connections, and a real
 * MPTCP listener with an MPTCP client (this network namespace has net.mptcp.enabled=1).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { once } from 'node:events'
import { dial } from '../../../shared/src/net/dial.ts'
import { listenMgmt } from '../../../shared/src/mgmt/mgmt-server.ts'
import { socketProtocol, isMptcpFallback } from '../../../shared/src/net/sockopt.ts'
import { ECHO_HOST, RawClient, connectRequest, echoServer, eventually, makeConfig, metricValue, startConcentrator, tempDir } from '../../helpers/concentrator-harness.ts'

const GREETING_NOAUTH = Buffer.from('050100', 'hex')
const TOKEN = '0123456789abcdef0123'

async function relayed (port: number, echoPort: number): Promise<RawClient> {
  const c = await RawClient.connect(port)
  c.write(Buffer.concat([GREETING_NOAUTH, connectRequest(ECHO_HOST, echoPort)]))
  await c.read(12)
  return c
}

test('stop: readiness off, new connections refused, relays drained then destroyed with reason drain', async (t) => {
  const echo = await echoServer(t)
  const { conc, port } = await startConcentrator(t, makeConfig({ limits: { drainTimeoutMs: 400 } }))
  assert.equal(conc.ready(), true)
  const c = await relayed(port(), echo.port)
  const stopping = conc.stop()
  assert.equal(conc.ready(), false)
  const late = await RawClient.connect(port()).catch(() => undefined)
  if (late !== undefined) await late.waitClosed() // listener still open (MPTCP joins), arrival closed
  c.write('7a')
  assert.equal((await c.read(1)).toString(), 'z', 'the relay still works during the drain')
  const t0 = Date.now()
  await stopping
  assert.ok(Date.now() - t0 >= 250, 'waited for the drain deadline')
  await c.waitClosed()
  assert.equal(await metricValue(conc, 'hybrid_connections_closed_total', { mode: 'socks5', reason: 'drain' }), 1)
  assert.equal(conc.activeConnections(), 0)
  assert.equal(conc.listeners().length, 0)
})

test('stop returns early when every connection has ended', async (t) => {
  const echo = await echoServer(t)
  const { conc, port } = await startConcentrator(t, makeConfig({ limits: { drainTimeoutMs: 5000 } }))
  const c = await relayed(port(), echo.port)
  const stopping = conc.stop()
  setTimeout(() => { c.socket.end() }, 100)
  const t0 = Date.now()
  await stopping
  assert.ok(Date.now() - t0 < 2000)
  assert.equal(await metricValue(conc, 'hybrid_connections_closed_total', { mode: 'socks5', reason: 'normal' }), 1)
})

test('reload swaps credentials without dropping an established relay; a bad reload keeps the old config', async (t) => {
  const echo = await echoServer(t)
  const file = join(tempDir(), 'users')
  writeFileSync(file, 'alice:one\n')
  const doc = { auth: { trustedPrefixes: [], credentialsFile: file } }
  const { conc, port } = await startConcentrator(t, makeConfig(doc))
  const login = async (pass: string): Promise<RawClient> => {
    const c = await RawClient.connect(port())
    c.write(Buffer.concat([Buffer.from('050102', 'hex'), Buffer.from([1, 5]), Buffer.from('alice'), Buffer.from([pass.length]), Buffer.from(pass),
      connectRequest(ECHO_HOST, echo.port)]))
    return c
  }
  const old = await login('one')
  assert.equal((await old.read(4)).toString('hex'), '05020100')
  await old.read(10)
  writeFileSync(file, 'alice:two\n')
  const config = makeConfig(doc)
  ;(config.listeners[0] as { port: number }).port = port() // same listener: not re-bound
  await conc.reload(config)
  assert.equal(await metricValue(conc, 'hybrid_config_reloads_total', { result: 'success' }), 1)
  old.write('6f6c64')
  assert.equal((await old.read(3)).toString(), 'old', 'established relay untouched')
  const bad = await login('one')
  assert.equal((await bad.read(4)).toString('hex'), '05020101')
  const good = await login('two')
  assert.equal((await good.read(4)).toString('hex'), '05020100')
  writeFileSync(file, 'no colon here\n')
  await assert.rejects(conc.reload(config), { code: 'HYBRID_ERR_CONFIG_INVALID' })
  assert.equal(await metricValue(conc, 'hybrid_config_reloads_total', { result: 'failure' }), 1)
  const still = await login('two')
  assert.equal((await still.read(4)).toString('hex'), '05020100', 'old credentials kept')
  for (const c of [old, bad, good, still]) c.socket.destroy()
})

test('reload re-binds only changed listeners', async (t) => {
  const { conc } = await startConcentrator(t, makeConfig({ listeners: [{ host: '127.0.0.1', port: 0, mode: 'socks5', protocol: 'tcp' }] }))
  const first = conc.listeners()[0]
  assert.ok(first !== undefined)
  const config = makeConfig({
    listeners: [{ host: '127.0.0.1', port: first.port, mode: 'socks5', protocol: 'tcp' },
      { host: '::1', port: 0, mode: 'socks5', protocol: 'tcp' }]
  })
  ;(config.listeners[1] as { port: number }).port = 0
  await conc.reload(config)
  const after = conc.listeners()
  assert.equal(after.length, 2)
  assert.equal(after[0]?.port, first.port)
  assert.equal(after[1]?.host, '::1')
  assert.equal(conc.ready(), true)
})

test('management routes via inject()', async (t) => {
  const echo = await echoServer(t)
  let reloads = 0
  const { conc, port } = await startConcentrator(t, makeConfig({ management: { token: TOKEN } }), { requestReload: async () => { reloads++ } })
  const c = await relayed(port(), echo.port)
  c.write('61626364')
  await c.read(4)
  const get = async (url: string): Promise<{ statusCode: number, body: string }> => conc.mgmt.inject({
    method: 'GET',
    url,
    headers: { host: '127.0.0.1' }
  })
  assert.equal((await get('/livez')).statusCode, 200)
  assert.equal(JSON.parse((await get('/readyz')).body).ready, true)
  const metrics = (await get('/metrics')).body
  assert.match(metrics, /hybrid_socks5_replies_total\{rep="0"\} 1/)
  assert.match(metrics, /hybrid_connections_active\{mode="socks5"\} 1/)
  const status = JSON.parse((await get('/api/v1/status')).body)
  assert.equal(status.connections.relaying, 1)
  assert.equal(status.listeners.length, 1)
  // The typed response schema (concentrator/src/mgmt/status-schema.ts) serialises every field the daemon builds.
  assert.deepEqual(status, { ...JSON.parse(JSON.stringify(conc.status())), uptimeSeconds: status.uptimeSeconds })
  assert.deepEqual(JSON.parse((await get('/status')).body).connections, status.connections)
  const page = JSON.parse((await get('/api/v1/sessions?limit=10')).body)
  assert.equal(page.total, 1)
  assert.equal(page.sessions[0].bytesUp, 4)
  assert.equal(page.sessions[0].dst, `${ECHO_HOST}:${echo.port}`)
  const noToken = await conc.mgmt.inject({ method: 'POST', url: '/api/v1/reload', headers: { host: '127.0.0.1' } })
  assert.equal(noToken.statusCode, 401)
  const ok = await conc.mgmt.inject({ method: 'POST', url: '/api/v1/reload', headers: { host: '127.0.0.1', authorization: `Bearer ${TOKEN}` } })
  assert.equal(ok.statusCode, 200)
  assert.equal(reloads, 1)
  c.socket.destroy()
})

test('management.limits reach the concentrator management server; refusals are counted on its registry', async (t) => {
  const { conc } = await startConcentrator(t, makeConfig({ management: { limits: { maxConnections: 2, idleTimeoutMs: 4321 } } }))
  assert.equal(conc.mgmt.server.timeout, 4321)
  const { port } = await listenMgmt(conc.mgmt, { host: '127.0.0.1', port: 0 })
  const clients = await Promise.all([0, 1, 2, 3].map(async () => RawClient.connect(port)))
  t.after(() => { for (const c of clients) c.socket.destroy() })
  await eventually(async () => await metricValue(conc, 'hybrid_mgmt_connections_refused_total', { reason: 'max_conns' }) === 2)
})

function openFds (): number {
  return readdirSync('/proc/self/fd').length
}

test('no leaks: 500 relayed connections opened and closed return to the baseline', async (t) => {
  const echo = await echoServer(t)
  const { conc, port } = await startConcentrator(t, makeConfig({}))
  const warm = await relayed(port(), echo.port)
  warm.socket.destroy()
  await eventually(() => conc.activeConnections() === 0)
  const baseline = openFds()
  for (let batch = 0; batch < 10; batch++) {
    const clients = await Promise.all(Array.from({ length: 50 }, async () => relayed(port(), echo.port)))
    for (const [i, c] of clients.entries()) {
      if (i % 2 === 0) c.socket.end()
      else c.socket.destroy()
    }
    await Promise.all(clients.map(async (c) => { await c.waitClosed().catch(() => {}) }))
  }
  await eventually(() => conc.activeConnections() === 0 && conc.sessions.size === 0, 5000)
  await eventually(() => echo.sockets.size === 0, 5000)
  await eventually(() => openFds() <= baseline + 2, 5000)
  assert.equal(await metricValue(conc, 'hybrid_connections_active', { mode: 'socks5' }), 0)
  assert.equal(await metricValue(conc, 'hybrid_socks5_replies_total', { rep: '0' }), 501)
  const status = JSON.parse((await conc.mgmt.inject({ method: 'GET', url: '/api/v1/status', headers: { host: 'localhost' } })).body)
  assert.equal(status.connections.sources, 0, 'caps released')
})

test('real MPTCP listener and MPTCP client: relayed, counted as MPTCP; a plain-TCP client counts as fallback', async (t) => {
  const echo = await echoServer(t)
  const { conc, port } = await startConcentrator(t, makeConfig({ listeners: [{ host: '127.0.0.1', port: 0, mode: 'socks5', protocol: 'mptcp' }] }))
  assert.equal(conc.listeners()[0]?.protocol, 'mptcp')
  const socket = dial({ host: '127.0.0.1', port: port(), protocol: 'mptcp', allowHalfOpen: true })
  const c = new RawClient(socket)
  await once(socket, 'connect')
  assert.equal(socketProtocol(socket), 'mptcp')
  c.write(Buffer.concat([GREETING_NOAUTH, connectRequest(ECHO_HOST, echo.port), Buffer.from('mp')]))
  await c.read(12)
  assert.equal((await c.read(2)).toString(), 'mp')
  assert.equal(isMptcpFallback(socket), false)
  assert.equal(await metricValue(conc, 'hybrid_mptcp_connections_active'), 1)
  const plain = await RawClient.connect(port())
  plain.write(GREETING_NOAUTH)
  await plain.read(2)
  assert.equal(await metricValue(conc, 'hybrid_mptcp_fallbacks_total', { reason: 'other' }), 1)
  c.socket.destroy()
  plain.socket.destroy()
  await eventually(async () => await metricValue(conc, 'hybrid_mptcp_connections_active') === 0)
})
