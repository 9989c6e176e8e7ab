import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { ConvertReader, createClientSideReader, createConverterSideReader } from '../../../../shared/src/codec/convert-reader.ts'
import { buildConvertFailureReply, decodeConvertMessage, encodeConvertMessage } from '../../../../shared/src/codec/convert.ts'
import type { ConvertDecodeOptions } from '../../../../shared/src/codec/convert.ts'
import { Limits } from '../../../../shared/src/codec/limits.ts'
import { hex, negativeVectors, positiveVectors } from '../../../fixtures/convert-vectors.ts'
import { PRIVATE_TYPES, clientMessage, converterMessage, feedAll, plain, splitAt } from './convert-arbitraries.ts'

const APP = Buffer.from('APPDATA\x00\x01')

interface Case { readonly name: string, readonly bytes: Buffer, readonly options: ConvertDecodeOptions }
const cases: Case[] = [
  ...positiveVectors.map((v) => ({ name: v.name, bytes: hex(v.hex), options: { side: v.side } })),
  ...negativeVectors.map((v) => ({ name: v.name, bytes: hex(v.hex), options: { side: 'converter' as const } }))
]

/** The one-shot verdict every chunking must reproduce. */
function expected (c: Case): unknown {
  const r = decodeConvertMessage(Buffer.concat([c.bytes, APP]), c.options)
  assert.ok(r !== undefined, c.name)
  return plain(r.ok ? { status: 'message', message: r.message } : { status: 'failed', failure: r.failure })
}

function check (c: Case, chunks: Uint8Array[], want: unknown): void {
  const out = feedAll(new ConvertReader(c.options), chunks)
  assert.ok(out.result !== undefined, c.name)
  const got = out.result.status === 'message' ? { status: 'message', message: out.result.message } : out.result
  assert.deepEqual(plain(got), want, c.name)
  if (out.result.status === 'message') assert.deepEqual(Buffer.from(out.appData), APP, `${c.name}: application data`)
  assert.ok(out.maxBuffered <= c.bytes.length)
}

test('every vector, split at every byte (2- and 3-part, byte by byte), with trailing application data', () => {
  for (const c of cases) {
    const input = Buffer.concat([c.bytes, APP])
    const want = expected(c)
    check(c, [input], want)
    check(c, splitAt(input, Array.from(input.keys())), want)
    for (let i = 1; i < input.length; i++) {
      check(c, splitAt(input, [i]), want)
      for (let j = i + 1; j < input.length; j++) check(c, splitAt(input, [i, j]), want)
    }
  }
})

test('header failures are decided on the 4 header bytes, before any body arrives', () => {
  const r = createConverterSideReader().feed(hex('02 ff 22 63'))
  assert.ok(r.status === 'failed' && r.failure.action === 'reply' && r.failure.reply.code === 0)
  const z = createConverterSideReader().feed(hex('47 45 54 20 2f'))
  assert.ok(z.status === 'failed' && z.failure.action === 'reset')
})

test('the reader is spent after a verdict: further feeds read nothing', () => {
  const reader = createClientSideReader()
  const r = reader.feed(hex('01 01 22 63 ff'))
  assert.ok(r.status === 'message' && r.bytesConsumed === 4 && r.rest.length === 1)
  assert.equal(reader.state, 'done')
  assert.deepEqual(reader.feed(hex('01 01 22 63')), { status: 'closed' })
})

test('a message that announces 255 words is buffered, never more', () => {
  const reader = createConverterSideReader()
  assert.equal(reader.feed(hex('01 ff 22 63')).status, 'need-more')
  assert.equal(reader.missing, 1016)
  const r = reader.feed(new Uint8Array(4096))
  assert.ok(r.status === 'failed')
  assert.equal(reader.buffered, Limits.convertMaxMessageBytes)
})

test('property: decode(encode(x)) = x for both directions', () => {
  fc.assert(fc.property(clientMessage, (m) => {
    const r = decodeConvertMessage(encodeConvertMessage(m), { side: 'converter', privateTypes: PRIVATE_TYPES })
    assert.ok(r?.ok === true, JSON.stringify(r))
    assert.deepEqual(plain(r.message), plain(m))
  }), { numRuns: 500 })
  fc.assert(fc.property(converterMessage, (m) => {
    const r = decodeConvertMessage(encodeConvertMessage(m), { side: 'client', privateTypes: PRIVATE_TYPES })
    assert.ok(r?.ok === true, JSON.stringify(r))
    assert.deepEqual(plain(r.message), plain(m))
  }), { numRuns: 500 })
})

test('property: chunking does not change the result, and application data comes back untouched', () => {
  const cuts = fc.array(fc.nat({ max: 1100 }), { maxLength: 8 })
  fc.assert(fc.property(clientMessage, fc.uint8Array({ maxLength: 64 }), cuts, (m, app, at) => {
    const input = encodeConvertMessage(m, app)
    const out = feedAll(new ConvertReader({ side: 'converter', privateTypes: PRIVATE_TYPES }), splitAt(input, at))
    assert.ok(out.result?.status === 'message')
    assert.deepEqual(plain(out.result.message), plain(m))
    assert.deepEqual(Array.from(out.appData), Array.from(app))
  }), { numRuns: 500 })
})

test('property: feed never throws, buffers at most the budget, and every reply is a valid Error message', () => {
  const side = fc.constantFrom('converter' as const, 'client' as const)
  const junk = fc.oneof(
    fc.uint8Array({ maxLength: 1200 }),
    fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 1100 })).map(([w, b]) => Uint8Array.of(1, w, 0x22, 0x63, ...b))
  )
  fc.assert(fc.property(side, junk, fc.array(fc.nat({ max: 1200 }), { maxLength: 10 }), (s, bytes, at) => {
    const reader = new ConvertReader({ side: s })
    for (const chunk of splitAt(bytes, at)) {
      const r = reader.feed(chunk)
      assert.ok(reader.buffered <= Limits.convertMaxMessageBytes)
      if (r.status !== 'failed') continue
      const reply = buildConvertFailureReply(r.failure)
      if (reply === undefined) break
      assert.ok(reply.length <= Limits.convertMaxMessageBytes)
      const back = decodeConvertMessage(reply, { side: 'client' })
      assert.ok(r.failure.action === 'reply' && back?.ok === true && back.message.tlvs[0]?.type === 30 && back.message.tlvs[0].code === r.failure.reply.code)
      break
    }
  }), { numRuns: 2000 })
})
