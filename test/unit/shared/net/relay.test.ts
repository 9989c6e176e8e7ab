import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import net from 'node:net'
import { execFileSync } from 'node:child_process'
import { relay as relayWith, type Relay, type RelayOptions } from '../../../../shared/src/net/relay.ts'
import { createDataPlane } from '../../../../shared/src/net/data-plane.ts'
import { pendingSocketError, resetOnClose } from '../../../../shared/src/net/sockopt.ts'
import { dial } from '../../../../shared/src/net/dial.ts'
import { listen } from '../../../../shared/src/net/listen.ts'
import { socketPair } from '../../../helpers/socket-pair.ts'

/**
 * The data plane under test: the stream relay here; relay-splice.test.ts runs this whole file again
 * with the splice data plane (same assertions: the two must not differ in behaviour).
 */
const dataPlane = createDataPlane((globalThis as { relayTestDataPlane?: 'splice' }).relayTestDataPlane ?? 'stream')
before(async () => { await dataPlane.start() })
after(async () => { await dataPlane.stop() })
const relay = (c: net.Socket, s: net.Socket, opts: RelayOptions): Relay => relayWith(c, s, { ...opts, dataPlane })

async function waitFor (cond: () => boolean, ms = 2000): Promise<void> {
  const until = Date.now() + ms
  while (!cond() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 5))
}

/** Collect until 'end' without destroying the socket (a for-await loop destroys it on 'end'). */
async function collect (s: net.Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    s.on('data', (c: Buffer) => chunks.push(c))
    s.once('end', () => { resolve(Buffer.concat(chunks)) })
  })
}

/**
 * How a socket's stream ended, at the first of 'end' (a FIN), 'error' or 'close'. An 'end' with a
 * pending SO_ERROR is the reset it is (Node reports a reset that arrives with the last bytes as
 * an end of stream; a C client's read() would return the error).
 */
async function ending (s: net.Socket): Promise<{ end: boolean, code: string | undefined }> {
  return new Promise((resolve) => {
    s.on('data', () => {})
    s.once('end', () => {
      const pending = pendingSocketError(s)
      resolve(pending === undefined ? { end: true, code: undefined } : { end: false, code: pending })
    })
    s.once('error', (e: Error & { code?: string }) => { resolve({ end: false, code: e.code }) })
    s.once('close', () => { resolve({ end: false, code: undefined }) })
  })
}

async function readAll (s: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of s) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

/** client app ⇄ [a | relay | b] ⇄ server app */
async function setup (t: { after: (fn: () => void) => void }): Promise<{
  clientApp: net.Socket,
  serverApp: net.Socket,
  a: net.Socket,
  b: net.Socket
}> {
  const [a, clientApp, close1] = await socketPair()
  const [b, serverApp, close2] = await socketPair()
  t.after(() => { for (const s of [a, b, clientApp, serverApp]) s.destroy(); close1(); close2() })
  // An aborted relay resets the applications' connections: tests that do not look at it ignore it.
  for (const s of [clientApp, serverApp]) s.on('error', () => {})
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
  const r = relay(a, b,
    { idleTimeoutMs: 0, halfCloseTimeoutMs: 5000, onHalfClose: () => events.push('start'), onHalfCloseEnd: () => events.push('end') })
  clientApp.resume()
  clientApp.end()
  await once(serverApp, 'end')
  // The splice engine reports the FIN from its worker thread: the hook may run just after the FIN arrived.
  if (dataPlane.kind() === 'splice') await waitFor(() => events.length > 0)
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

test('an error on one leg resets the other (the client app sees ECONNRESET, not end)', async (t) => {
  const { serverApp, clientApp, a, b } = await setup(t)
  const r = relay(a, b, { idleTimeoutMs: 5000, halfCloseTimeoutMs: 5000 })
  const seen = ending(clientApp)
  serverApp.resetAndDestroy()
  const res = await r.done
  assert.equal(res.reason, 'error')
  assert.ok(res.error instanceof Error)
  assert.deepEqual(await seen, { end: false, code: 'ECONNRESET' })
})

test('a reset that arrives with the last queued bytes (read by Node as an end of stream) is passed on as a reset, not a FIN', async (t) => {
  // Node/libuv: bytes and RST queued on a socket whose handle is not reading (paused before its
  // connect, as a dialled upstream, or by backpressure); once reading starts the short read has
  // POLLHUP set and libuv reports EOF without reading the error. Before the relay checked SO_ERROR
  // at 'end', the client app got the bytes and a clean end (a truncated download that looks
  // complete); the concentrator's drain cut-off reached LAN clients that way.
  const [a, clientApp, closeA] = await socketPair()
  const upstream = net.createServer((s) => {
    s.on('error', () => {})
    s.write(Buffer.alloc(10_000, 7), () => { setTimeout(() => { s.resetAndDestroy() }, 100) })
  })
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  const b = net.connect({ port: (upstream.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true })
  b.pause() // before the connect completes: the handle does not start reading
  t.after(() => { for (const s of [a, b, clientApp]) s.destroy(); closeA(); upstream.close() })
  clientApp.on('error', () => {})
  await once(b, 'connect')
  await new Promise((resolve) => setTimeout(resolve, 400)) // the bytes, then the RST, wait in b's kernel queue
  const seen = ending(clientApp)
  const r = relay(a, b, { idleTimeoutMs: 5000, halfCloseTimeoutMs: 5000 })
  const res = await r.done
  assert.equal(res.reason, 'error')
  assert.equal((res.error as { code?: string } | undefined)?.code, 'ECONNRESET')
  assert.deepEqual(await seen, { end: false, code: 'ECONNRESET' })
})

for (const resetter of ['server', 'client'] as const) {
  const what = resetter === 'server' ? 'an upstream reset mid-download: the client app gets the partial data and then ECONNRESET' : 'a client reset mid-upload: the server app gets the partial data and then ECONNRESET'
  test(`${what}, never a clean end`, async (t) => {
    const { serverApp, clientApp, a, b } = await setup(t)
    const [sender, receiver] = resetter === 'server' ? [serverApp, clientApp] : [clientApp, serverApp]
    const r = relay(a, b, { idleTimeoutMs: 5000, halfCloseTimeoutMs: 5000 })
    const seen = ending(receiver)
    const gotAll = new Promise<void>((resolve) => {
      let got = 0
      receiver.on('data', (c: Buffer) => { got += c.length; if (got >= 1 << 20) resolve() })
    })
    sender.write(Buffer.alloc(1 << 20, 5))
    await gotAll
    sender.resetAndDestroy()
    assert.deepEqual(await seen, { end: false, code: 'ECONNRESET' })
    assert.equal((await r.done).reason, 'error')
  })
}

test('a normal end stays a FIN on both sides (end, no error)', async (t) => {
  const { serverApp, clientApp, a, b } = await setup(t)
  const r = relay(a, b, { idleTimeoutMs: 5000, halfCloseTimeoutMs: 5000 })
  const up = ending(serverApp)
  const down = ending(clientApp)
  clientApp.end('q')
  await once(serverApp, 'end')
  serverApp.end('a')
  assert.deepEqual(await up, { end: true, code: undefined })
  assert.deepEqual(await down, { end: true, code: undefined })
  assert.equal((await r.done).reason, 'normal')
})

for (const why of ['drain', 'idle_timeout', 'max_duration'] as const) {
  test(`a relay cut off by ${why} resets both legs`, async (t) => {
    const { serverApp, clientApp, a, b } = await setup(t)
    const opts = why === 'idle_timeout'
      ? { idleTimeoutMs: 100, halfCloseTimeoutMs: 0 }
      : why === 'max_duration'
        ? {
            idleTimeoutMs: 0,
            halfCloseTimeoutMs: 0,
            maxDurationMs: 100
          }
        : { idleTimeoutMs: 0, halfCloseTimeoutMs: 0 }
    const r = relay(a, b, opts)
    const up = ending(serverApp)
    const down = ending(clientApp)
    clientApp.write('x')
    serverApp.write('y')
    if (why === 'drain') { await once(serverApp, 'data'); r.abort('drain') }
    assert.equal((await r.done).reason, why)
    assert.deepEqual(await up, { end: false, code: 'ECONNRESET' })
    assert.deepEqual(await down, { end: false, code: 'ECONNRESET' })
  })
}

test('half-close timeout resets the direction still open (the client app sees no FIN for the cut-off download)', async (t) => {
  const { serverApp, clientApp, a, b } = await setup(t)
  const r = relay(a, b, { idleTimeoutMs: 0, halfCloseTimeoutMs: 100 })
  const down = ending(clientApp)
  clientApp.end()
  serverApp.write('part of the answer')
  assert.equal((await r.done).reason, 'half_close_timeout')
  assert.deepEqual(await down, { end: false, code: 'ECONNRESET' })
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

test('a FIN consumed before the relay started (readableEnded) is passed on after the early data', async (t) => {
  const { clientApp, serverApp, a, b } = await setup(t)
  const early: Buffer[] = []
  a.on('data', (c: Buffer) => { early.push(c) }) // a handshake reading the client to end of stream
  clientApp.end('request')
  await once(a, 'end')
  a.removeAllListeners('data')
  assert.equal(a.readableEnded, true)
  const up = collect(serverApp)
  const r = relay(a, b, { idleTimeoutMs: 60_000, halfCloseTimeoutMs: 60_000, earlyData: Buffer.concat(early) })
  assert.equal((await up).toString(), 'request', 'early data, then the FIN')
  const down = readAll(clientApp)
  serverApp.end('answer')
  assert.equal((await down).toString(), 'answer')
  assert.equal((await r.done).reason, 'normal')
})

/** client app ⇄ [a (TCP) | relay | b (MPTCP)] ⇄ server app, like the CPE's LAN and concentrator legs. */
async function setupMptcp (t: { after: (fn: () => void) => void }): Promise<{
  clientApp: net.Socket,
  serverApp: net.Socket,
  a: net.Socket,
  b: net.Socket,
  port: number
}> {
  const [a, clientApp, close1] = await socketPair()
  let accepted: ((s: net.Socket) => void) | undefined
  const serverAppP = new Promise<net.Socket>((resolve) => { accepted = resolve })
  const srv = await listen({ host: '127.0.0.1', port: 0, protocol: 'mptcp', allowHalfOpen: true }, (s) => { accepted?.(s) })
  const { port } = srv.address() as net.AddressInfo
  const b = dial({ host: '127.0.0.1', port, protocol: 'mptcp', allowHalfOpen: true })
  await once(b, 'connect')
  const serverApp = await serverAppP
  t.after(() => { for (const s of [a, b, clientApp, serverApp]) s.destroy(); close1(); srv.close() })
  for (const s of [clientApp, serverApp]) s.on('error', () => {})
  return { clientApp, serverApp, a, b, port }
}

/** Sockets on `port` (either end) in a FIN-WAIT state, as `ss` lists them. */
function finWait (port: number): string {
  return execFileSync('ss', ['-tanH', 'state', 'fin-wait-1', 'state', 'fin-wait-2', `( sport = :${port} or dport = :${port} )`],
    { encoding: 'utf8' }).trim()
}

for (const how of ['reset', 'close with unread data'] as const) {
  test(`a LAN client aborting a large download (${how}) resets the MPTCP leg at once: the far end sees ECONNRESET and no socket lingers in FIN-WAIT`, async (t) => {
    const { clientApp, serverApp, a, b, port } = await setupMptcp(t)
    const r = relay(a, b, { idleTimeoutMs: 0, halfCloseTimeoutMs: 45_000 })
    const far = ending(serverApp)
    // The far end streams up to 32 MiB. 'reset': paced (64 KiB per 2 ms) so the MPTCP leg has read
    // everything when the client aborts (a FIN-closed leg would then send FIN, not RST); 'close':
    // as fast as the relay takes it, so data queues toward the stopped reader.
    const chunk = Buffer.alloc(how === 'reset' ? 64 << 10 : 256 << 10, 9)
    let sent = 0
    const pumpOut = (): void => { while (sent < 32 << 20 && serverApp.writable && serverApp.write(chunk)) sent += chunk.length }
    let pacer: NodeJS.Timeout | undefined
    if (how === 'reset') {
      pacer = setInterval(() => { if (sent < 32 << 20 && serverApp.writable) { serverApp.write(chunk); sent += chunk.length } }, 2)
      t.after(() => { clearInterval(pacer) })
    } else {
      serverApp.on('drain', () => { sent += chunk.length; pumpOut() })
      pumpOut()
    }
    let got = 0
    await new Promise<void>((resolve) => {
      clientApp.on('data', (c: Buffer) => { got += c.length; if (got >= 4 << 20) resolve() })
    })
    const t0 = Date.now()
    if (how === 'reset') {
      clientApp.resetAndDestroy() // an aborted download (browser stop, curl ^C with SO_LINGER 0)
    } else {
      clientApp.pause()
      await new Promise((resolve) => setTimeout(resolve, 100)) // data queues toward the stopped reader
      clientApp.destroy() // close with unread data: the kernel resets the LAN leg
    }
    const res = await r.done
    assert.equal(res.reason, 'error')
    const farSaw = await far
    clearInterval(pacer)
    assert.deepEqual(farSaw, { end: false, code: 'ECONNRESET' },
      'the far end is reset, not sent a FIN (which would keep it sending into a half-closed relay)')
    assert.ok(Date.now() - t0 < 2000, `the far end saw the reset ${Date.now() - t0} ms after the abort`)
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.equal(finWait(port), '', 'no leg of the aborted relay is left in FIN-WAIT')
  })
}

test('relayed legs carry SO_LINGER {1, 0} (a process death resets them); a leg whose FIN is passed on goes back to a normal close', async (t) => {
  const { clientApp, serverApp, a, b } = await setup(t)
  const r = relay(a, b, { idleTimeoutMs: 5000, halfCloseTimeoutMs: 5000 })
  assert.deepEqual([resetOnClose(a), resetOnClose(b)], [true, true])
  const got = collect(clientApp)
  serverApp.end('last bytes')
  assert.equal((await got).toString(), 'last bytes')
  assert.deepEqual([resetOnClose(a), resetOnClose(b)], [false, true], 'the download leg closes with FIN, the upload leg still resets')
  clientApp.end()
  assert.equal((await r.done).reason, 'normal')
})
