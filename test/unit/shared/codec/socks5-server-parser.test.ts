import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { Socks5ServerParser } from '../../../../shared/src/codec/socks5-server-parser.ts'
import type { Socks5ServerOptions } from '../../../../shared/src/codec/socks5-server-parser.ts'
import { encodePipelinedHandshake } from '../../../../shared/src/codec/socks5-client-parser.ts'
import { encodeAuthRequest, encodeGreeting, encodeRequest } from '../../../../shared/src/codec/socks5.ts'
import { Limits } from '../../../../shared/src/codec/limits.ts'
import { byteByByte, everySplit, hex, runServer, splitAt } from './socks5-test-helpers.ts'
import type { ServerTranscript } from './socks5-test-helpers.ts'

const noAuth: Socks5ServerOptions = { allowNoAuth: true, allowUserPass: false }
const userPass: Socks5ServerOptions = { allowNoAuth: false, allowUserPass: true }
const early = Buffer.from('GET / HTTP/1.1\r\n\r\n')
const pipelinedAuth = encodePipelinedHandshake({
  auth: { username: 'cpe-1', password: 's3cret' }, address: { type: 'domain', host: 'Example.COM', port: 443 }, earlyData: early
})
const pipelinedNoAuth = encodePipelinedHandshake({ address: { type: 'ipv4', host: '192.0.2.10', port: 80 }, earlyData: early })

const expectedAuth: ServerTranscript = {
  events: [
    { type: 'method-selected', method: 2, reply: '0502' },
    { type: 'auth', username: Buffer.from('cpe-1').toString('hex'), password: Buffer.from('s3cret').toString('hex') },
    { type: 'auth-accepted', reply: '0100' },
    { type: 'request', command: 1, address: { type: 'domain', host: 'example.com', port: 443 } }
  ],
  early: early.toString('hex'),
  state: 'done',
  maxBuffered: 0
}

const withoutBuffered = (t: ServerTranscript): Omit<ServerTranscript, 'maxBuffered'> => ({ events: t.events, early: t.early, state: t.state })

test('greeting + auth + request + early data in one chunk (the TFO SYN)', () => {
  assert.deepEqual(runServer([pipelinedAuth], userPass), expectedAuth)
  const t = runServer([pipelinedNoAuth], noAuth)
  assert.deepEqual(t.events, [
    { type: 'method-selected', method: 0, reply: '0500' },
    { type: 'request', command: 1, address: { type: 'ipv4', host: '192.0.2.10', port: 80 } }
  ])
  assert.equal(t.early, early.toString('hex'))
})

test('every 2-part and 3-part split and byte-by-byte feeding give the one-chunk result', () => {
  for (const [bytes, options] of [[pipelinedAuth, userPass], [pipelinedNoAuth, noAuth]] as const) {
    const whole = withoutBuffered(runServer([bytes], options))
    let splits = 0
    for (const chunks of everySplit(bytes)) {
      assert.deepEqual(withoutBuffered(runServer(chunks, options)), whole, chunks.map((c) => c.length).join('+'))
      splits++
    }
    assert.deepEqual(withoutBuffered(runServer(byteByByte(bytes), options)), whole)
    assert.ok(splits > bytes.length * bytes.length / 2)
  }
})

test('early data comes back untouched, zero-copy when it shares the request chunk', () => {
  const p = new Socks5ServerParser(noAuth)
  const events = p.feed(pipelinedNoAuth)
  const req = events.find((e) => e.type === 'request')
  assert.ok(req?.type === 'request')
  assert.equal(req.earlyData.buffer, pipelinedNoAuth.buffer)
  assert.deepEqual(req.earlyData, early)
  assert.deepEqual(p.feed(Buffer.from('more')), [{ type: 'data', data: Buffer.from('more') }])
  assert.deepEqual(p.feed(Buffer.alloc(0)), [])
})

test('bytes that arrive while credentials are verified are held and replayed after authResult', () => {
  const p = new Socks5ServerParser(userPass)
  // greeting (3) + auth (3 + 5 + 6) = 17 bytes; the first chunk also carries 3 bytes of the request
  const [a, b, c] = splitAt(pipelinedAuth, [20, 30])
  assert.deepEqual(p.feed(a as Buffer).map((e) => e.type), ['method-selected', 'auth'])
  assert.equal(p.state, 'auth-pending')
  assert.deepEqual(p.feed(b as Buffer), [])
  assert.deepEqual(p.feed(c as Buffer), [])
  assert.equal(p.heldBytes, pipelinedAuth.length - 17)
  assert.equal(p.bufferedBytes, 0)
  const after = p.authResult(true)
  assert.deepEqual(after.map((e) => e.type), ['auth-accepted', 'request'])
  const req = after[1]
  assert.ok(req?.type === 'request')
  assert.deepEqual(req.earlyData, early)
  assert.equal(p.state, 'done')
  assert.throws(() => p.authResult(true), { code: 'HYBRID_ERR_INTERNAL' })
})

test('rejected credentials: 01 01 and close, held bytes dropped', () => {
  const t = runServer([pipelinedAuth], userPass, false)
  assert.deepEqual(t.events.at(-1), { type: 'failure', code: 'HYBRID_ERR_SOCKS5_AUTH_FAILED', reply: '0101', detail: 'credentials rejected' })
  assert.equal(t.state, 'failed')
  assert.equal(t.early, '')
})

test('method choice follows the policy: user/pass preferred, else no-auth, else 05 FF', () => {
  const both: Socks5ServerOptions = { allowNoAuth: true, allowUserPass: true }
  const method = (greeting: string, options: Socks5ServerOptions): unknown => runServer([hex(greeting)], options).events[0]
  assert.deepEqual(method('05020002', both), { type: 'method-selected', method: 2, reply: '0502' })
  assert.deepEqual(method('050100', both), { type: 'method-selected', method: 0, reply: '0500' })
  assert.deepEqual(method('050400000202', noAuth), { type: 'method-selected', method: 0, reply: '0500' }) // duplicates are fine
  assert.equal((method('050100', userPass) as { reply: string }).reply, '05ff')
  assert.equal((method('050102', noAuth) as { reply: string }).reply, '05ff')
})

const greetNo = '050100'
const greetUp = '050102'
const auth = encodeAuthRequest({ username: 'u', password: 'p' }).toString('hex')
const fail = (rep: string): string => `05${rep}000100000000` + '0000'

/** The malformed corpus: [name, stream, options, expected code, expected reply (hex, '' = close only)]. */
const corpus: Array<[string, string, Socks5ServerOptions, string, string]> = [
  ['greeting VER 4 (SOCKS4)', '04010050c0000201', noAuth, 'HYBRID_ERR_SOCKS5_BAD_VERSION', ''],
  ['greeting VER 0', '00', noAuth, 'HYBRID_ERR_SOCKS5_BAD_VERSION', ''],
  ['NMETHODS 0', '0500', noAuth, 'HYBRID_ERR_SOCKS5_NO_METHODS', '05ff'],
  ['only GSSAPI offered', '050101', noAuth, 'HYBRID_ERR_SOCKS5_NO_ACCEPTABLE_METHOD', '05ff'],
  ['auth VER 5', greetUp + '05017501' + '70', userPass, 'HYBRID_ERR_SOCKS5_AUTH_BAD_VERSION', '0101'],
  ['ULEN 0', greetUp + '01000170', userPass, 'HYBRID_ERR_SOCKS5_AUTH_BAD_LENGTH', '0101'],
  ['PLEN 0', greetUp + '01017500', userPass, 'HYBRID_ERR_SOCKS5_AUTH_BAD_LENGTH', '0101'],
  ['request VER 4', greetNo + '04010001c00002010050', noAuth, 'HYBRID_ERR_SOCKS5_BAD_VERSION', fail('01')],
  ['CMD 0', greetNo + '05000001c00002010050', noAuth, 'HYBRID_ERR_SOCKS5_COMMAND_NOT_SUPPORTED', fail('07')],
  ['CMD 2 (BIND)', greetNo + '05020001c00002010050', noAuth, 'HYBRID_ERR_SOCKS5_COMMAND_NOT_SUPPORTED', fail('07')],
  ['CMD 3 (UDP ASSOCIATE)', greetNo + '05030001c00002010050', noAuth, 'HYBRID_ERR_SOCKS5_COMMAND_NOT_SUPPORTED', fail('07')],
  ['CMD 4', greetNo + '05040001c00002010050', noAuth, 'HYBRID_ERR_SOCKS5_COMMAND_NOT_SUPPORTED', fail('07')],
  ['CMD 2 after a successful auth', greetUp + auth + '05020001c00002010050', userPass, 'HYBRID_ERR_SOCKS5_COMMAND_NOT_SUPPORTED', fail('07')],
  ['RSV 1', greetNo + '05010101c00002010050', noAuth, 'HYBRID_ERR_SOCKS5_BAD_RESERVED', fail('01')],
  ['RSV ff', greetNo + '0501ff01c00002010050', noAuth, 'HYBRID_ERR_SOCKS5_BAD_RESERVED', fail('01')],
  ['ATYP 0', greetNo + '05010000', noAuth, 'HYBRID_ERR_SOCKS5_ADDRESS_TYPE_NOT_SUPPORTED', fail('08')],
  ['ATYP 2', greetNo + '05010002c00002010050', noAuth, 'HYBRID_ERR_SOCKS5_ADDRESS_TYPE_NOT_SUPPORTED', fail('08')],
  ['ATYP 5', greetNo + '05010005', noAuth, 'HYBRID_ERR_SOCKS5_ADDRESS_TYPE_NOT_SUPPORTED', fail('08')],
  ['domain length 0', greetNo + '050100030000' + '50', noAuth, 'HYBRID_ERR_SOCKS5_BAD_DOMAIN', fail('04')],
  ['domain with NUL', greetNo + '0501000303610062' + '0050', noAuth, 'HYBRID_ERR_SOCKS5_BAD_DOMAIN', fail('04')],
  ['domain with %', greetNo + '050100030361256200' + '50', noAuth, 'HYBRID_ERR_SOCKS5_BAD_DOMAIN', fail('04')],
  ['domain 1.2.3.4.5', greetNo + '0501000309' + Buffer.from('1.2.3.4.5').toString('hex') + '0050', noAuth, 'HYBRID_ERR_SOCKS5_BAD_DOMAIN',
    fail('04')],
  ['domain of 255 bytes (> 253)', greetNo + '05010003ff' + Buffer.from('a.'.repeat(127) + 'a').toString('hex') + '0050', noAuth,
    'HYBRID_ERR_SOCKS5_BAD_DOMAIN', fail('04')],
  ['port 0 (IPv4)', greetNo + '05010001c00002010000', noAuth, 'HYBRID_ERR_SOCKS5_BAD_PORT', fail('02')],
  ['port 0 (name)', greetNo + '050100030161' + '0000', noAuth, 'HYBRID_ERR_SOCKS5_BAD_PORT', fail('02')],
  ['port 0 (IPv6)', greetNo + '05010004' + '20010db8' + '00'.repeat(11) + '01' + '0000', noAuth, 'HYBRID_ERR_SOCKS5_BAD_PORT', fail('02')],
  ['greeting over a 10-byte budget', '050c' + '00'.repeat(12), { ...noAuth, maxHandshakeBytes: 10 }, 'HYBRID_ERR_SOCKS5_HANDSHAKE_TOO_LARGE', '05ff'],
  ['auth over a 20-byte budget', greetUp + '0110' + '75'.repeat(16) + '0170', { ...userPass, maxHandshakeBytes: 20 },
    'HYBRID_ERR_SOCKS5_HANDSHAKE_TOO_LARGE', '0101'],
  ['request over a 30-byte budget', greetNo + '0501000320' + '61'.repeat(32) + '0050', { ...noAuth, maxHandshakeBytes: 30 },
    'HYBRID_ERR_SOCKS5_HANDSHAKE_TOO_LARGE', fail('01')]
]

test('malformed corpus: each input gets its reply (or a bare close), whole and byte by byte', () => {
  for (const [name, stream, options, code, reply] of corpus) {
    const bytes = hex(stream)
    const t = runServer([bytes], options)
    const last = t.events.at(-1)
    assert.equal(last?.type, 'failure', `${name}: ${JSON.stringify(t.events)}`)
    assert.equal(last.code, code, name)
    assert.equal(last.reply, reply, name)
    assert.equal(t.state, 'failed', name)
    assert.equal(t.early, '', name)
    assert.deepEqual(withoutBuffered(runServer(byteByByte(bytes), options)), withoutBuffered(t), `${name} byte by byte`)
  }
})

test('every length at its maximum fits the default budget', () => {
  const name = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}` // 253
  const bytes = Buffer.concat([
    encodeGreeting(Array.from({ length: 255 }, (_, i) => i)),
    encodeAuthRequest({ username: 'u'.repeat(255), password: 'p'.repeat(255) }),
    encodeRequest({ address: { type: 'domain', host: `${name}.`, port: 65535 } })
  ])
  assert.ok(bytes.length <= Limits.socks5MaxHandshakeBytes)
  const t = runServer(byteByByte(bytes), userPass)
  assert.deepEqual(t.events.at(-1), { type: 'request', command: 1, address: { type: 'domain', host: name, port: 65535 } })
  assert.ok(t.maxBuffered <= 513)
})

test('truncation at every offset: no failure, no request, nothing lost', () => {
  for (let i = 0; i < pipelinedAuth.length - early.length; i++) {
    const t = runServer([pipelinedAuth.subarray(0, i)], userPass)
    assert.ok(t.events.every((e) => e.type !== 'failure' && e.type !== 'request'), `prefix ${i}`)
    assert.notEqual(t.state, 'failed')
  }
})

// --- properties ---------------------------------------------------------------------------------

const arbOptions = fc.record({
  allowNoAuth: fc.boolean(),
  allowUserPass: fc.boolean(),
  maxHandshakeBytes: fc.integer({ min: 1, max: Limits.socks5MaxHandshakeBytes })
}).map((o) => ({ ...o }))
const arbCuts = fc.array(fc.nat({ max: 1200 }), { maxLength: 12 })
/** Streams that reach deep states: a valid pipelined handshake, then mutated, truncated or extended. */
const arbStream = fc.oneof(
  fc.uint8Array({ maxLength: 1200 }).map((b) => Buffer.from(b)),
  fc.tuple(fc.nat({ max: pipelinedAuth.length - 1 }), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 64 }))
    .map(([at, byte, tail]) => {
      const b = Buffer.concat([pipelinedAuth, tail])
      b[at] = byte
      return b
    }),
  fc.tuple(fc.constantFrom('050100', '050102', '05020002'), fc.uint8Array({ maxLength: 600 }))
    .map(([g, rest]) => Buffer.concat([hex(g), rest]))
)

test('property: feed never throws, output is independent of chunking, buffering stays within budget', () => {
  fc.assert(fc.property(arbStream, arbCuts, arbOptions, fc.boolean(), (bytes, cuts, options, verdict) => {
    const whole = runServer([bytes], options, verdict)
    const split = runServer(splitAt(bytes, cuts), options, verdict)
    assert.deepEqual(withoutBuffered(split), withoutBuffered(whole))
    assert.ok(split.maxBuffered <= options.maxHandshakeBytes)
    assert.ok(whole.maxBuffered <= options.maxHandshakeBytes)
  }), { numRuns: 1500 })
})

test('property: after a request, early data plus later chunks equal the bytes after the request', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), arbCuts, (tail, cuts) => {
    const bytes = Buffer.concat([pipelinedAuth.subarray(0, pipelinedAuth.length - early.length), tail])
    const t = runServer(splitAt(bytes, cuts), userPass)
    assert.equal(t.state, 'done')
    assert.equal(t.early, Buffer.from(tail).toString('hex'))
  }), { numRuns: 300 })
})
