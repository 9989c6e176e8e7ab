/**
 * fast-check arbitraries for valid Convert messages of each direction, and helpers shared by the
 * Convert property tests. (Not a test file: imported by convert-*.test.ts.)
 */
import fc from 'fast-check'
import { destinationFromBytes, forbiddenAddressClass } from '../../../../shared/src/codec/convert-address.ts'
import type { ConvertMessage } from '../../../../shared/src/codec/convert.ts'
import type { ConvertTlv } from '../../../../shared/src/codec/convert-tlv.ts'
import type { ConvertReader, ConvertFeedResult } from '../../../../shared/src/codec/convert-reader.ts'
import { ConvertErrorCode } from '../../../../shared/src/codec/convert-error.ts'

export const PRIVATE_TYPES: ReadonlySet<number> = new Set([200, 250])

const bytesOfLen = (lens: fc.Arbitrary<number>): fc.Arbitrary<Uint8Array> =>
  lens.chain((n) => fc.uint8Array({ minLength: n, maxLength: n }))
const words = (min: number, max: number, extra = 0): fc.Arbitrary<Uint8Array> =>
  bytesOfLen(fc.integer({ min, max }).map((w) => w * 4 + extra))

const destination = fc.oneof(
  fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, ...b)),
  fc.uint8Array({ minLength: 16, maxLength: 16 })
).filter((b) => forbiddenAddressClass(b) === undefined).map(destinationFromBytes)

const tcpOption = fc.record({
  kind: fc.integer({ min: 2, max: 255 }).filter((k) => k !== 29),
  data: fc.uint8Array({ maxLength: 10 })
}).map((o) => (o.kind === 34 ? { kind: 34, data: new Uint8Array(0) } : o))

const connect: fc.Arbitrary<ConvertTlv> = fc.record({
  port: fc.integer({ min: 1, max: 65535 }),
  destination,
  options: fc.uniqueArray(tcpOption, { maxLength: 6, selector: (o) => o.kind })
}).map((c) => ({ type: 10 as const, ...c }))

const cookie: fc.Arbitrary<ConvertTlv> = words(1, 8).map((c) => ({ type: 22 as const, cookie: c }))
const privateTlv = (code: number): fc.Arbitrary<ConvertTlv> => words(0, 6, 2).map((value) => ({ type: 'private' as const, code, value }))
const privates: fc.Arbitrary<ConvertTlv[]> = fc.subarray([200, 250]).chain((codes) => fc.tuple(...codes.map(privateTlv)))

/** Messages a client may send: Info or Connect, optionally a Cookie and configured private TLVs. */
export const clientMessage: fc.Arbitrary<ConvertMessage> = fc.tuple(
  fc.oneof(fc.constant<ConvertTlv>({ type: 1 }), connect), fc.option(cookie, { nil: undefined }), privates
).map(([main, c, p]) => [main, ...(c === undefined ? [] : [c]), ...p])
  .chain((all) => fc.shuffledSubarray(all, { minLength: all.length }))
  .map((tlvs) => ({ tlvs }))

const errorCode = fc.constantFrom(...Object.values(ConvertErrorCode), 192, 255)
const replyTlvs: fc.Arbitrary<ConvertTlv>[] = [
  words(0, 10).map((options) => ({ type: 20 as const, options })),
  fc.uniqueArray(fc.integer({ min: 3, max: 255 }), { maxLength: 12 }).map((kinds) => ({ type: 21 as const, kinds })),
  fc.record({ code: errorCode, value: words(0, 20, 1) }).map((e) => ({ type: 30 as const, ...e }))
]

/** Messages a converter may send: any subset of Extended TCP Header, Supported, Error, private TLVs. */
export const converterMessage: fc.Arbitrary<ConvertMessage> = fc.tuple(fc.tuple(...replyTlvs), privates)
  .chain(([r, p]) => fc.shuffledSubarray([...r, ...p]))
  .map((tlvs) => ({ tlvs }))

/** Replaces every byte array with a plain number array so Buffer and Uint8Array views compare equal. */
export function plain (x: unknown): unknown {
  if (x instanceof Uint8Array) return Array.from(x)
  if (Array.isArray(x)) return x.map(plain)
  if (x !== null && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, plain(v)]))
  return x
}

/** Splits bytes at the given (sorted, deduplicated) cut points. */
export function splitAt (bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts)].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b)
  const parts: Uint8Array[] = []
  let prev = 0
  for (const c of [...points, bytes.length]) {
    parts.push(bytes.subarray(prev, c))
    prev = c
  }
  return parts
}

export interface FeedOutcome {
  readonly result: ConvertFeedResult | undefined
  /** Application bytes returned: `rest` of the final chunk plus every later chunk. */
  readonly appData: Uint8Array
  readonly maxBuffered: number
}

/** Feeds chunks until the reader finishes; later chunks count as application data. */
export function feedAll (reader: ConvertReader, chunks: readonly Uint8Array[]): FeedOutcome {
  let result: ConvertFeedResult | undefined
  const app: number[] = []
  let maxBuffered = 0
  for (const chunk of chunks) {
    if (result !== undefined) {
      app.push(...chunk)
      continue
    }
    const r = reader.feed(chunk)
    maxBuffered = Math.max(maxBuffered, reader.buffered)
    if (r.status === 'need-more') continue
    result = r
    if (r.status === 'message') app.push(...r.rest)
  }
  return { result, appData: Uint8Array.from(app), maxBuffered }
}
