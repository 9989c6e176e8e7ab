/**
 * The splice data plane's own properties (its relay semantics are relay.test.ts, run again by
 * relay-splice.test.ts): byte-exact megabytes both ways at once, counters equal to the bytes, no
 * pipe held by an idle connection (fd count back to the pair), the probe, and `auto` vs `splice`.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { readdirSync } from 'node:fs'
import type net from 'node:net'
import type { Logger } from 'pino'
import { createDataPlane, defaultMaxPipes, engineFds, streamDataPlane } from '../../../../shared/src/net/data-plane.ts'
import { socketFd } from '../../../../shared/src/net/sockopt.ts'
import { setsockoptInt } from '../../../../shared/src/net/syscall.ts'
import { relay } from '../../../../shared/src/net/relay.ts'
import { socketPair as pair } from '../../../helpers/socket-pair.ts'

// Pooled pipes beyond the engine's 4 are closed after 300 ms without a pipe taken (default 5 s).
const dataPlane = createDataPlane('splice', { poolIdleMs: 300 })
before(async () => { await dataPlane.start() })
after(async () => { await dataPlane.stop() })

async function setup (t: { after: (fn: () => void) => void }) {
  const [a, clientApp, c1] = await pair()
  const [serverApp, b, c2] = await pair()
  t.after(() => { for (const s of [a, b, clientApp, serverApp]) s.destroy(); c1(); c2() })
  return { a, b, clientApp, serverApp }
}

const digest = async (s: net.Socket): Promise<{ n: number, sha: string }> => {
  const h = createHash('sha256')
  let n = 0
  s.on('data', (c: Buffer) => { h.update(c); n += c.length })
  await once(s, 'end')
  return { n, sha: h.digest('hex') }
}
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
const openFds = (): number => readdirSync('/proc/self/fd').length

test('the splice data plane is in use (the probe passed on this kernel)', () => {
  assert.equal(dataPlane.kind(), 'splice')
})

test('the engine\'s worker starts with the first spliced relay, not at start (the probe\'s own worker is gone)', async (t) => {
  const p = createDataPlane('splice')
  await p.start()
  t.after(async () => { await p.stop() })
  assert.equal(p.kind(), 'splice')
  assert.equal(p.engineRunning(), false)
  const { a, b, clientApp, serverApp } = await setup(t)
  const r = relay(a, b, { idleTimeoutMs: 10_000, halfCloseTimeoutMs: 10_000, dataPlane: p })
  assert.equal(p.engineRunning(), true)
  const down = digest(clientApp)
  const up = digest(serverApp)
  // Bytes sent while the worker is still starting wait in the kernel: nothing is lost.
  clientApp.end('first bytes up')
  serverApp.end('first bytes down')
  assert.equal((await r.done).reason, 'normal')
  assert.equal((await up).sha, sha(Buffer.from('first bytes up')))
  assert.equal((await down).sha, sha(Buffer.from('first bytes down')))
  await p.stop()
  assert.equal(p.engineRunning(), false)
})

test('8 MiB each way at once, byte-exact, counters equal to the bytes, both FINs passed on', async (t) => {
  const { a, b, clientApp, serverApp } = await setup(t)
  const upData = randomBytes(8 << 20)
  const downData = randomBytes(8 << 20)
  const r = relay(a, b, { idleTimeoutMs: 10_000, halfCloseTimeoutMs: 10_000, dataPlane, earlyData: Buffer.from('early') })
  const up = digest(serverApp)
  const down = digest(clientApp)
  clientApp.end(upData)
  serverApp.end(downData)
  const res = await r.done
  assert.equal(res.reason, 'normal')
  const [u, d] = await Promise.all([up, down])
  assert.equal(u.n, upData.length + 5)
  assert.equal(u.sha, sha(Buffer.concat([Buffer.from('early'), upData])))
  assert.deepEqual(d, { n: downData.length, sha: sha(downData) })
  assert.equal(res.bytesUp, upData.length + 5)
  assert.equal(res.bytesDown, downData.length)
})

test('bytes Node had already buffered on both legs at the handover are relayed first, in order', async (t) => {
  const { a, b, clientApp, serverApp } = await setup(t)
  clientApp.write('buffered-up;')
  serverApp.write('buffered-down;')
  // Let Node read them into the legs' stream buffers (paused: no 'data' listener) before the relay starts.
  a.pause(); b.pause()
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.ok(a.readableLength > 0 && b.readableLength > 0)
  const r = relay(a, b, { idleTimeoutMs: 10_000, halfCloseTimeoutMs: 10_000, dataPlane })
  const up = digest(serverApp)
  const down = digest(clientApp)
  clientApp.end('after-up')
  serverApp.end('after-down')
  assert.equal((await r.done).reason, 'normal')
  assert.equal((await up).sha, sha(Buffer.from('buffered-up;after-up')))
  assert.equal((await down).sha, sha(Buffer.from('buffered-down;after-down')))
})

test('an idle relayed connection holds no pipe: fds back to the socket pair after a burst', async (t) => {
  const { a, b, clientApp, serverApp } = await setup(t)
  const r = relay(a, b, { idleTimeoutMs: 10_000, halfCloseTimeoutMs: 10_000, dataPlane })
  const base = openFds()
  serverApp.on('data', () => {})
  let got = 0
  const burst = randomBytes(1 << 20)
  const all = new Promise<void>((resolve) => { serverApp.on('data', (c: Buffer) => { got += c.length; if (got >= burst.length) resolve() }) })
  clientApp.write(burst)
  await all
  await new Promise((resolve) => setTimeout(resolve, 50))
  // Pipes go back to the engine's pool (at most a few, shared by all connections), none stays with the connection.
  assert.ok(openFds() - base <= 2, `fds grew by ${openFds() - base}`)
  assert.deepEqual(r.buffered(), { client: 0, server: 0 })
  assert.equal(r.progress().up, burst.length)
  r.abort('drain')
  assert.equal((await r.done).reason, 'drain')
})

test('a burst on many connections at once: the pool grows, then is trimmed back to 4 pipes once idle', async (t) => {
  const relays = []
  const readers: net.Socket[] = []
  const sinks: Array<Promise<void>> = []
  const burst = randomBytes(1 << 20)
  for (let i = 0; i < 12; i++) {
    const { a, b, clientApp, serverApp } = await setup(t)
    // The drain at the end resets both apps' connections.
    for (const s of [clientApp, serverApp]) s.on('error', () => {})
    // Small socket buffers towards a reader that has not started: each direction's pipe stays busy (its bytes cannot leave).
    setsockoptInt(socketFd(b), 1, 7 /* SO_SNDBUF */, 4096, 'SO_SNDBUF')
    setsockoptInt(socketFd(serverApp), 1, 8 /* SO_RCVBUF */, 4096, 'SO_RCVBUF')
    relays.push(relay(a, b, { idleTimeoutMs: 10_000, halfCloseTimeoutMs: 10_000, dataPlane }))
    let got = 0
    serverApp.pause()
    readers.push(serverApp)
    sinks.push(new Promise<void>((resolve) => { serverApp.on('data', (c: Buffer) => { got += c.length; if (got >= burst.length) resolve() }) }))
    clientApp.write(burst)
  }
  await new Promise((resolve) => setTimeout(resolve, 100))
  const peak = dataPlane.pipesOpen()
  assert.ok(peak > 4, `${peak} pipes open during the burst`)
  assert.ok(relays.some((r) => r.buffered().server > 0), 'bytes wait in the pipes')
  for (const s of readers) s.resume()
  await Promise.all(sinks)
  // Back in the pool at once; closed down to 4 after 300 ms without a pipe taken.
  await new Promise((resolve) => setTimeout(resolve, 1200))
  assert.ok(dataPlane.pipesOpen() <= 4, `${dataPlane.pipesOpen()} pipes still open`)
  for (const r of relays) r.abort('drain')
  await Promise.all(relays.map(async (r) => r.done))
})

test('the started engine reserves its pipe budget in the fd budget; a maxConnections that does not fit is warned about', async () => {
  const warnings: string[] = []
  const log = { warn: (_o: unknown, msg: string) => { warnings.push(msg) }, info: () => {} } as unknown as Logger
  const p = createDataPlane('splice', { log, maxPipes: 64, maxConnections: 1000, openFilesLimit: () => 2000 })
  await p.start()
  try {
    assert.equal(p.kind(), 'splice')
    assert.equal(p.reservedFds(), engineFds(64), 'the started splice plane reserves its pipes, epoll and eventfd')
    assert.match(warnings.join('\n'), /fd budget: limits\.maxConnections 1000 × 2 sockets \+ \d+ reserved \(splice pipes\) \+ 64 = \d+ fds, but RLIMIT_NOFILE is 2000/)
  } finally {
    await p.stop()
  }
  assert.equal(p.reservedFds(), 0, 'a stopped data plane reserves nothing')
  assert.equal(streamDataPlane.reservedFds(), 0)
  const quiet: string[] = []
  const fits = createDataPlane('stream', { log: { warn: (_o: unknown, msg: string) => { quiet.push(msg) } } as unknown as Logger, maxConnections: 0 })
  await fits.start()
  assert.deepEqual(quiet, [], 'the derived cap always fits')
  const tooMany = createDataPlane('stream', { log, maxConnections: 10_000, openFilesLimit: () => 2000 })
  warnings.length = 0
  await tooMany.start()
  assert.match(warnings[0] ?? '', /limits\.maxConnections 10000 × 2 sockets/)
})

test('a peer reset ends the relay as an error and resets the other leg', async (t) => {
  const { a, b, clientApp, serverApp } = await setup(t)
  const r = relay(a, b, { idleTimeoutMs: 10_000, halfCloseTimeoutMs: 10_000, dataPlane })
  clientApp.on('error', () => {})
  const clientSaw = new Promise<string | undefined>((resolve) => {
    clientApp.on('data', () => {})
    clientApp.once('error', (e: Error & { code?: string }) => { resolve(e.code) })
    clientApp.once('end', () => { resolve('end') })
  })
  serverApp.write('x')
  await new Promise((resolve) => setTimeout(resolve, 20))
  serverApp.resetAndDestroy()
  const res = await r.done
  assert.equal(res.reason, 'error')
  assert.equal(await clientSaw, 'ECONNRESET')
})

test('the fd budget: pipes default to 1/16 of RLIMIT_NOFILE, between 16 and 4096', () => {
  assert.equal(defaultMaxPipes(1024), 64)
  assert.equal(defaultMaxPipes(100), 16)
  assert.equal(defaultMaxPipes(1 << 20), 4096)
  assert.equal(defaultMaxPipes(Infinity), 4096)
})

test('a probe that fails: dataPlane splice refuses to start (HYBRID_ERR_PREREQUISITE), auto falls back to stream and logs why', async () => {
  // No pipe allowed (maxPipes 0): the probe's bytes cannot move, as on a kernel without splice between TCP sockets.
  const failing = { maxPipes: 0, probeTimeoutMs: 300 }
  await assert.rejects(createDataPlane('splice', failing).start(),
    (err: Error & { code?: string }) => err.code === 'HYBRID_ERR_PREREQUISITE' && /dataPlane: splice/.test(err.message))
  const warnings: string[] = []
  const log = { warn: (_o: unknown, msg: string) => { warnings.push(msg) }, info: () => {} } as unknown as Logger
  const auto = createDataPlane('auto', { ...failing, log })
  await auto.start()
  assert.equal(auto.kind(), 'stream')
  assert.match(warnings[0] ?? '', /relaying with the stream data plane/)
  await auto.stop()
})

test('stream mode never starts an engine', async () => {
  const p = createDataPlane('stream')
  await p.start()
  assert.equal(p.kind(), 'stream')
})
