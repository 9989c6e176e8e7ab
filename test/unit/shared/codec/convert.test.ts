import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  buildConvertConnect, buildConvertError, buildConvertFailureReply, buildConvertInfo, buildConvertMissingCookie,
  buildConvertSuccess, buildConvertSupported, decodeConvertMessage, encodeConvertMessage, findConvertTlv
} from '../../../../shared/src/codec/convert.ts'
import type { ConvertMessage } from '../../../../shared/src/codec/convert.ts'
import { buildEchoValue, cookieFromMissingCookieValue } from '../../../../shared/src/codec/convert-error.ts'
import { HybridError } from '../../../../shared/src/errors.ts'
import { hex, negativeVectors, positiveVectors } from '../../../fixtures/convert-vectors.ts'

const vec = (i: number): string => {
  const v = positiveVectors[i]
  assert.ok(v !== undefined)
  return v.hex
}
const decodeOk = (bytes: Uint8Array, side: 'converter' | 'client'): ConvertMessage => {
  const r = decodeConvertMessage(bytes, { side })
  assert.ok(r !== undefined && r.ok, `expected a message, got ${JSON.stringify(r)}`)
  return r.message
}

test('every positive fixture vector decodes and re-encodes byte for byte', () => {
  for (const v of positiveVectors) {
    const bytes = hex(v.hex)
    const r = decodeConvertMessage(bytes, { side: v.side })
    assert.ok(r?.ok === true, v.name)
    assert.equal(r.bytesRead, bytes.length, v.name)
    assert.deepEqual(encodeConvertMessage(r.message), bytes, v.name)
  }
})

test('every negative vector gets the expected reaction on the converter side', () => {
  for (const v of negativeVectors) {
    const bytes = hex(v.hex)
    const r = decodeConvertMessage(bytes, { side: 'converter' })
    assert.ok(r !== undefined && !r.ok, `${v.name}: ${JSON.stringify(r)}`)
    const f = r.failure
    if (v.expect === 'reset') {
      assert.equal(f.action, 'reset', v.name)
      assert.equal(buildConvertFailureReply(f), undefined)
      continue
    }
    assert.ok(f.action === 'reply', v.name)
    assert.equal(f.reply.code, v.expect, v.name)
    const want = v.value !== undefined ? hex(v.value) : v.expect <= 2 ? buildEchoValue(bytes) : Uint8Array.of(0)
    assert.deepEqual(Buffer.from(f.reply.value), Buffer.from(want), v.name)
  }
})

test('decoded fields: Connect address families, options, cookie, errors', () => {
  const v4 = findConvertTlv(decodeOk(hex(vec(7)), 'converter'), 10)
  assert.deepEqual(v4?.destination, { family: 4, address: '192.0.2.10' })
  assert.equal(v4.port, 443)
  const v6 = findConvertTlv(decodeOk(hex(vec(5)), 'converter'), 10)
  assert.deepEqual(v6?.destination, { family: 6, address: '2001:db8::1' })
  const opts = findConvertTlv(decodeOk(hex(vec(6)), 'converter'), 10)
  assert.deepEqual(opts?.options.map((o) => [o.kind, o.data.length]), [[30, 0], [34, 0]])
  const cookie = findConvertTlv(decodeOk(hex(vec(7)), 'converter'), 22)
  assert.ok(cookie !== undefined)
  assert.deepEqual(Buffer.from(cookie.cookie), hex('c0c1c2c3c4c5c6c7'))
  const err = findConvertTlv(decodeOk(hex('01 02 22 63 1e 01 61 03'), 'client'), 30)
  assert.ok(err !== undefined)
  assert.equal(err.code, 97)
  assert.deepEqual([...err.value], [3])
})

test('builders produce the fixture bytes', () => {
  assert.deepEqual(buildConvertSuccess(), hex('01 01 22 63'))
  assert.deepEqual(buildConvertInfo(), hex('01 02 22 63 01 01 00 00'))
  assert.deepEqual(buildConvertSupported([30]), hex('01 03 22 63 15 02 00 00 1e 00 00 00'))
  assert.deepEqual(buildConvertSuccess(hex('02 04 05 b4 04 02 01 01')), hex('01 04 22 63 14 03 00 00 02 04 05 b4 04 02 01 01'))
  assert.deepEqual(buildConvertError(0, Uint8Array.of(1)), hex('01 02 22 63 1e 01 00 01'))
  assert.deepEqual(buildConvertError(33, Uint8Array.of(29)), hex('01 02 22 63 1e 01 21 1d'))
  assert.deepEqual(buildConvertError(64), hex('01 02 22 63 1e 01 40 00'))
  assert.deepEqual(buildConvertError(97, Uint8Array.of(3)), hex('01 02 22 63 1e 01 61 03'))
  assert.deepEqual(
    buildConvertConnect({
      port: 443,
      destination: { family: 4, address: '192.0.2.10' },
      options: [{ kind: 30, data: new Uint8Array(0) }, { kind: 34, data: new Uint8Array(0) }]
    }),
    hex(vec(6)))
  assert.deepEqual(
    buildConvertConnect({ port: 443, destination: { family: 4, address: '192.0.2.10' }, cookie: hex('c0c1c2c3c4c5c6c7') }),
    hex(vec(7)))
  assert.deepEqual(
    buildConvertConnect({ port: 80, destination: { family: 6, address: '2001:DB8:0::1' } }),
    hex(vec(5)))
})

test('Connect builder appends application data in the same allocation', () => {
  const out = buildConvertConnect({ port: 443, destination: { family: 4, address: '192.0.2.10' } }, Buffer.from('GET / HTTP/1.1\r\n'))
  assert.equal(out.length, 24 + 16)
  const r = decodeConvertMessage(out, { side: 'converter' })
  assert.ok(r?.ok === true)
  assert.equal(out.subarray(r.bytesRead).toString(), 'GET / HTTP/1.1\r\n')
})

test('Missing Cookie: Error 3 carries a zero byte then the cookie, and the client gets it back', () => {
  const cookie = hex('01 02 03 04 05 06 07 08')
  const bytes = buildConvertMissingCookie(cookie)
  assert.deepEqual(bytes, hex('01 04 22 63 1e 03 03 00 01 02 03 04 05 06 07 08'))
  const err = findConvertTlv(decodeOk(bytes, 'client'), 30)
  assert.equal(err?.code, 3)
  assert.deepEqual(Buffer.from(cookieFromMissingCookieValue(err?.value ?? new Uint8Array(0))), cookie)
})

test('echo replies are truncated to fit one 1020-byte message', () => {
  const big = new Uint8Array(1020).fill(7)
  const reply = buildConvertError(1, buildEchoValue(big))
  assert.equal(reply.length, 1020)
  assert.equal(reply[1], 255)
})

test('encoder refuses what the wire cannot carry', () => {
  const refuse = (m: ConvertMessage): void => assert.throws(() => encodeConvertMessage(m),
    (e: unknown) => e instanceof HybridError && e.code === 'HYBRID_ERR_CONVERT_ENCODE')
  refuse({ tlvs: [{ type: 22, cookie: new Uint8Array(1020) }] })
  refuse({ tlvs: [{ type: 1 }, { type: 1 }] })
  refuse({ tlvs: [{ type: 30, code: 5, value: Uint8Array.of(0) }] })
  refuse({ tlvs: [{ type: 21, kinds: [1] }] })
  refuse({ tlvs: [{ type: 22, cookie: new Uint8Array(0) }] })
  refuse({ tlvs: [{ type: 'private', code: 100, value: new Uint8Array(2) }] })
  refuse({ tlvs: [{ type: 10, port: 80, destination: { family: 4, address: '2001:db8::1' }, options: [] }] })
  refuse({ tlvs: [{ type: 10, port: 80, destination: { family: 6, address: 'fe80::1%eth0' }, options: [] }] })
  refuse({ tlvs: [{ type: 10, port: 70000, destination: { family: 4, address: '192.0.2.1' }, options: [] }] })
  refuse({ tlvs: [{ type: 10, port: 80, destination: { family: 4, address: '192.0.2.1' }, options: [{ kind: 1, data: new Uint8Array(0) }] }] })
  refuse({
    tlvs: [{
      type: 10,
      port: 80,
      destination: { family: 4, address: '192.0.2.1' },
      options: [{ kind: 30, data: new Uint8Array(0) }, { kind: 30, data: new Uint8Array(0) }]
    }]
  })
  // exactly 255 words is fine
  assert.equal(encodeConvertMessage({ tlvs: [{ type: 22, cookie: new Uint8Array(1012) }] }).length, 1020)
})

test('private TLVs: accepted only when configured, on either side', () => {
  const bytes = hex(`01 07 22 63 ${vec(4).slice(12)} c8 01 00 00`)
  const r = decodeConvertMessage(bytes, { side: 'converter', privateTypes: new Set([200]) })
  assert.ok(r?.ok === true)
  assert.deepEqual(r.message.tlvs[1], { type: 'private', code: 200, value: Buffer.alloc(2) })
  const reply = decodeConvertMessage(hex('01 02 22 63 c9 01 ab cd'), { side: 'client', privateTypes: new Set([201]) })
  assert.ok(reply?.ok === true)
  const refused = decodeConvertMessage(hex('01 02 22 63 c9 01 ab cd'), { side: 'client' })
  assert.ok(refused?.ok === false && refused.failure.action === 'reply' && refused.failure.reply.code === 2)
})

test('client side rejects converter-only mistakes: Info, Connect, Cookie in a reply → Error 2', () => {
  for (const h of ['01 02 22 63 01 01 00 00', vec(4), '01 03 22 63 16 02 00 00 c0 c1 c2 c3']) {
    const r = decodeConvertMessage(hex(h), { side: 'client' })
    assert.ok(r?.ok === false && r.failure.action === 'reply' && r.failure.reply.code === 2, h)
  }
  const bad = decodeConvertMessage(hex('01 03 22 63 15 02 00 00 1e 00 05 00'), { side: 'client' })
  assert.ok(bad?.ok === false && bad.failure.action === 'reply' && bad.failure.reply.code === 1)
})

test('incomplete input is "need more", never a failure', () => {
  const full = hex(vec(7))
  for (let n = 0; n < full.length; n++) assert.equal(decodeConvertMessage(full.subarray(0, n), { side: 'converter' }), undefined)
})
