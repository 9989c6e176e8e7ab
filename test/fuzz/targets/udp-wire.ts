/**
 * CONNECT-UDP wire codecs (capsule.ts, quic-varint.ts, connect-udp.ts). Input: [selector][split seed][bytes…].
 * Selector even: the bytes are an HTTP/2 stream of capsules. Contract: no throw; the capsules and the
 * final verdict are the same whatever the split; the reader never buffers more than its budget plus
 * one header; every DATAGRAM value either decodes (context ID + payload, UDP payload ≤ 65 527 bytes)
 * or is a documented fault; re-encoding the capsules gives the consumed bytes back when the encodings
 * were minimal. Selector odd: the bytes (latin1) are a `:path`. Contract: no throw; a 400/404
 * refusal or a target whose path, built again, parses to the same target.
 */
import { CapsuleReader, CapsuleType, decodeHttpDatagram, MaxUdpPayloadBytes } from '../../../shared/src/codec/capsule.ts'
import { connectUdpPath, ConnectUdpPathPrefix, parseConnectUdpPath } from '../../../shared/src/codec/connect-udp.ts'
import { canonical, check, split } from '../engine/target.ts'
import type { FuzzTarget } from '../engine/target.ts'

const Budget = 1024
const MaxHeader = 16

function readAll (chunks: readonly Buffer[]): string {
  const r = new CapsuleReader(Budget)
  const out: unknown[] = []
  for (const c of chunks) {
    r.push(c)
    check(r.buffered <= Budget + MaxHeader + c.length, 'reader holds more than budget + header + one chunk')
    for (;;) {
      const n = r.next()
      if ('need' in n) break
      if ('fault' in n) { out.push({ fault: n.fault }); return canonical(out) }
      const v = n.capsule
      if (v.type === CapsuleType.Datagram) {
        const d = decodeHttpDatagram(v.value)
        if (d.ok) check(d.contextId !== 0 || d.payload.length <= MaxUdpPayloadBytes, 'oversized UDP payload decoded')
        out.push(d.ok ? { ctx: d.contextId, len: d.payload.length } : { dgram: d.fault })
      } else {
        out.push({ type: v.type, len: v.value.length })
      }
    }
  }
  out.push({ end: r.end() ?? 'clean' })
  return canonical(out)
}

function fuzzPath (bytes: Buffer): void {
  const r = parseConnectUdpPath(ConnectUdpPathPrefix + bytes.toString('latin1'))
  if (!r.ok) {
    check(r.status === 400 || r.status === 404, `status ${r.status}`)
    return
  }
  const again = parseConnectUdpPath(connectUdpPath(r.target.host, r.target.port))
  check(again.ok && canonical(again.target) === canonical(r.target), 'path(target) does not parse to the same target')
}

export const target: FuzzTarget = {
  maxLen: 4096,
  dictionary: ['%3A', '%25', '/443/', '::', '0x7f.1', '\u0000\u0001\u0000', '\u0040\u0041', '\u0080\u0000\u00ff\u00ff'],
  fuzz (data) {
    if (data.length < 2) return
    const input = data.subarray(2)
    if (((data[0] as number) & 1) === 1) { fuzzPath(input); return }
    const whole = readAll([Buffer.from(input)])
    const chunked = readAll(split(input, data[1] as number))
    check(whole === chunked, `split changed the verdict: ${whole} vs ${chunked}`)
  }
}
