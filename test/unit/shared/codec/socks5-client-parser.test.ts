import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { Socks5ClientParser, encodePipelinedHandshake } from '../../../../shared/src/codec/socks5-client-parser.ts'
import type { Socks5ClientOptions } from '../../../../shared/src/codec/socks5-client-parser.ts'
import { Socks5ServerParser } from '../../../../shared/src/codec/socks5-server-parser.ts'
import type { Socks5ServerEvent } from '../../../../shared/src/codec/socks5-server-parser.ts'
import { encodeAuthRequest, encodeGreeting, encodeReply, encodeRequest } from '../../../../shared/src/codec/socks5.ts'
import type { Socks5Address } from '../../../../shared/src/codec/socks5.ts'
import { byteByByte, everySplit, hex, runClient, splitAt } from './socks5-test-helpers.ts'

const address: Socks5Address = { type: 'domain', host: 'example.net', port: 443 }
const credentials = { username: 'cpe-1', password: 's3cret' }
const bound: Socks5Address = { type: 'ipv4', host: '203.0.113.9', port: 40000 }
const serverData = Buffer.from('HTTP/1.1 200 OK\r\n')
const withAuth: Socks5ClientOptions = { address, auth: credentials, pipelined: true }
const answerAuth = Buffer.concat([hex('0502'), hex('0100'), encodeReply(0, bound), serverData])
const answerNoAuth = Buffer.concat([hex('0500'), encodeReply(0, bound), serverData])

test('encodePipelinedHandshake: greeting (one method) + auth + CONNECT + early data in one buffer', () => {
  const early = Buffer.from('GET /')
  const got = encodePipelinedHandshake({ address, auth: credentials, earlyData: early })
  const want = Buffer.concat([encodeGreeting([2]), encodeAuthRequest(credentials), encodeRequest({ address }), early])
  assert.deepEqual(got, want)
  assert.deepEqual(encodePipelinedHandshake({ address }), Buffer.concat([hex('050100'), encodeRequest({ address })]))
  assert.deepEqual(new Socks5ClientParser({ ...withAuth, earlyData: early }).initial, got)
})

test('pipelined: the server answers arrive in one chunk or split anywhere, with the same result', () => {
  for (const [answer, options] of [[answerAuth, withAuth], [answerNoAuth, { address, pipelined: true }]] as const) {
    const whole = runClient([answer], options)
    assert.deepEqual(whole.events.at(-1), { type: 'connected', bound, pipelined: true })
    assert.equal(whole.leftover, serverData.toString('hex'))
    assert.equal(whole.state, 'connected')
    for (const chunks of everySplit(answer)) assert.deepEqual(runClient(chunks, options), whole)
    assert.deepEqual(runClient(byteByByte(answer), options), whole)
  }
  assert.deepEqual(runClient([answerAuth], withAuth).events.slice(0, 2), [{ type: 'method-selected', method: 2 }, { type: 'authenticated' }])
})

test('stepwise: greeting first, then auth and CONNECT as the server answers', () => {
  const c = new Socks5ClientParser({ address, auth: credentials, pipelined: false })
  assert.deepEqual(c.initial, hex('05020200'))
  assert.deepEqual(c.feed(hex('0502')), [{ type: 'method-selected', method: 2 }, { type: 'send', data: encodeAuthRequest(credentials) }])
  assert.equal(c.state, 'auth')
  assert.deepEqual(c.feed(hex('0100')), [{ type: 'authenticated' }, { type: 'send', data: encodeRequest({ address }) }])
  const done = c.feed(Buffer.concat([encodeReply(0, bound), serverData]))
  assert.deepEqual(done, [{ type: 'connected', bound, leftover: serverData, pipelined: false }])
  // A server that needs no credentials may pick 00 even when we could authenticate.
  const d = new Socks5ClientParser({ address, auth: credentials, pipelined: false })
  assert.deepEqual(d.feed(hex('0500')), [{ type: 'method-selected', method: 0 }, { type: 'send', data: encodeRequest({ address }) }])
})

test('failures carry a code (and the REP when the server refused)', () => {
  const table: Array<[string, Buffer, Socks5ClientOptions, string, number | undefined]> = [
    ['no acceptable method', hex('05ff'), withAuth, 'HYBRID_ERR_SOCKS5_NO_ACCEPTABLE_METHOD', undefined],
    ['method not offered (pipelined auth, server picks 00)', hex('0500'), withAuth, 'HYBRID_ERR_SOCKS5_BAD_REPLY', undefined],
    ['method selection VER 4', hex('045a'), withAuth, 'HYBRID_ERR_SOCKS5_BAD_REPLY', undefined],
    ['auth response VER 5', hex('05020500'), withAuth, 'HYBRID_ERR_SOCKS5_BAD_REPLY', undefined],
    ['auth rejected', hex('05020101'), withAuth, 'HYBRID_ERR_SOCKS5_AUTH_FAILED', undefined],
    ['short 2-byte refusal (socksv5 style)', hex('050201000505'), withAuth, 'HYBRID_ERR_SOCKS5_REQUEST_FAILED', 5],
    ['full refusal 02', Buffer.concat([hex('05020100'), encodeReply(2)]), withAuth, 'HYBRID_ERR_SOCKS5_REQUEST_FAILED', 2],
    ['unknown REP 0x42', hex('0502010005420001'), withAuth, 'HYBRID_ERR_SOCKS5_REQUEST_FAILED', 0x42],
    ['reply VER 4', hex('050201000400'), withAuth, 'HYBRID_ERR_SOCKS5_BAD_REPLY', undefined],
    ['reply RSV 1', hex('05020100050001'), withAuth, 'HYBRID_ERR_SOCKS5_BAD_RESERVED', undefined],
    ['reply ATYP 9', hex('0502010005000009'), withAuth, 'HYBRID_ERR_SOCKS5_BAD_REPLY', undefined]
  ]
  for (const [name, answer, options, code, rep] of table) {
    for (const chunks of [[answer], byteByByte(answer)]) {
      const t = runClient(chunks, options)
      const last = t.events.at(-1) as { type: string, code: string, rep: unknown }
      assert.equal(last.type, 'failure', name)
      assert.equal(last.code, code, name)
      assert.equal(last.rep, rep, name)
      assert.equal(t.state, 'failed', name)
    }
  }
})

test('greetingOnly flags a server that answered the greeting and nothing more (pipelining probe)', () => {
  const c = new Socks5ClientParser(withAuth)
  assert.equal(c.greetingOnly, false)
  c.feed(hex('05'))
  assert.equal(c.greetingOnly, false)
  c.feed(hex('02'))
  assert.equal(c.greetingOnly, true)
  c.feed(hex('01'))
  assert.equal(c.greetingOnly, false)
  const n = new Socks5ClientParser({ address, pipelined: true })
  n.feed(hex('0500'))
  assert.equal(n.greetingOnly, true)
  n.feed(encodeReply(0))
  assert.equal(n.greetingOnly, false)
})

/** Runs our client against our server in memory; returns what the server relayed as early data. */
function handshake (pipelined: boolean, auth: typeof credentials | undefined): { connected: boolean, received: Buffer } {
  const early = Buffer.from('hello')
  const options: Socks5ClientOptions = auth === undefined ? { address, pipelined } : { address, auth, pipelined }
  const client = new Socks5ClientParser(pipelined ? { ...options, earlyData: early } : options)
  const server = new Socks5ServerParser({ allowNoAuth: auth === undefined, allowUserPass: auth !== undefined })
  const toServer: Buffer[] = [client.initial]
  let received = Buffer.alloc(0)
  let connected = false
  const onServer = (events: Socks5ServerEvent[]): Buffer[] => events.flatMap((e) => {
    switch (e.type) {
      case 'method-selected': case 'auth-accepted': case 'failure': return [e.reply]
      case 'auth': return onServer(server.authResult(e.username.toString() === 'cpe-1'))
      case 'request':
        assert.deepEqual(e.address, address)
        received = Buffer.concat([received, e.earlyData])
        return [encodeReply(0, bound)]
      case 'data': received = Buffer.concat([received, e.data]); return []
    }
    return []
  })
  for (let round = 0; round < 5 && toServer.length > 0; round++) {
    const answers = onServer(server.feed(toServer.shift() as Buffer))
    for (const e of client.feed(Buffer.concat(answers))) {
      assert.notEqual(e.type, 'failure')
      if (e.type === 'send') toServer.push(e.data)
      connected ||= e.type === 'connected'
    }
  }
  return { connected, received }
}

test('the client parser decodes what the server parser and encoder produce, both modes', () => {
  for (const pipelined of [true, false]) {
    for (const auth of [credentials, undefined]) {
      const { connected, received } = handshake(pipelined, auth)
      assert.ok(connected, `pipelined=${pipelined} auth=${auth !== undefined}`)
      assert.deepEqual(received, pipelined ? Buffer.from('hello') : Buffer.alloc(0))
    }
  }
})

test('bad options throw at construction, not mid-handshake', () => {
  assert.throws(() => new Socks5ClientParser({ address: { type: 'ipv4', host: 'x', port: 1 }, pipelined: false }),
    { code: 'HYBRID_ERR_SOCKS5_ENCODE' })
  assert.throws(() => new Socks5ClientParser({ address, auth: { username: '', password: 'p' }, pipelined: false }),
    { code: 'HYBRID_ERR_SOCKS5_ENCODE' })
})

test('property: feed never throws and its output is independent of chunking', () => {
  const arbAnswer = fc.oneof(
    fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b)),
    fc.tuple(fc.nat({ max: answerAuth.length - 1 }), fc.integer({ min: 0, max: 255 })).map(([at, byte]) => {
      const b = Buffer.from(answerAuth)
      b[at] = byte
      return b
    }),
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.concat([hex('05020100'), b]))
  )
  fc.assert(fc.property(arbAnswer, fc.array(fc.nat({ max: 400 }), { maxLength: 8 }), fc.boolean(), (answer, cuts, pipelined) => {
    const options = { ...withAuth, pipelined }
    const whole = runClient([answer], options)
    assert.deepEqual(runClient(splitAt(answer, cuts), options), whole)
  }), { numRuns: 1000 })
})
