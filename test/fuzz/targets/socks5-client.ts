/**
 * Socks5ClientParser (socks5-client-parser.ts) on arbitrary server byte streams.
 * Input: [options][split seed][server bytes…]; options pick the destination (IPv4, IPv6, name),
 * credentials and pipelining. Asserts: feed never throws; the transcript is the same in one chunk,
 * in seeded chunks and byte by byte; at most one failure, last, with a SOCKS5 code, and state
 * `failed` exactly then; state `connected` exactly after a `connected` event, whose leftover is the
 * untouched tail of the input and whose bound address re-encodes to itself.
 */
import { decodeReply, encodeReply } from '../../../shared/src/codec/socks5.ts'
import type { Socks5Address } from '../../../shared/src/codec/socks5.ts'
import { Socks5ClientParser } from '../../../shared/src/codec/socks5-client-parser.ts'
import type { Socks5ClientOptions } from '../../../shared/src/codec/socks5-client-parser.ts'
import { byteByByte, runClient } from '../../unit/shared/codec/socks5-test-helpers.ts'
import type { ClientTranscript } from '../../unit/shared/codec/socks5-test-helpers.ts'
import { canonical, check, checkEnding, split } from '../engine/target.ts'
import type { FuzzTarget } from '../engine/target.ts'

const addresses: readonly Socks5Address[] = [
  { type: 'ipv4', host: '192.0.2.10', port: 443 },
  { type: 'ipv6', host: '2001:db8::1', port: 80 },
  { type: 'domain', host: 'example.com', port: 8080 }
]

function checkTranscript (t: ClientTranscript, input: Buffer): void {
  checkEnding(t, 'connected', 'connected')
  const connected = t.events.find((e) => e['type'] === 'connected')
  if (connected === undefined) return
  check(input.toString('hex').endsWith(t.leftover), 'leftover is not the tail of the input')
  const bound = connected['bound'] as Socks5Address
  if (bound.type === 'domain' && !/^[\x21-\x7e]{1,255}$/.test(bound.host)) return // lenient: not re-encodable by design
  const again = decodeReply(encodeReply(0, bound))
  check(again?.ok === true && canonical(again.value.bound) === canonical(bound), 'bound address round trip changed it')
}

export const target: FuzzTarget = {
  maxLen: 2048,
  fuzz (data) {
    if (data.length < 2) return
    const o = data[0] as number
    const options: Socks5ClientOptions = {
      address: addresses[o % 3] as Socks5Address,
      pipelined: (o & 4) !== 0,
      ...((o & 8) !== 0 ? { auth: { username: 'user', password: 'secret' } } : {}),
      ...((o & 16) !== 0 ? { earlyData: Buffer.from('GET / HTTP/1.1\r\n\r\n') } : {})
    }
    check(new Socks5ClientParser(options).initial.length > 0, 'empty initial bytes')
    const input = data.subarray(2)
    const whole = runClient([input], options)
    checkTranscript(whole, input)
    const expect = canonical(whole)
    check(canonical(runClient(split(input, data[1] as number), options)) === expect, 'chunked transcript differs from one chunk')
    if (input.length <= 96) check(canonical(runClient(byteByByte(input), options)) === expect, 'byte-by-byte transcript differs from one chunk')
  }
}
