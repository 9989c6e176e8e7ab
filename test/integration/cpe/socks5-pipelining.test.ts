/**
 * The CPE agent's SOCKS5 data path, in-process (test/helpers/cpe-harness.ts: fake interceptor,
 * loopback, no root): the pipelined handshake against the real in-process concentrator, and
 * `socks5.pipelining: auto` against a concentrator that does not accept pipelining (a scripted
 * naive server that handles one message per read and drops whatever came with it, or closes after
 * the greeting): the connection is retried stepwise and works, the concentrator is remembered as
 * stepwise (status, no second pipelined attempt) for `socks5.stepwiseMemoryMs`, then pipelining is
 * tried again (docs/cpe.md, "Pipelining `auto`").
 */
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import type net from 'node:net'
import { ECHO_HOST, echoServer, eventually, makeConfig, metricValue, startConcentrator } from '../../helpers/concentrator-harness.ts'
import { listenScripted, makeCpeConfig, pipeTo, startCpe, type CpeHarness, type Scripted } from '../../helpers/cpe-harness.ts'
import type { CpeConfig } from '../../../cpe/src/config/config.ts'

/**
 * The data plane of both daemons here: `stream`; socks5-pipelining-splice.test.ts runs this whole
 * file again with `dataPlane: splice` (the CPE starts its relay inside the reply's 'data' handler,
 * the case that lost bytes on splice: docs/data-plane.md, "Taking a socket away from libuv").
 */
const dataPlane = (globalThis as { cpeTestDataPlane?: 'splice' }).cpeTestDataPlane ?? 'stream'
const cpeConfig = (doc: Record<string, unknown>): CpeConfig => makeCpeConfig({ dataPlane, ...doc })
const concConfig = (doc: Record<string, unknown>): ReturnType<typeof makeConfig> => makeConfig({ dataPlane, ...doc })

/** A first write that is the greeting alone (`[5, n, methods…]`): a stepwise handshake. */
function greetingOnly (chunk: Buffer | undefined): boolean {
  return chunk !== undefined && chunk.length === 2 + (chunk[1] ?? 0)
}

function sysctl (path: string): number {
  try { return Number(readFileSync(`/proc/sys/${path}`, 'utf8').trim()) } catch { return 0 }
}

/** The agent's view of which concentrators it handles stepwise (GET /api/v1/status). */
function stepwise (h: CpeHarness): string[] {
  return (h.cpe.status() as { concentrator: { stepwise: string[] } }).concentrator.stepwise
}

async function roundTrip (h: CpeHarness, port: number, text: string): Promise<void> {
  const c = await h.lan(ECHO_HOST, port)
  c.write(Buffer.from(text))
  assert.equal(String(await c.read(text.length)), text)
  c.socket.end()
  await c.waitClosed()
}

type Naive = 'drop-rest' | 'fin-after-greeting'

/**
 * A SOCKS5 server that reads one message per 'data' event and drops the rest of the chunk (it does
 * not read ahead), or closes after answering the greeting of a pipelined handshake. Stepwise
 * handshakes work: CONNECT goes to the echo server.
 */
async function naiveSocks5 (t: TestContext, how: Naive, echoPort: number, auth: boolean): Promise<Scripted> {
  return listenScripted(t, (s) => {
    let state: 'greeting' | 'auth' | 'request' = 'greeting'
    const onData = (d: Buffer): void => {
      if (state === 'greeting') {
        s.write(Buffer.from([5, auth ? 2 : 0]))
        if (how === 'fin-after-greeting' && d.length > 2 + (d[1] ?? 0)) { s.end(); return }
        state = auth ? 'auth' : 'request'
      } else if (state === 'auth') {
        s.write(Buffer.from([1, 0]))
        state = 'request'
      } else {
        s.off('data', onData)
        s.write(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]))
        pipeTo(s, ECHO_HOST, echoPort)
      }
    }
    s.on('data', onData)
  })
}

test('real concentrator: the handshake is pipelined into one write, relayed, never remembered as stepwise', async (t) => {
  const echo = await echoServer(t)
  const { conc, port } = await startConcentrator(t, concConfig({ listeners: [{ host: '127.0.0.1', port: 0, mode: 'socks5', protocol: 'mptcp' }] }))
  const h = await startCpe(t, cpeConfig({ concentrator: { host: '127.0.0.1', port: port(), fastOpen: true } }))
  await roundTrip(h, echo.port, 'hello through the concentrator')
  await roundTrip(h, echo.port, 'and again')
  assert.equal(h.dials.length, 2, 'one dial per LAN connection, no retries')
  assert.deepEqual(stepwise(h), [])
  assert.equal(await metricValue(conc, 'hybrid_socks5_replies_total', { rep: '0' }), 2)
  // Counted when the relay ends: on splice that is the engine's 'end' message, which can reach the
  // main thread just after the LAN client saw the last FIN (docs/data-plane.md, "Open points").
  await eventually(async () => await h.metric('hybrid_connections_closed_total', { mode: 'socks5', reason: 'normal' }) === 2)
  // Real MPTCP and TCP_FASTOPEN_CONNECT on loopback. No TFO cookie can be had here without root: the
  // server side of TFO needs sysctl net.ipv4.tcp_fastopen bit 0x2 (default 1), so both connections
  // report the cookie absent and carry the handshake after the SYN.
  assert.ok(h.dials.every((d) => d.protocol === 'mptcp' && d.fastOpen === true && d.mark === 2))
  const cookieless = await h.metric('hybrid_tfo_outcomes_total', { path: 'dsl', result: 'cookie_unavailable' })
  const acked = await h.metric('hybrid_tfo_outcomes_total', { path: 'dsl', result: 'syn_data_acked' })
  if ((sysctl('net/ipv4/tcp_fastopen') & 0x2) === 0) assert.deepEqual([cookieless, acked], [2, 0])
  else assert.equal(cookieless + acked, 2)
  if (sysctl('net/mptcp/enabled') === 1) assert.equal(await h.metric('hybrid_mptcp_fallbacks_total'), 0)
  assert.ok(await h.metric('hybrid_path_bytes_total', { path: 'dsl', direction: 'down' }) > 0)
})

test('real concentrator: a refusal (REP 02) resets the LAN client and does not make the concentrator stepwise', async (t) => {
  const echo = await echoServer(t)
  const { port } = await startConcentrator(t, concConfig({
    listeners: [{ host: '127.0.0.1', port: 0, mode: 'socks5', protocol: 'tcp' }],
    policy: { allowPrefixes: ['127.0.0.0/8'], hostAddresses: { except: ['127.0.0.0/8'] }, deniedPorts: [echo.port] }
  }))
  const h = await startCpe(t, cpeConfig({ concentrator: { host: '127.0.0.1', port: port() } }))
  const c = await h.lan(ECHO_HOST, echo.port)
  c.write('GET / HTTP/1.0\r\n\r\n')
  await c.waitClosed()
  assert.equal(c.buffered.length, 0)
  await eventually(async () => await h.metric('hybrid_connections_rejected_total', { mode: 'socks5', reason: 'acl_denied' }) === 1)
  assert.equal(h.dials.length, 1)
  assert.deepEqual(stepwise(h), [])
})

test('pipelining never: stepwise from the first write, through the real concentrator', async (t) => {
  const echo = await echoServer(t)
  const { port } = await startConcentrator(t, concConfig({ listeners: [{ host: '127.0.0.1', port: 0, mode: 'socks5', protocol: 'tcp' }] }))
  const h = await startCpe(t, cpeConfig({ concentrator: { host: '127.0.0.1', port: port() }, socks5: { pipelining: 'never' } }))
  await roundTrip(h, echo.port, 'stepwise bytes')
  assert.equal(h.dials.length, 1)
})

test('with credentials, the probe finds a concentrator that answered only the greeting: conclusive, retried stepwise, remembered', async (t) => {
  const echo = await echoServer(t)
  const peer = await naiveSocks5(t, 'drop-rest', echo.port, true)
  const socks5 = { username: 'cpe', password: 'secret', probeMs: 50 }
  const h = await startCpe(t, cpeConfig({ concentrator: { host: '127.0.0.1', port: peer.port }, socks5 }))
  const started = performance.now()
  await roundTrip(h, echo.port, 'first connection')
  const ms = performance.now() - started
  assert.equal(peer.accepted.length, 2, 'the pipelined attempt, then the stepwise retry')
  assert.ok(!greetingOnly(peer.firstChunks[0]), 'the first attempt was pipelined')
  assert.ok(greetingOnly(peer.firstChunks[1]), 'the retry was stepwise')
  assert.ok(ms < 2000, `the probe (50 ms), not the reply deadline, decided: ${Math.round(ms)} ms`)
  assert.deepEqual(stepwise(h), [`127.0.0.1:${peer.port}`])
  // Remembered: the next connection goes stepwise at once (one accept, greeting only).
  await roundTrip(h, echo.port, 'second connection')
  assert.equal(peer.accepted.length, 3)
  assert.ok(greetingOnly(peer.firstChunks[2]))
  // Counted when the relay ends: on splice that is the engine's 'end' message, which can reach the
  // main thread just after the LAN client saw the last FIN (docs/data-plane.md, "Open points").
  await eventually(async () => await h.metric('hybrid_connections_closed_total', { mode: 'socks5', reason: 'normal' }) === 2)
})

for (const how of ['drop-rest', 'fin-after-greeting'] as const) {
  const what = how === 'drop-rest' ? 'drops the pipelined request (reply deadline)' : 'closes after the greeting'
  test(`without credentials, a concentrator that ${what}: a suspicion, confirmed by the stepwise retry, remembered`, async (t) => {
    const echo = await echoServer(t)
    const peer = await naiveSocks5(t, how, echo.port, false)
    // The deadline ends the pipelined attempt (drop-rest) and bounds the stepwise retry: room for a loaded machine.
    const h = await startCpe(t, cpeConfig({ concentrator: { host: '127.0.0.1', port: peer.port }, socks5: { replyTimeoutMs: 600 } }))
    await roundTrip(h, echo.port, `first (${how})`)
    assert.equal(peer.accepted.length, 2)
    assert.ok(!greetingOnly(peer.firstChunks[0]))
    assert.ok(greetingOnly(peer.firstChunks[1]))
    assert.deepEqual(stepwise(h), [`127.0.0.1:${peer.port}`])
    await roundTrip(h, echo.port, `second (${how})`)
    assert.equal(peer.accepted.length, 3)
    assert.ok(greetingOnly(peer.firstChunks[2]))
  })
}

test('the stepwise memory expires after socks5.stepwiseMemoryMs: pipelining is tried again (and found refused again)', async (t) => {
  const echo = await echoServer(t)
  const peer = await naiveSocks5(t, 'fin-after-greeting', echo.port, false)
  const h = await startCpe(t, cpeConfig({ concentrator: { host: '127.0.0.1', port: peer.port }, socks5: { stepwiseMemoryMs: 60_000 } }))
  await roundTrip(h, echo.port, 'learn')
  assert.equal(peer.accepted.length, 2)
  h.advance(59_000)
  await roundTrip(h, echo.port, 'still stepwise')
  assert.equal(peer.accepted.length, 3)
  assert.ok(greetingOnly(peer.firstChunks[2]))
  h.advance(2_000)
  assert.deepEqual(stepwise(h), [])
  await roundTrip(h, echo.port, 'pipelined again')
  assert.equal(peer.accepted.length, 5, 'a pipelined attempt, refused, then a stepwise retry')
  assert.ok(!greetingOnly(peer.firstChunks[3]))
  assert.deepEqual(stepwise(h), [`127.0.0.1:${peer.port}`])
})

test('a naive concentrator that also fails the stepwise retry: the LAN client is reset, nothing is remembered', async (t) => {
  // Greeting answered, the rest never: the pipelined attempt is suspect, the stepwise retry gets no
  // CONNECT reply either (it is the destination, not pipelining), so the suspicion is not confirmed.
  const peer = await listenScripted(t, (s: net.Socket) => { s.once('data', () => { s.write(Buffer.from([5, 0])) }) })
  const h = await startCpe(t, cpeConfig({ concentrator: { host: '127.0.0.1', port: peer.port }, socks5: { replyTimeoutMs: 200 } }))
  const c = await h.lan('192.0.2.10', 80)
  c.write('GET / HTTP/1.0\r\n\r\n')
  await c.waitClosed(5000)
  assert.equal(peer.accepted.length, 2)
  assert.deepEqual(stepwise(h), [])
  await eventually(async () => await h.metric('hybrid_upstream_connect_failures_total', { reason: 'timeout' }) === 1)
})
