/**
 * The CPE agent's Convert data path (mode `convert`), in-process (test/helpers/cpe-harness.ts: fake
 * interceptor, loopback, no root): the Convert Cookie retry (Error 3), the back-off after Error
 * 64/65, and the `convert.fallback` paths when the converter is absent, silent or backed off —
 * `socks5` through the real in-process concentrator's SOCKS5 listener, `direct`, `none`
 * (docs/convert.md, "CPE Convert mode").
 *
 * The real converter refuses loopback destinations (Error 1, RFC 8803), and relaying to a
 * non-loopback destination needs addresses of its own (a namespace: test/e2e/convert*.e2e.test.ts).
 * So a relayed Convert connection here goes through a scripted converter that answers per test and
 * carries the documentation address 192.0.2.10:80 to the loopback echo server; the real converter
 * is used where no relay is needed (its Cookie exchange, which comes before the destination check).
 */
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import type net from 'node:net'
import { buildConvertError, buildConvertMissingCookie, buildConvertSuccess, findConvertTlv } from '../../../shared/src/codec/convert.ts'
import { createConverterSideReader } from '../../../shared/src/codec/convert-reader.ts'
import { ConvertErrorCode } from '../../../shared/src/codec/convert-error.ts'
import { ConvertTlvType } from '../../../shared/src/codec/convert-tlv.ts'
import { ECHO_HOST, echoServer, eventually, makeConfig, metricValue, startConcentrator } from '../../helpers/concentrator-harness.ts'
import { closedPort, listenScripted, makeCpeConfig, pipeTo, startCpe, type CpeHarness, type Scripted } from '../../helpers/cpe-harness.ts'
import type { CpeConfig } from '../../../cpe/src/config/config.ts'

/**
 * The data plane of both daemons here: `stream`; convert-fallback-splice.test.ts runs this whole
 * file again with `dataPlane: splice` (the CPE starts its relay inside the reply's 'data' handler,
 * the case that lost bytes on splice: docs/data-plane.md, "Taking a socket away from libuv").
 */
const dataPlane = (globalThis as { cpeTestDataPlane?: 'splice' }).cpeTestDataPlane ?? 'stream'
const cpeConfig = (doc: Record<string, unknown>): CpeConfig => makeCpeConfig({ dataPlane, ...doc })
const concConfig = (doc: Record<string, unknown>): ReturnType<typeof makeConfig> => makeConfig({ dataPlane, ...doc })

const DST = '192.0.2.10' // what the LAN client asked for; the scripted converter serves it from the echo server
const COOKIE = Buffer.from('c00k1e42', 'ascii')

/** What the scripted converter answers to the Connect of one connection (by accept index). */
type Answer = 'success' | 'cookie' | 'error-64' | 'error-65' | 'silent'

interface Converter extends Scripted {
  /** Cookie TLV of each Connect received (undefined: none). */
  readonly cookies: Array<string | undefined>
}

type Script = (index: number, cookie: string | undefined) => Answer

async function scriptedConverter (t: TestContext, echoPort: number, answer: Script): Promise<Converter> {
  const cookies: Array<string | undefined> = []
  const peer = await listenScripted(t, (s: net.Socket, i: number) => {
    const reader = createConverterSideReader()
    const onData = (chunk: Buffer): void => {
      const r = reader.feed(chunk)
      if (r.status === 'need-more') return
      s.off('data', onData)
      // The codec refuses loopback destinations (Error 1); a refusal scripted here is sent anyway.
      const message = r.status === 'message' ? r.message : undefined
      const cookie = message === undefined ? undefined : findConvertTlv(message, ConvertTlvType.Cookie)?.cookie
      const seen = cookie === undefined ? undefined : Buffer.from(cookie).toString('ascii')
      cookies[i] = seen
      const a = answer(i, seen)
      if (a === 'silent') return
      if (a === 'cookie') { s.end(buildConvertMissingCookie(COOKIE)); return }
      if (a === 'error-64') { s.end(buildConvertError(ConvertErrorCode.ResourceExceeded)); return }
      if (a === 'error-65') { s.end(buildConvertError(ConvertErrorCode.NetworkFailure)); return }
      if (r.status !== 'message') { s.destroy(); return }
      s.write(buildConvertSuccess())
      pipeTo(s, ECHO_HOST, echoPort, Buffer.from(r.rest))
    }
    s.on('data', onData)
  })
  return Object.assign(peer, { cookies })
}

/** The real concentrator's SOCKS5 listener (the `fallback: socks5` target) and an echo server. */
type Conc = Awaited<ReturnType<typeof startConcentrator>>['conc']

async function socks5Concentrator (t: TestContext): Promise<{ socksPort: number, echoPort: number, conc: Conc }> {
  const echo = await echoServer(t)
  const { conc, port } = await startConcentrator(t, concConfig({ listeners: [{ host: '127.0.0.1', port: 0, mode: 'socks5', protocol: 'mptcp' }] }))
  return { socksPort: port(), echoPort: echo.port, conc }
}

function convertCpe (socksPort: number, converterPort: number, convert: Record<string, unknown> = {}): CpeConfig {
  return cpeConfig({ mode: 'convert', concentrator: { host: '127.0.0.1', port: socksPort }, convert: { port: converterPort, ...convert } })
}

/** One LAN connection to `address:port`: `text` out, the same text back, FIN both ways. */
async function roundTrip (h: CpeHarness, address: string, port: number, text: string): Promise<void> {
  const c = await h.lan(address, port)
  c.write(Buffer.from(text))
  assert.equal(String(await c.read(text.length)), text)
  c.socket.end()
  await c.waitClosed()
}

/** Dials of the agent to `port` (the converter, or the concentrator's SOCKS5 listener). */
const dialsTo = (h: CpeHarness, port: number): number => h.dials.filter((d) => d.port === port).length

test('Error 3: the cookie is cached, the connection retried with it and relayed; later connections send it at once', async (t) => {
  const echo = await echoServer(t)
  const conv = await scriptedConverter(t, echo.port, (_i, cookie) => cookie === COOKIE.toString('ascii') ? 'success' : 'cookie')
  const h = await startCpe(t, convertCpe(await closedPort(), conv.port))
  await roundTrip(h, DST, 80, 'first, after a cookie retry')
  assert.deepEqual(conv.cookies, [undefined, 'c00k1e42'])
  await roundTrip(h, DST, 80, 'second, cookie at once')
  assert.deepEqual(conv.cookies, [undefined, 'c00k1e42', 'c00k1e42'])
  assert.equal(await h.metric('hybrid_convert_errors_total', { direction: 'received', code: 'missing_cookie' }), 1)
  // Counted when the relay ends: on splice that is the engine's 'end' message, which can reach the
  // main thread just after the LAN client saw the last FIN (docs/data-plane.md, "Open points").
  await eventually(async () => await h.metric('hybrid_connections_closed_total', { mode: 'convert', reason: 'normal' }) === 2)
})

test('Error 3 again after the cookie retry: the LAN client is reset (auth_failed), no third attempt, no fallback', async (t) => {
  const { socksPort } = await socks5Concentrator(t)
  const conv = await scriptedConverter(t, 1, () => 'cookie')
  const h = await startCpe(t, convertCpe(socksPort, conv.port))
  const c = await h.lan(DST, 80)
  c.write('hello')
  await c.waitClosed()
  assert.equal(c.buffered.length, 0)
  assert.equal(conv.accepted.length, 2)
  assert.equal(dialsTo(h, socksPort), 0)
  await eventually(async () => await h.metric('hybrid_connections_rejected_total', { mode: 'convert', reason: 'auth_failed' }) === 1)
})

test('the real converter (convert.cookie.required): Error 3, the retry with its cookie passes the cookie check', async (t) => {
  // The cookie check comes before the destination policy, so the retry gets past it and is then
  // refused for its port (policy.deniedPorts: no dial): Error 32, a LAN reset (acl_denied).
  const { conc, port } = await startConcentrator(t, concConfig({
    listeners: [{ host: '127.0.0.1', port: 0, mode: 'convert', protocol: 'mptcp' }],
    policy: { allowPrefixes: ['127.0.0.0/8'], hostAddresses: { except: ['127.0.0.0/8'] }, deniedPorts: [80] },
    convert: { cookie: { required: true } }
  }))
  const h = await startCpe(t, convertCpe(await closedPort(), port(), { fallback: 'none' }))
  const c = await h.lan(DST, 80)
  c.write('hello')
  await c.waitClosed()
  assert.equal(dialsTo(h, port()), 2)
  assert.equal(await h.metric('hybrid_convert_errors_total', { direction: 'received', code: 'missing_cookie' }), 1)
  assert.equal(await metricValue(conc, 'hybrid_auth_attempts_total', { method: 'cookie', result: 'success' }), 1)
  assert.equal(await metricValue(conc, 'hybrid_auth_attempts_total', { method: 'cookie', result: 'failure' }), 0)
  assert.equal(await h.metric('hybrid_convert_errors_total', { direction: 'received', code: 'not_authorized' }), 1)
  await eventually(async () => await h.metric('hybrid_connections_rejected_total', { mode: 'convert', reason: 'acl_denied' }) === 1)
})

for (const code of [64, 65] as const) {
  test(`Error ${code}: back off the converter for convert.backoffMs, fall back to SOCKS5 through the real concentrator meanwhile`, async (t) => {
    const { socksPort, echoPort, conc } = await socks5Concentrator(t)
    const conv = await scriptedConverter(t, echoPort, (i) => i === 0 ? `error-${code}` : 'success')
    const h = await startCpe(t, convertCpe(socksPort, conv.port, { backoffMs: 30_000 }))
    await roundTrip(h, ECHO_HOST, echoPort, `refused with ${code}, relayed over SOCKS5`)
    assert.equal(conv.accepted.length, 1)
    assert.equal(dialsTo(h, socksPort), 1)
    // Backed off: the next connection does not dial the converter at all.
    await roundTrip(h, ECHO_HOST, echoPort, 'backed off, SOCKS5 at once')
    assert.equal(dialsTo(h, conv.port), 1)
    assert.equal(dialsTo(h, socksPort), 2)
    assert.equal(await metricValue(conc, 'hybrid_socks5_replies_total', { rep: '0' }), 2)
    // Back-off over: the converter is used again.
    h.advance(30_001)
    await roundTrip(h, DST, 80, 'converter again')
    assert.equal(conv.accepted.length, 2)
    assert.equal(dialsTo(h, socksPort), 2)
    const label = code === 64 ? 'resource_exceeded' : 'network_failure'
    assert.equal(await h.metric('hybrid_convert_errors_total', { direction: 'received', code: label }), 1)
  })
}

test('converter absent (connect refused): counted, fallback socks5 through the real concentrator, converter tried again next time', async (t) => {
  const { socksPort, echoPort } = await socks5Concentrator(t)
  const absent = await closedPort()
  const h = await startCpe(t, convertCpe(socksPort, absent))
  await roundTrip(h, ECHO_HOST, echoPort, 'no converter here')
  await roundTrip(h, ECHO_HOST, echoPort, 'still none')
  assert.equal(dialsTo(h, absent), 2, 'unreachable is not a back-off')
  assert.equal(dialsTo(h, socksPort), 2)
  assert.equal(await h.metric('hybrid_upstream_connect_failures_total', { reason: 'refused' }), 2)
  assert.equal(await h.metric('hybrid_connections_accepted_total', { mode: 'convert' }), 2)
})

test('converter silent until convert.replyTimeoutMs: treated as unreachable (timeout), fallback socks5', async (t) => {
  const { socksPort, echoPort } = await socks5Concentrator(t)
  const conv = await scriptedConverter(t, echoPort, () => 'silent')
  const h = await startCpe(t, convertCpe(socksPort, conv.port, { replyTimeoutMs: 200 }))
  await roundTrip(h, ECHO_HOST, echoPort, 'the converter said nothing')
  assert.equal(conv.accepted.length, 1)
  assert.equal(await h.metric('hybrid_upstream_connect_failures_total', { reason: 'timeout' }), 1)
})

test('fallback direct: the destination is dialled without the concentrator (plain TCP, marked); fallback none: LAN reset', async (t) => {
  const echo = await echoServer(t)
  const absent = await closedPort()
  const direct = await startCpe(t, convertCpe(await closedPort(), absent, { fallback: 'direct' }))
  await roundTrip(direct, ECHO_HOST, echo.port, 'straight to the destination')
  assert.deepEqual(direct.dials.filter((d) => d.port === echo.port).map((d) => [d.host, d.protocol, d.mark]), [[ECHO_HOST, 'tcp', 2]])

  const none = await startCpe(t, convertCpe(await closedPort(), absent, { fallback: 'none' }))
  const c = await none.lan(ECHO_HOST, echo.port)
  c.write('dropped')
  await c.waitClosed()
  assert.equal(c.buffered.length, 0)
  assert.equal(none.dials.length, 1)
})
