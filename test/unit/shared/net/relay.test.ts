import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import net from 'node:net'
import { relay } from '../../../../shared/src/net/relay.ts'

/** A connected pair of loopback TCP sockets: [client-facing end held by the relay, peer]. */
async function socketPair (): Promise<[net.Socket, net.Socket, () => void]> {
  const server = net.createServer({ allowHalfOpen: true })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as net.AddressInfo
  const accepted = once(server, 'connection') as Promise<[net.Socket]>
  const peer = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  await once(peer, 'connect')
  const [mine] = await accepted
  return [mine, peer, () => { server.close() }]
}

/** Collect until 'end' without destroying the socket (a for-await loop destroys it on 'end'). */
async function collect (s: net.Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    s.on('data', (c: Buffer) => chunks.push(c))
    s.once('end', () => { resolve(Buffer.concat(chunks)) })
  })
}

async function readAll (s: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of s) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

/** client app ⇄ [a | relay | b] ⇄ server app */
async function setup (t: { after: (fn: () => void) => void }): Promise<{ clientApp: net.Socket, serverApp: net.Socket, a: net.Socket, b: net.Socket }> {
  const [a, clientApp, close1] = await socketPair()
  const [b, serverApp, close2] = await socketPair()
  t.after(() => { for (const s of [a, b, clientApp, serverApp]) s.destroy(); close1(); close2() })
  return { clientApp, serverApp, a, b }
}

test('relays both ways, early data first, and reports bytes', async (t) => {
  const { clientApp, serverApp, a, b } = await setup(t)
  const r = relay(a, b, { idleTimeoutMs: 5000, halfCloseTimeoutMs: 5000, earlyData: Buffer.from('early:') })
  const up = readAll(serverApp)
  const down = readAll(clientApp)
  clientApp.end('hello')
  serverApp.end('world!')
  assert.equal((await up).toString(), 'early:hello')
  assert.equal((await down).toString(), 'world!')
  const res = await r.done
  assert.equal(res.reason, 'normal')
  assert.equal(res.bytesUp, 11)
  assert.equal(res.bytesDown, 6)
  assert.equal(a.destroyed && b.destroyed, true)
})

test('half-close: the server keeps sending after the client FIN', async (t) => {
  const { clientApp, serverApp, a, b } = await setup(t)
  const r = relay(a, b, { idleTimeoutMs: 5000, halfCloseTimeoutMs: 5000 })
  const down = readAll(clientApp)
  clientApp.end()
  await once(serverApp, 'end') // FIN propagated to the server
  assert.equal(r.halfClosed(), true)
  const big = Buffer.alloc(1 << 20, 7)
  serverApp.end(big)
  assert.equal((await down).length, big.length)
  assert.equal((await r.done).reason, 'normal')
})

test('half-close hooks fire once each and bracket the half-closed period', async (t) => {
  const { clientApp, serverApp, a, b } = await setup(t)
  const events: string[] = []
  const r = relay(a, b, { idleTimeoutMs: 0, halfCloseTimeoutMs: 5000, onHalfClose: () => events.push('start'), onHalfCloseEnd: () => events.push('end') })
  clientApp.resume()
  clientApp.end()
  await once(serverApp, 'end')
  assert.deepEqual(events, ['start'])
  serverApp.end()
  await r.done
  assert.deepEqual(events, ['start', 'end'])
})

test('backpressure: a slow reader pauses the relay and the pause is reported', async (t) => {
  const { clientApp, serverApp, a, b } = await setup(t)
  const sides: string[] = []
  const r = relay(a, b, { idleTimeoutMs: 0, halfCloseTimeoutMs: 5000, onBackpressure: (side) => sides.push(side) })
  const big = Buffer.alloc(8 << 20, 1)
  serverApp.end(big) // the client app does not read yet: the client leg's buffer fills
  await new Promise((resolve) => setTimeout(resolve, 200))
  assert.ok(r.buffered().client > 0, 'bytes wait in user space for the slow client leg')
  const down = readAll(clientApp)
  clientApp.end()
  assert.equal((await down).length, big.length)
  await r.done
  assert.ok(sides.includes('client'))
})

test('half-close timeout tears both legs down', async (t) => {
  const { clientApp, a, b } = await setup(t)
  const r = relay(a, b, { idleTimeoutMs: 0, halfCloseTimeoutMs: 100 })
  clientApp.end()
  const res = await r.done
  assert.equal(res.reason, 'half_close_timeout')
  assert.ok(res.durationMs >= 90)
})

test('idle timeout closes a silent connection', async (t) => {
  const { a, b } = await setup(t)
  const res = await relay(a, b, { idleTimeoutMs: 100, halfCloseTimeoutMs: 0 }).done
  assert.equal(res.reason, 'idle_timeout')
})

test('an error on one leg destroys the other', async (t) => {
  const { serverApp, clientApp, a, b } = await setup(t)
  const r = relay(a, b, { idleTimeoutMs: 5000, halfCloseTimeoutMs: 5000 })
  serverApp.resetAndDestroy()
  const res = await r.done
  assert.equal(res.reason, 'error')
  assert.ok(res.error instanceof Error)
  await once(clientApp.resume(), 'end') // the client side sees its leg closed too
})

test('abort records its reason (drain) and is idempotent', async (t) => {
  const { a, b } = await setup(t)
  const r = relay(a, b, { idleTimeoutMs: 5000, halfCloseTimeoutMs: 5000, maxDurationMs: 60_000 })
  r.abort('drain')
  r.abort('error')
  assert.equal((await r.done).reason, 'drain')
})

test('max duration caps the lifetime', async (t) => {
  const { a, b } = await setup(t)
  assert.equal((await relay(a, b, { idleTimeoutMs: 0, halfCloseTimeoutMs: 0, maxDurationMs: 50 }).done).reason, 'max_duration')
})

test('a leg that closes cleanly first does not cut the other direction short', async (t) => {
  const { clientApp, serverApp, a, b } = await setup(t)
  const r = relay(a, b, { idleTimeoutMs: 0, halfCloseTimeoutMs: 5000 })
  // Server finishes first (its FIN reaches the client), then the client finishes: the client leg
  // may close before the server leg has flushed the client's last bytes and FIN.
  const up = collect(serverApp)
  const down = collect(clientApp)
  serverApp.end('bye')
  assert.equal((await down).toString(), 'bye')
  const last = Buffer.alloc(4 << 20, 3)
  clientApp.end(last)
  assert.equal((await up).length, last.length)
  const res = await r.done
  assert.equal(res.reason, 'normal')
  assert.equal(res.bytesUp, last.length)
})

test('pauses from a signalling layer are undone when relaying starts', async (t) => {
  const { clientApp, serverApp, a, b } = await setup(t)
  a.pause()
  b.pause()
  const r = relay(a, b, { idleTimeoutMs: 0, halfCloseTimeoutMs: 5000 })
  const up = readAll(serverApp)
  const down = readAll(clientApp)
  clientApp.end('x')
  serverApp.end('y')
  assert.equal((await up).toString(), 'x')
  assert.equal((await down).toString(), 'y')
  assert.equal((await r.done).reason, 'normal')
})

test('a FIN read before relaying started (the CPE collecting the first bytes) still reaches the server', async (t) => {
  // The churn soak found this: a LAN client that sent a small request and shut down its sending
  // side within the coalescing window had its FIN consumed by the first-bytes collector; the relay
  // waited for an 'end' that had already fired, so neither the server nor the client ever got a FIN
  // and both daemons held the connection until the idle timeout (1 h).
  const { clientApp, serverApp, a, b } = await setup(t)
  const first: Buffer[] = []
  a.on('data', (c: Buffer) => first.push(c))
  clientApp.end('request')
  await once(a, 'end')
  a.removeAllListeners('data')
  a.pause()
  const r = relay(a, b, { idleTimeoutMs: 0, halfCloseTimeoutMs: 5000, earlyData: Buffer.concat(first) })
  const up = collect(serverApp)
  const down = readAll(clientApp)
  const got = await Promise.race([up, new Promise<string>((resolve) => setTimeout(() => { resolve('no FIN at the server') }, 2000))])
  assert.equal(got.toString(), 'request')
  serverApp.end('reply')
  assert.equal((await down).toString(), 'reply')
  assert.equal((await r.done).reason, 'normal')
})
