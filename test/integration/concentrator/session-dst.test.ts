/**
 * The sessions view (`GET /api/v1/sessions`) names endpoints the same way in every mode: IPv4
 * `a.b.c.d:port`, IPv6 `[addr]:port`. A SOCKS5 CONNECT to an IPv6 literal once listed its `dst`
 * without brackets (`::1:8080`), which cannot be split back into address and port.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ECHO_HOST, RawClient, connectRequest, echoServer, makeConfig, startConcentrator } from '../../helpers/concentrator-harness.ts'

const GREETING_NOAUTH = Buffer.from('050100', 'hex')
const IPV6_LOOPBACK = Buffer.from('00000000000000000000000000000001', 'hex')

function connectRequestV6 (address: Buffer, port: number): Buffer {
  return Buffer.concat([Buffer.from([5, 1, 0, 4]), address, Buffer.from([port >> 8, port & 0xff])])
}

// ::1 (and 0.0.0.1, its IPv4-compatible reading) allowed and no own address (the management listener on 127.0.0.1).
const ipv6Policy = { policy: { allowPrefixes: ['127.0.0.0/8', '::1/128', '0.0.0.1/32'], hostAddresses: { except: ['127.0.0.0/8', '::1/128'] } }, management: { listen: { host: '127.0.0.1', port: 9 } } }

test('SOCKS5 to an IPv6 literal: the session dst and upstream are [addr]:port', async (t) => {
  const echo = await echoServer(t, '::1')
  const { conc, port } = await startConcentrator(t, makeConfig(ipv6Policy))
  const c = await RawClient.connect(port())
  t.after(() => { c.socket.destroy() })
  c.write(Buffer.concat([GREETING_NOAUTH, connectRequestV6(IPV6_LOOPBACK, echo.port)]))
  assert.equal((await c.read(2)).toString('hex'), '0500')
  const reply = await c.read(22)
  assert.equal(reply.subarray(0, 4).toString('hex'), '05000004', 'succeeded, BND.ADDR IPv6')
  c.write('6869')
  assert.equal((await c.read(2)).toString(), 'hi')
  const page = conc.sessions.page(0, 10)
  assert.equal(page.total, 1)
  assert.equal(page.sessions[0]?.dst, `[::1]:${echo.port}`)
  assert.equal(page.sessions[0]?.upstream, `[::1]:${echo.port}`)
  assert.match(page.sessions[0]?.src ?? '', /^127\.0\.0\.1:\d+$/)
})

test('SOCKS5 to an IPv4 literal: the session dst and upstream are a.b.c.d:port', async (t) => {
  const echo = await echoServer(t)
  const { conc, port } = await startConcentrator(t, makeConfig({}))
  const c = await RawClient.connect(port())
  t.after(() => { c.socket.destroy() })
  c.write(Buffer.concat([GREETING_NOAUTH, connectRequest(ECHO_HOST, echo.port)]))
  await c.read(12)
  const page = conc.sessions.page(0, 10)
  assert.equal(page.sessions[0]?.dst, `${ECHO_HOST}:${echo.port}`)
  assert.equal(page.sessions[0]?.upstream, `${ECHO_HOST}:${echo.port}`)
})
