import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildConvertError, buildConvertMissingCookie, buildConvertSuccess, decodeConvertMessage } from '../../../../shared/src/codec/convert.ts'
import type { ConvertMessage } from '../../../../shared/src/codec/convert.ts'
import { buildFirstWrite, ConverterMemory, convertReplyAction, replyErrorCode } from '../../../../cpe/src/modes/convert-reply.ts'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

function reply (bytes: Buffer): ConvertMessage {
  const r = decodeConvertMessage(bytes, { side: 'client' })
  assert.ok(r?.ok === true)
  return r.message
}

test('first write: header + Connect (IPv4-mapped) + LAN bytes, byte-exact (fixture vector)', () => {
  const w = buildFirstWrite({ family: 4, address: '192.0.2.10', port: 443 }, Buffer.from('GET'))
  assert.equal(hex(w), '01062263' + '0a0501bb' + '00000000000000000000ffffc000020a' + Buffer.from('GET').toString('hex'))
})

test('first write: IPv6 destination and a cached cookie after the Connect', () => {
  const v6 = buildFirstWrite({ family: 6, address: '2001:db8::1', port: 80 }, new Uint8Array(0))
  assert.equal(hex(v6), '01062263' + '0a050050' + '20010db8000000000000000000000001')
  const withCookie = buildFirstWrite({ family: 4, address: '192.0.2.10', port: 443 }, new Uint8Array(0),
    Uint8Array.from([0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7]))
  assert.equal(hex(withCookie), '01092263' + '0a0501bb' + '00000000000000000000ffffc000020a' + '16030000c0c1c2c3c4c5c6c7')
})

test('reply → LAN action', () => {
  assert.deepEqual(convertReplyAction(reply(buildConvertSuccess())), { type: 'relay' })
  assert.deepEqual(convertReplyAction(reply(buildConvertError(96))), { type: 'reset', count: { kind: 'upstream', reason: 'refused' } })
  assert.deepEqual(convertReplyAction(reply(buildConvertError(97, Uint8Array.of(1)))),
    { type: 'reset', count: { kind: 'upstream', reason: 'unreachable' } })
  assert.deepEqual(convertReplyAction(reply(buildConvertError(32))), { type: 'reset', count: { kind: 'rejected', reason: 'acl_denied' } })
  assert.deepEqual(convertReplyAction(reply(buildConvertError(64))), { type: 'backoff-and-fallback' })
  assert.deepEqual(convertReplyAction(reply(buildConvertError(65))), { type: 'backoff-and-fallback' })
  for (const code of [0, 1, 2, 33, 200]) assert.equal(convertReplyAction(reply(buildConvertError(code))).type, 'reset', String(code))
  assert.equal(replyErrorCode(reply(buildConvertError(33, Uint8Array.of(29)))), 33)
  assert.equal(replyErrorCode(reply(buildConvertSuccess())), undefined)
})

test('Error 3: the cookie is taken from the value (O4 layout); an empty value is no offer (libconvert style)', () => {
  const cookie = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8])
  assert.deepEqual(convertReplyAction(reply(buildConvertMissingCookie(cookie))), { type: 'retry-with-cookie', cookie })
  assert.deepEqual(convertReplyAction(reply(Buffer.from('010222631e010300', 'hex'))),
    { type: 'reset', count: { kind: 'rejected', reason: 'auth_failed' } })
})

test('converter memory: cookie cache and ≥ 30 s back-off per converter', () => {
  const now = { t: 0 }
  const m = new ConverterMemory(() => now.t)
  m.setCookie('a:1', Uint8Array.of(1, 2, 3, 4))
  assert.deepEqual(m.cookie('a:1'), Uint8Array.of(1, 2, 3, 4))
  assert.equal(m.cookie('b:1'), undefined)
  m.backOff('a:1', 30_000)
  assert.ok(m.backedOff('a:1'))
  assert.ok(!m.backedOff('b:1'))
  now.t = 29_999
  assert.ok(m.backedOff('a:1'))
  now.t = 30_000
  assert.ok(!m.backedOff('a:1'))
})
