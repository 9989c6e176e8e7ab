/**
 * Writes the seed inputs of every fuzz target into test/fuzz/corpus/<target>/ (file name = SHA-1 of
 * the content), from the RFC 8803 vectors, the SOCKS5 encoders, the convert arbitraries and the
 * compose configurations. The committed corpus is these seeds merged with a campaign's finds:
 *
 *   node --import tsx test/fuzz/seed-corpus.ts
 */
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { encodeCapsule, encodeDatagramCapsule } from '../../shared/src/codec/capsule.ts'
import { connectUdpPath, ConnectUdpPathPrefix } from '../../shared/src/codec/connect-udp.ts'
import { encodeConvertMessage } from '../../shared/src/codec/convert.ts'
import {
  encodeAuthRequest, encodeAuthResponse, encodeGreeting, encodeMethodSelection, encodeReply, encodeRequest
} from '../../shared/src/codec/socks5.ts'
import type { Socks5Address } from '../../shared/src/codec/socks5.ts'
import { encodePipelinedHandshake } from '../../shared/src/codec/socks5-client-parser.ts'
import { hex, negativeVectors, positiveVectors } from '../fixtures/convert-vectors.ts'
import { clientMessage, converterMessage } from '../unit/shared/codec/convert-arbitraries.ts'

const root = fileURLToPath(new URL('./corpus/', import.meta.url))
const addresses: Socks5Address[] = [
  { type: 'ipv4', host: '192.0.2.10', port: 443 },
  { type: 'ipv6', host: '2001:db8::1', port: 80 },
  { type: 'domain', host: 'example.com', port: 8080 }
]
const auth = { username: 'user', password: 'secret' }

function write (target: string, ...parts: Uint8Array[]): void {
  const data = Buffer.concat(parts)
  const dir = join(root, target)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, createHash('sha1').update(data).digest('hex')), data)
}

const b = (...bytes: number[]): Buffer => Buffer.from(bytes)

// socks5-codec: [decoder][split seed][budget] + message
const messages: Array<[number, Buffer]> = [
  [0, encodeGreeting([0, 2])], [1, encodeMethodSelection(2)], [2, encodeAuthRequest(auth)], [3, encodeAuthResponse(true)],
  ...addresses.map((a): [number, Buffer] => [4, encodeRequest({ address: a })]),
  ...addresses.map((a): [number, Buffer] => [5, encodeReply(0, a)]),
  [6, encodeReply(5)], [7, encodeRequest({ address: addresses[2] as Socks5Address }).subarray(3)]
]
for (const [i, m] of messages) write('socks5-codec', b(i, 7, 3), m)

// socks5-server: [options][split seed] + client bytes
for (const a of addresses) {
  write('socks5-server', b(3, 0), encodePipelinedHandshake({ address: a, auth, earlyData: Buffer.from('GET / HTTP/1.1\r\n\r\n') }))
  write('socks5-server', b(5, 9), encodePipelinedHandshake({ address: a }))
}
write('socks5-server', b(3, 1), encodeGreeting([0, 2]), encodeAuthRequest(auth),
  encodeRequest({ command: 2, address: addresses[0] as Socks5Address }))
write('socks5-server', b(1, 0), b(4, 1, 0, 80, 192, 0, 2, 1, 0)) // SOCKS4

// socks5-client: [options][split seed] + server bytes
for (const [i, a] of addresses.entries()) {
  write('socks5-client', b(i | 4, 0), encodeMethodSelection(0), encodeReply(0, a), Buffer.from('HTTP/1.1 200 OK\r\n'))
  write('socks5-client', b(i | 8, 5), encodeMethodSelection(2), encodeAuthResponse(true), encodeReply(0, a))
}
write('socks5-client', b(0, 0), b(5, 0, 5, 5))
write('socks5-client', b(8, 0), encodeMethodSelection(2), encodeAuthResponse(false))

// convert: [options][split seed] + message (+ application data)
for (const v of positiveVectors) write('convert', b(v.side === 'client' ? 1 : 0, 3), hex(v.hex), Buffer.from('app'))
for (const v of negativeVectors) write('convert', b(0, 0), hex(v.hex))
for (const m of fc.sample(clientMessage, { seed: 1, numRuns: 20 })) write('convert', b(2, 5), encodeConvertMessage(m))
for (const m of fc.sample(converterMessage, { seed: 2, numRuns: 20 })) write('convert', b(3, 7), encodeConvertMessage(m))

// udp-wire: [selector: even capsules, odd :path][split seed] + bytes
write('udp-wire', b(0, 3), encodeDatagramCapsule(Buffer.from('hello')), encodeCapsule(0x17, b()), encodeDatagramCapsule(Buffer.alloc(300, 7), 2))
write('udp-wire', b(0, 0), encodeDatagramCapsule(Buffer.alloc(0)), b(0x00, 0x80, 0x00, 0xff, 0xff))
write('udp-wire', b(2, 9), encodeCapsule(0x29 * 3 + 0x17, Buffer.alloc(40, 1)), b(0x00, 0x05, 0x00))
for (const [host, port] of [['192.0.2.6', 443], ['2001:db8::42', 443], ['www.example.com', 53]] as const) {
  write('udp-wire', b(1, 0), Buffer.from(connectUdpPath(host, port).slice(ConnectUdpPathPrefix.length), 'latin1'))
}
write('udp-wire', b(1, 0), Buffer.from('fe80%3A%3A1%25eth0/443/', 'latin1'))

// config: [daemon] + YAML
for (const mode of ['socks5', 'convert', 'transparent']) {
  write('config', b(0), readFileSync(new URL(`../../deploy/compose/${mode}/cpe.yaml`, import.meta.url)))
  write('config', b(1), readFileSync(new URL(`../../deploy/compose/${mode}/concentrator.yaml`, import.meta.url)))
}
write('config', b(0), Buffer.from('a: &x [*x]\n'))
write('config', b(1), Buffer.from('log: { level: debug }\nlimits: { idleTimeoutMs: 1e3 }\n'))

// mgmt: [route][content type][uplink name] + body
write('mgmt', b(0, 0, 1), Buffer.from('{"mode":"backup","admin":"up"}'))
write('mgmt', b(0, 1, 0), Buffer.from('{"admin":"down"}'))
write('mgmt', b(1, 1, 0), Buffer.from('{"mode":"load-balancing"}'))
write('mgmt', b(2, 0, 0), Buffer.from('{}'))
write('mgmt', b(3, 3, 0), Buffer.alloc(0))
