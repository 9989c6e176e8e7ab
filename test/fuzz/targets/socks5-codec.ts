/**
 * SOCKS5 message decoders (socks5.ts, socks5-address.ts) and Socks5Accumulator.
 * Input: [decoder][split seed][budget][message bytes…]. Asserts: decoders never throw and return
 * `undefined`, a SOCKS5 fault or a value with 1 ≤ bytesRead ≤ length; prefix-consistent (a prefix
 * gives `undefined` or the same fault) and blind to trailing bytes; decode(encode(v)) = v; the
 * accumulator gives the one-shot verdict however the bytes are split, never buffering above its budget.
 */
import { Socks5Accumulator } from '../../../shared/src/codec/socks5-accumulator.ts'
import type { TakeResult } from '../../../shared/src/codec/socks5-accumulator.ts'
import { decodeConnectReply } from '../../../shared/src/codec/socks5-client-parser.ts'
import {
  decodeAddress, decodeAuthRequest, decodeAuthResponse, decodeGreeting, decodeMethodSelection, decodeReply, decodeRequest,
  encodeAuthRequest, encodeAuthResponse, encodeGreeting, encodeMethodSelection, encodeReply, encodeRequest
} from '../../../shared/src/codec/socks5.ts'
import type { Decoded, Socks5Address } from '../../../shared/src/codec/socks5.ts'
import { ByteWriter } from '../../../shared/src/codec/byte-writer.ts'
import { writeAddress, addressLength } from '../../../shared/src/codec/socks5-address.ts'
import { isHybridError } from '../../../shared/src/errors.ts'
import { canonical, check, split } from '../engine/target.ts'
import type { FuzzTarget } from '../engine/target.ts'

type Decoder = (b: Uint8Array) => Decoded<unknown>

/** Each decoder with the encoder of its value (undefined: no encoder to round-trip through). */
const decoders: ReadonlyArray<{ name: string, decode: Decoder, encode?: (v: never) => Buffer | undefined }> = [
  { name: 'greeting', decode: decodeGreeting, encode: (v: { methods: number[] }) => encodeGreeting(v.methods) },
  { name: 'method', decode: decodeMethodSelection, encode: (v: { method: number }) => encodeMethodSelection(v.method) },
  { name: 'auth', decode: decodeAuthRequest, encode: (v: { username: Buffer, password: Buffer }) => encodeAuthRequest(v) },
  {
    name: 'auth-response',
    decode: decodeAuthResponse,
    encode: (v: { status: number }) => v.status <= 1 ? encodeAuthResponse(v.status === 0) : undefined
  },
  { name: 'request', decode: decodeRequest, encode: (v: { command: number, address: Socks5Address }) => encodeRequest(v) },
  {
    name: 'reply',
    decode: decodeReply,
    encode: (v: { rep: number, bound: Socks5Address }) => encodable(v.bound) ? encodeReply(v.rep, v.bound) : undefined
  },
  { name: 'connect-reply', decode: decodeConnectReply },
  { name: 'address-strict', decode: (b) => decodeAddress(b, 'strict'), encode: (v: Socks5Address) => encodeAddress(v) },
  { name: 'address-lenient', decode: (b) => decodeAddress(b, 'lenient'), encode: (v: Socks5Address) => encodable(v) ? encodeAddress(v) : undefined }
]

const budgets = [2, 7, 22, 262, 515, 1024]

/** What writeAddress accepts: lenient decoding passes any name bytes through (docs/socks5.md). */
function encodable (a: Socks5Address): boolean {
  return a.type !== 'domain' || /^[\x21-\x7e]{1,255}$/.test(a.host)
}

function encodeAddress (a: Socks5Address): Buffer {
  const w = new ByteWriter(addressLength(a))
  writeAddress(w, a)
  return w.finish()
}

function checkShape (r: Decoded<unknown>, length: number): void {
  if (r === undefined) return
  if (!r.ok) {
    check(r.fault.code.startsWith('HYBRID_ERR_SOCKS5_'), `fault code ${r.fault.code}`)
    check(Number.isInteger(r.fault.rep) && r.fault.rep >= 0 && r.fault.rep <= 255, `fault rep ${r.fault.rep}`)
    check(typeof r.fault.detail === 'string' && r.fault.detail.length > 0, 'fault without detail')
    return
  }
  check(Number.isInteger(r.bytesRead) && r.bytesRead >= 1 && r.bytesRead <= length, `bytesRead ${r.bytesRead} of ${length}`)
}

function checkPrefixes (decode: Decoder, bytes: Uint8Array, whole: Decoded<unknown>): void {
  const end = whole?.ok === true ? whole.bytesRead : bytes.length
  // Every prefix up to 8 bytes (the fixed fields), then 4 spread over the rest: bounded work per input.
  const cuts = new Set([...Array.from({ length: Math.min(end, 8) }, (_, k) => k), end - 1, end >> 1, (end * 3) >> 2, end - 2])
  for (const k of cuts) {
    if (k < 0 || k >= end) continue
    const p = decode(bytes.subarray(0, k))
    if (p === undefined) continue
    check(whole !== undefined && !whole.ok && !p.ok && p.fault.code === whole.fault.code, `prefix ${k} decided differently from the whole`)
  }
  if (whole?.ok === true) {
    const longer = decode(Buffer.concat([bytes, Buffer.from([0xaa, 0x55, 0x00])]))
    check(canonical(longer) === canonical(whole), 'trailing bytes changed the result')
  }
}

function checkRoundTrip (d: (typeof decoders)[number], whole: Decoded<unknown>): void {
  if (whole?.ok !== true || d.encode === undefined) return
  let bytes: Buffer | undefined
  try {
    bytes = (d.encode as (v: unknown) => Buffer | undefined)(whole.value)
  } catch (err) {
    check(false, `encode of a decoded ${d.name} threw ${isHybridError(err) ? err.code : String(err)}`)
  }
  if (bytes === undefined) return
  const again = d.decode(bytes)
  check(again?.ok === true && again.bytesRead === bytes.length, `re-encoded ${d.name} does not decode whole`)
  check(canonical(again.value) === canonical(whole.value), `${d.name} round trip changed ${canonical(whole.value)} to ${canonical(again.value)}`)
}

function checkAccumulator (decode: Decoder, bytes: Uint8Array, seed: number, budget: number): void {
  const acc = new Socks5Accumulator(budget)
  let t: TakeResult<unknown> = { status: 'need-more' }
  let at = 0
  for (const c of split(bytes, seed)) {
    t = acc.take(c, 0, decode, 600)
    check(acc.bufferedBytes <= budget, `buffered ${acc.bufferedBytes} above the budget ${budget}`)
    if (t.status === 'ok') {
      at += t.next
      break
    }
    if (t.status === 'fault') break
    at += c.length
  }
  const cap = Math.min(600, budget)
  const once = decode(bytes.subarray(0, cap))
  if (once === undefined) {
    const expect = bytes.length >= cap ? 'fault' : 'need-more'
    check(t.status === expect, `accumulator said ${t.status}, one-shot ${expect}`)
    if (t.status === 'fault') check(t.fault.code === 'HYBRID_ERR_SOCKS5_HANDSHAKE_TOO_LARGE', `oversize fault ${t.fault.code}`)
    return
  }
  if (!once.ok) {
    check(t.status === 'fault' && t.fault.code === once.fault.code, `accumulator ${t.status}, one-shot fault ${once.fault.code}`)
    return
  }
  check(t.status === 'ok' && canonical(t.value) === canonical(once.value), `accumulator ${t.status}, one-shot ok`)
  check(at === once.bytesRead, `accumulator consumed ${at}, message is ${once.bytesRead} bytes`)
}

export const target: FuzzTarget = {
  maxLen: 600,
  fuzz (data) {
    if (data.length < 3) return
    const d = decoders[(data[0] as number) % decoders.length] as (typeof decoders)[number]
    const bytes = data.subarray(3)
    const whole = d.decode(bytes)
    checkShape(whole, bytes.length)
    checkPrefixes(d.decode, bytes, whole)
    checkRoundTrip(d, whole)
    checkAccumulator(d.decode, bytes, data[1] as number, budgets[(data[2] as number) % budgets.length] as number)
  }
}
