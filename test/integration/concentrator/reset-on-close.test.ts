/**
 * SO_LINGER {1, 0} from accept (docs/design/limits.md, "A daemon that dies resets too"): an admitted
 * connection is closed with a reset also while it is still in its SOCKS5 / Convert handshake (what a
 * process death does to it; here the in-process concentrator's stop() closes it), while every
 * deliberate refusal with an answer still delivers that answer intact and then a FIN, not a reset:
 * SOCKS5 REP 02 / 05 / 07, Convert Error TLVs, the Info reply and the handshake deadline, also to a client that keeps its
 * side open past the concentrator's 1 s failure linger. In-process, plain TCP on loopback.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import net from 'node:net'
import { buildConvertConnect, buildConvertInfo } from '../../../shared/src/codec/convert.ts'
import { tcpInfo } from '../../../shared/src/net/sockopt.ts'
import { ECHO_HOST, RawClient, connectRequest, makeConfig, startConcentrator } from '../../helpers/concentrator-harness.ts'

const GREETING_NOAUTH = Buffer.from('050100', 'hex')
/** TCP_CLOSE_WAIT: the peer's FIN read, no reset after it. */
const TCP_CLOSE_WAIT = 8

/** How the peer ended the stream: 'fin' (end, no error before close) or the error code. */
async function ending (s: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let fin = false
    s.on('end', () => { fin = true })
    s.on('error', (e: NodeJS.ErrnoException) => { resolve(e.code ?? e.message) })
    s.on('close', () => { resolve(fin ? 'fin' : 'close') })
  })
}

/**
 * A client that keeps its side open (half-open) after the refusal's FIN for longer than the
 * concentrator's 1 s failure linger, then ends: the concentrator's own close at that deadline must
 * not turn into a reset (it would, had the refusal left SO_LINGER {1, 0} on).
 */
async function client (port: number): Promise<{ c: RawClient, end: Promise<string> }> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  let state = 0
  socket.on('end', () => {
    setTimeout(() => {
      // A half-open socket does not read after the FIN, so a later RST shows only in its TCP state.
      try { state = tcpInfo(socket).state } catch { state = -1 }
      socket.end()
    }, 1500)
  })
  const end = ending(socket).then((how) => (how === 'fin' && state !== TCP_CLOSE_WAIT ? `fin, then TCP state ${state} (not CLOSE_WAIT: reset)` : how))
  const c = new RawClient(socket)
  await once(socket, 'connect')
  return { c, end }
}

const socks5Config = (): ReturnType<typeof makeConfig> => makeConfig({})
const convertConfig = (): ReturnType<typeof makeConfig> => makeConfig({
  listeners: [{
    host: '127.0.0.1',
    port: 0,
    mode: 'convert',
    protocol: 'tcp'
  }]
})

test('SOCKS5 refusals: REP 02, 05 and 07 arrive intact, then a FIN (not a reset)', async (t) => {
  const { port } = await startConcentrator(t, socks5Config())
  const probe = net.createServer().listen(0, ECHO_HOST)
  await once(probe, 'listening')
  const closedPort = (probe.address() as net.AddressInfo).port
  probe.close()
  const cases: Array<[string, Buffer, number]> = [
    ['policy', connectRequest('10.0.0.1', 80), 2],
    ['refused', connectRequest(ECHO_HOST, closedPort), 5],
    ['bad command', Buffer.from('050200017f0000020050', 'hex'), 7]
  ]
  for (const [what, request, rep] of cases) {
    const { c, end } = await client(port())
    c.write(Buffer.concat([GREETING_NOAUTH, request]))
    assert.equal((await c.read(2)).toString('hex'), '0500', what)
    const reply = await c.read(10)
    assert.deepEqual([reply[0], reply[1]], [5, rep], what)
    assert.equal(await end, 'fin', `${what}: closed with FIN`)
  }
})

test('Convert refusals and Info: the TLVs arrive intact, then a FIN (not a reset)', async (t) => {
  const { port } = await startConcentrator(t, convertConfig())
  const denied = await client(port())
  denied.c.write(buildConvertConnect({ port: 80, destination: { family: 4, address: '10.0.0.1' } }))
  assert.equal((await denied.c.read(8)).toString('hex'), '010222631e012000', 'Error 32 (not authorized / policy)')
  assert.equal(await denied.end, 'fin')
  const info = await client(port())
  info.c.write(buildConvertInfo())
  const head = await info.c.read(4)
  assert.equal(head.subarray(2).toString('hex'), '2263')
  await info.c.read((head[1] ?? 1) * 4 - 4)
  assert.equal(await info.end, 'fin')
})

test('the handshake deadline (SOCKS5 and Convert) is a deliberate close: a FIN, not a reset', async (t) => {
  const socks5 = await startConcentrator(t, makeConfig({ limits: { handshakeTimeoutMs: 200 } }))
  const s = await client(socks5.port())
  s.c.write('0502')
  assert.equal(await s.end, 'fin', 'SOCKS5 greeting left incomplete')
  const convert = await startConcentrator(t,
    makeConfig({ listeners: [{ host: '127.0.0.1', port: 0, mode: 'convert', protocol: 'tcp' }], limits: { convertTimeoutMs: 200 } }))
  const c = await client(convert.port())
  c.c.write('0106')
  assert.equal(await c.end, 'fin', 'Convert message left incomplete')
})

for (const [mode, partial] of [['socks5', '0502'], ['convert', '0106']] as const) {
  test(`${mode}: a connection still in its handshake is closed with a reset (stop, as a process death)`, async (t) => {
    const started = await startConcentrator(t, mode === 'socks5' ? socks5Config() : convertConfig())
    const { c, end } = await client(started.port())
    c.write(partial)
    await new Promise((resolve) => setTimeout(resolve, 100))
    assert.equal(started.conc.activeConnections(), 1)
    await started.conc.stop()
    assert.equal(await end, 'ECONNRESET')
  })
}
