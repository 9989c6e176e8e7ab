/**
 * The management listener's connection budget, on real loopback sockets: idle TCP connections
 * beyond the per-source and total caps are closed at once (and counted), health probes from
 * another source still answer, and idle connections are closed after management.limits.idleTimeoutMs.
 * Sources are distinct 127.0.0.0/8 addresses (Linux routes the whole block to lo); no namespace.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { connect, type Socket } from 'node:net'
import { listenMgmt } from '../../../../shared/src/mgmt/mgmt-server.ts'
import type { MgmtServerOptions } from '../../../../shared/src/mgmt/mgmt-server.ts'
import { buildTestMgmt } from '../../../helpers/mgmt-test-server.ts'

const TEST_TIMEOUT_MS = 20_000

async function started (t: TestContext, limits: NonNullable<MgmtServerOptions['limits']>): Promise<{ port: number, metrics: () => Promise<string> }> {
  const { app, metrics } = buildTestMgmt({ daemon: 'cpe', allowedHosts: ['127.0.0.1'], limits })
  t.after(() => app.close())
  const { port } = await listenMgmt(app, { host: '127.0.0.1', port: 0 })
  return { port, metrics }
}

interface Held { socket: Socket, closedAt: number | undefined }

/** `count` idle connections from `source`, resolved once all are connected; all destroyed after the test. */
async function openIdle (t: TestContext, port: number, source: string, count: number): Promise<Held[]> {
  const held = await Promise.all(Array.from({ length: count }, async () => new Promise<Held>((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: source })
    const h: Held = { socket, closedAt: undefined }
    socket.on('error', () => {}) // a refused socket may see ECONNRESET
    socket.on('close', () => { h.closedAt = Date.now() })
    socket.once('connect', () => { resolve(h) })
    socket.once('error', reject)
  })))
  t.after(() => { for (const h of held) h.socket.destroy() })
  return held
}

const sleep = async (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** GET `path` with a chosen source address (fetch cannot bind one). */
async function getFrom (port: number, source: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, localAddress: source, agent: false, timeout: 3000 }, (res) => {
      res.resume()
      res.on('end', () => { resolve(res.statusCode ?? 0) })
    })
    req.on('timeout', () => { req.destroy(new Error('timeout')) })
    req.on('error', reject)
    req.end()
  })
}

test('per-source cap: 40 idle connections from one host, 10 held, 30 closed at once; /livez answers another source', { timeout: TEST_TIMEOUT_MS },
  async (t) => {
    const { port, metrics } = await started(t, { maxConnections: 20, perSourceMaxConnections: 10, idleTimeoutMs: 60_000 })
    const started_ = Date.now()
    const held = await openIdle(t, port, '127.0.0.1', 40)
    await sleep(300)
    const closed = held.filter((h) => h.closedAt !== undefined)
    assert.equal(closed.length, 30, 'connections beyond perSourceMaxConnections are closed')
    assert.ok(closed.every((h) => (h.closedAt ?? Infinity) - started_ < 1000), 'closed at once, not after a timeout')
    assert.equal(await getFrom(port, '127.0.0.2', '/livez'), 200)
    assert.equal(await getFrom(port, '127.0.0.2', '/readyz'), 200)
    assert.match(await metrics(), /^hybrid_mgmt_connections_refused_total\{reason="per_source_limit"\} 30$/m)
  })

test('total cap: 4 hosts × 10 idle connections with a cap of 20, 20 closed at once and counted as max_conns', { timeout: TEST_TIMEOUT_MS },
  async (t) => {
    const { port, metrics } = await started(t, { maxConnections: 20, perSourceMaxConnections: 10, idleTimeoutMs: 60_000 })
    const held: Held[] = []
    for (const source of ['127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6']) held.push(...await openIdle(t, port, source, 10))
    await sleep(300)
    assert.equal(held.filter((h) => h.closedAt !== undefined).length, 20)
    assert.match(await metrics(), /^hybrid_mgmt_connections_refused_total\{reason="max_conns"\} 20$/m)
    // Closing held connections frees their slots.
    for (const h of held.slice(0, 10)) h.socket.destroy()
    await sleep(100)
    assert.equal(await getFrom(port, '127.0.0.7', '/livez'), 200)
  })

test('idle connections are closed after management.limits.idleTimeoutMs', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const { port } = await started(t, { idleTimeoutMs: 300, maxConnections: 20, perSourceMaxConnections: 10 })
  const opened = Date.now()
  const [idle] = await openIdle(t, port, '127.0.0.8', 1)
  assert.ok(idle !== undefined)
  const deadline = opened + 3000
  while (idle.closedAt === undefined && Date.now() < deadline) await sleep(50)
  assert.ok(idle.closedAt !== undefined, 'the idle connection is closed')
  const after = idle.closedAt - opened
  assert.ok(after >= 250 && after < 2000, `closed after ${after} ms (idle timeout 300 ms)`)
})

test('close() does not wait for held connections that never sent a request', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const { app } = buildTestMgmt({ daemon: 'cpe', allowedHosts: ['127.0.0.1'], limits: { idleTimeoutMs: 60_000, headersTimeoutMs: 10_000 } })
  const { port } = await listenMgmt(app, { host: '127.0.0.1', port: 0 })
  const held = await openIdle(t, port, '127.0.0.9', 5)
  const begin = Date.now()
  await app.close()
  assert.ok(Date.now() - begin < 1000, `closed in ${Date.now() - begin} ms`)
  await sleep(100)
  assert.equal(held.filter((h) => h.closedAt !== undefined).length, 5)
})
