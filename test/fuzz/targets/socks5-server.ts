/**
 * Socks5ServerParser (socks5-server-parser.ts) on arbitrary client byte streams.
 * Input: [options][split seed][client bytes…]; options bit 0 allowNoAuth, bit 1 allowUserPass,
 * bit 2 the credentials verdict, bit 3 a small handshake budget. Asserts: feed/authResult never throw;
 * the transcript is the same in one chunk, in seeded chunks and byte by byte; buffered bytes stay
 * within the budget; at most one failure, last, with a SOCKS5 code, and state `failed` exactly then;
 * state `done` exactly when a request was decoded, its early data being the untouched tail of the
 * input; the request re-encodes to the same request.
 */
import { decodeRequest, encodeRequest } from '../../../shared/src/codec/socks5.ts'
import { Limits } from '../../../shared/src/codec/limits.ts'
import { byteByByte, runServer } from '../../unit/shared/codec/socks5-test-helpers.ts'
import type { ServerTranscript } from '../../unit/shared/codec/socks5-test-helpers.ts'
import { canonical, check, checkEnding, split } from '../engine/target.ts'
import type { FuzzTarget } from '../engine/target.ts'
import type { Socks5Address } from '../../../shared/src/codec/socks5.ts'

function checkTranscript (t: ServerTranscript, input: Buffer, budget: number): void {
  check(t.maxBuffered <= budget, `buffered ${t.maxBuffered} above the budget ${budget}`)
  checkEnding(t, 'done', 'request')
  const request = t.events.find((e) => e['type'] === 'request')
  if (request === undefined) return
  check(input.toString('hex').endsWith(t.early), 'early data is not the tail of the input')
  const again = decodeRequest(encodeRequest({ command: request['command'] as number, address: request['address'] as Socks5Address }))
  check(again?.ok === true && canonical(again.value.address) === canonical(request['address']), 'request round trip changed the address')
}

export const target: FuzzTarget = {
  maxLen: 2048,
  fuzz (data) {
    if (data.length < 2) return
    const o = data[0] as number
    const budget = (o & 8) !== 0 ? 16 + (data[1] as number) : Limits.socks5MaxHandshakeBytes
    const options = { allowNoAuth: (o & 1) !== 0, allowUserPass: (o & 2) !== 0, maxHandshakeBytes: budget }
    const verdict = (o & 4) !== 0
    const input = data.subarray(2)
    const whole = runServer([input], options, verdict)
    checkTranscript(whole, input, budget)
    const expect = canonical({ ...whole, maxBuffered: 0 })
    const chunked = runServer(split(input, data[1] as number), options, verdict)
    checkTranscript(chunked, input, budget)
    check(canonical({ ...chunked, maxBuffered: 0 }) === expect, 'chunked transcript differs from one chunk')
    if (input.length <= 96) {
      const bytewise = runServer(byteByByte(input), options, verdict)
      check(canonical({ ...bytewise, maxBuffered: 0 }) === expect, 'byte-by-byte transcript differs from one chunk')
    }
  }
}
