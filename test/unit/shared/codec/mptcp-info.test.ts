import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  decodeMptcpFullInfo, decodeMptcpInfo, decodeSubflow, MPTCP_INFO_MIN_BYTES, type MptcpInfo
} from '../../../../shared/src/codec/mptcp-info.ts'
import { decodeTcpInfo, TCP_INFO_MIN_BYTES, TcpInfoOption, type TcpInfo } from '../../../../shared/src/codec/tcp-info.ts'
import { readFixture, readMeta } from '../../../helpers/mptcp-fixtures.ts'

const meta = readMeta()

function fullInfo (prefix: string): ReturnType<typeof decodeMptcpFullInfo> {
  return decodeMptcpFullInfo(readFixture(`${prefix}-full-info`), readFixture(`${prefix}-full-info-subflows`),
    readFixture(`${prefix}-full-info-tcpinfo`))
}

/** Byte just past each length-dependent field: defined iff the returned length reaches it. */
const mptcpInfoFieldEnd: Partial<Record<keyof MptcpInfo, number>> = {
  localAddrUsed: 41,
  localAddrMax: 42,
  csumEnabled: 43,
  retransmits: 48,
  bytesRetrans: 56,
  bytesSent: 64,
  bytesReceived: 72,
  bytesAcked: 80,
  subflowsTotal: 81,
  endpAddAddrMax: 82,
  lastDataSentMs: 88,
  lastDataRecvMs: 92,
  lastAckRecvMs: 96
}
const tcpInfoFieldEnd: Partial<Record<keyof TcpInfo, number>> = {
  pacingRate: 112,
  bytesAcked: 128,
  bytesReceived: 136,
  segsOut: 140,
  segsIn: 144,
  minRttUs: 152,
  deliveryRate: 168,
  bytesSent: 208,
  bytesRetrans: 216,
  sndWnd: 232,
  rcvWnd: 236
}

test('MPTCP_INFO captured on this kernel (96 bytes): established MPTCP, two subflows, byte counters match Node', () => {
  const info = decodeMptcpInfo(readFixture('v4-client-mptcp-info'))
  assert.ok(info !== undefined)
  assert.equal(info.length, 96)
  assert.equal(info.fallback, false)
  assert.equal(info.remoteKeyReceived, true)
  assert.equal(info.subflows, 1, 'extra subflows only')
  assert.equal(info.subflowsTotal, 2)
  assert.equal(info.subflowsMax, 2)
  assert.equal(info.bytesSent, meta.v4.bytesWritten)
  assert.equal(info.bytesAcked, meta.v4.bytesWritten)
  assert.equal(info.bytesReceived, meta.v4.bytesRead)
  assert.equal(typeof info.writeSeq, 'bigint')
  assert.equal(info.writeSeq, info.sndUna, 'everything written was acked')
})

test('MPTCP_INFO from a 48-byte request (what a 5.15 kernel returns): later fields undefined', () => {
  const short = decodeMptcpInfo(readFixture('v4-client-mptcp-info-len48'))
  assert.ok(short !== undefined)
  assert.equal(short.length, 48)
  assert.equal(short.localAddrUsed, 2)
  assert.equal(short.csumEnabled, false)
  assert.equal(short.bytesAcked, undefined)
  assert.equal(short.subflowsTotal, undefined)
  assert.equal(short.lastAckRecvMs, undefined)
  assert.equal(short.token, decodeMptcpInfo(readFixture('v4-client-mptcp-info'))?.token)
})

test('MPTCP_INFO feature detection: each field is defined iff the length covers it (every length 0…96)', () => {
  const bytes = readFixture('v4-client-mptcp-info')
  const full = decodeMptcpInfo(bytes)
  assert.ok(full !== undefined)
  for (let len = 0; len <= bytes.length; len++) {
    const d = decodeMptcpInfo(bytes.subarray(0, len))
    if (len < MPTCP_INFO_MIN_BYTES) { assert.equal(d, undefined, `len ${len}`); continue }
    assert.ok(d !== undefined)
    assert.equal(d.token, full.token)
    assert.equal(d.rcvNxt, full.rcvNxt)
    for (const [field, end] of Object.entries(mptcpInfoFieldEnd)) {
      assert.equal(d[field as keyof MptcpInfo], len >= end ? full[field as keyof MptcpInfo] : undefined, `${field} at len ${len}`)
    }
  }
})

test('TCP_INFO captured on this kernel: established, SACK+timestamps, no SYN data on a normal connect', () => {
  const t = decodeTcpInfo(readFixture('v4-client-tcp-info'))
  assert.ok(t !== undefined)
  assert.equal(t.length, 280)
  assert.equal(t.state, 1)
  assert.ok((t.options & TcpInfoOption.Sack) !== 0)
  assert.ok((t.options & TcpInfoOption.Timestamps) !== 0)
  assert.equal(t.synData, false)
  assert.ok(t.rttUs > 0 && t.rttUs < 1_000_000)
  assert.ok(t.sndMss > 0 && t.sndCwnd > 0)
  assert.equal(t.bytesReceived, meta.v4.bytesRead, 'TCP_INFO on an MPTCP socket describes the initial subflow, which carried everything here')
  // The fields the relay's zero-window check reads (zero-window.ts): an idle, fully acknowledged connection.
  assert.equal(t.probes, 0)
  assert.equal(t.unacked, 0)
  assert.equal(t.notsentBytes, 0)
  assert.ok(t.lastAckRecvMs >= 0 && t.lastAckRecvMs < 3_600_000)
})

test('TCP_INFO offsets of the zero-window fields: tcpi_probes (3), tcpi_last_ack_recv (56), tcpi_notsent_bytes (144)', () => {
  const b = Buffer.alloc(232)
  b[3] = 7
  b.writeUInt32LE(123_456, 56)
  b.writeUInt32LE(98_765, 144)
  const t = decodeTcpInfo(b)
  assert.ok(t !== undefined)
  assert.equal(t.probes, 7)
  assert.equal(t.lastAckRecvMs, 123_456)
  assert.equal(t.notsentBytes, 98_765)
  assert.equal(decodeTcpInfo(b.subarray(0, 144))?.notsentBytes, undefined, 'absent on an old kernel\'s shorter struct')
})

test('TCP_INFO of a TFO no-cookie client: SYN_DATA set (0x20), no client failure', () => {
  const t = decodeTcpInfo(readFixture('tfo-client-tcp-info'))
  assert.ok(t !== undefined)
  assert.equal(t.synData, true)
  assert.equal(t.options & 0x20, 0x20)
  assert.equal(t.fastOpenClientFail, 0)
  assert.equal(t.bytesSent, 16, 'the 16-byte payload went out once, in the SYN')
})

test('TCP_INFO feature detection: < 104 bytes undefined, later fields defined iff covered', () => {
  const bytes = readFixture('v4-client-tcp-info')
  const full = decodeTcpInfo(bytes)
  assert.ok(full !== undefined)
  const at104 = decodeTcpInfo(readFixture('v4-client-tcp-info-len104'))
  assert.ok(at104 !== undefined)
  assert.equal(at104.bytesAcked, undefined)
  assert.equal(at104.totalRetrans, full.totalRetrans)
  for (let len = 0; len <= bytes.length; len += 4) {
    const d = decodeTcpInfo(bytes.subarray(0, len))
    if (len < TCP_INFO_MIN_BYTES) { assert.equal(d, undefined); continue }
    assert.ok(d !== undefined)
    assert.equal(d.sndMss, full.sndMss)
    for (const [field, end] of Object.entries(tcpInfoFieldEnd)) {
      assert.equal(d[field as keyof TcpInfo], len >= end ? full[field as keyof TcpInfo] : undefined, `${field} at len ${len}`)
    }
  }
})

test('MPTCP_FULL_INFO (client, v4): two subflows, one per local address, joined with their tcp_info', () => {
  const f = fullInfo('v4-client')
  assert.ok(f !== undefined)
  assert.equal(f.numSubflows, 2)
  assert.deepEqual(f.header,
    { sizeTcpInfoKernel: 280, sizeTcpInfoUser: 280, sizeSfInfoKernel: 264, sizeSfInfoUser: 264, numSubflows: 2, sizeArraysUser: 8 })
  assert.deepEqual(f.subflows.map((s) => s.localAddress).sort(), ['192.0.2.1', '198.51.100.1'])
  assert.deepEqual(f.subflows.map((s) => s.id), [1, 2])
  for (const s of f.subflows) {
    assert.equal(s.family, 4)
    assert.equal(s.remoteAddress, meta.v4.serverAddress)
    assert.equal(s.remotePort, meta.v4.serverPort)
    assert.equal(s.state, 1)
    assert.equal(s.rttUs, s.tcpInfo.rttUs)
  }
  assert.equal(f.subflows[0]?.localPort, meta.v4.clientLocalPort)
  assert.equal(f.info.subflowsTotal, 2)
  // Per-link accounting: subflow counters sum to the MPTCP-level ones; bytes_acked counts the SYN (+1 per subflow).
  const received = f.subflows.reduce((a, s) => a + (s.bytesReceived ?? 0), 0)
  assert.equal(received, f.info.bytesReceived)
  const acked = f.subflows.reduce((a, s) => a + (s.bytesAcked ?? 0), 0)
  assert.equal(acked - f.subflows.length, f.info.bytesAcked)
})

test('MPTCP_FULL_INFO (server, v6): subflows from both client addresses', () => {
  const f = fullInfo('v6-server')
  assert.ok(f !== undefined)
  assert.deepEqual(f.subflows.map((s) => s.remoteAddress).sort(), ['2001:db8:1::1', '2001:db8:2::1'])
  for (const s of f.subflows) {
    assert.equal(s.family, 6)
    assert.equal(s.localPort, meta.v6.serverPort)
  }
  const v6client = fullInfo('v6-client')
  assert.deepEqual(v6client?.subflows.map((s) => s.localAddress).sort(), ['2001:db8:1::1', '2001:db8:2::1'])
})

test('MPTCP_FULL_INFO decoding is bounded by the arrays it gets and never throws', () => {
  const header = readFixture('v4-client-full-info')
  const sf = readFixture('v4-client-full-info-subflows')
  const tcp = readFixture('v4-client-full-info-tcpinfo')
  assert.equal(decodeMptcpFullInfo(header.subarray(0, 39), sf, tcp), undefined)
  assert.equal(decodeMptcpFullInfo(header.subarray(0, 79), sf, tcp), undefined, 'embedded mptcp_info shorter than 40 bytes')
  assert.equal(decodeMptcpFullInfo(header, sf.subarray(0, 264), tcp)?.subflows.length, 1, 'second slot missing')
  assert.equal(decodeMptcpFullInfo(header, sf, tcp.subarray(0, 100))?.subflows.length, 0, 'tcp_info too short')
  assert.equal(decodeSubflow(new Uint8Array(264), tcp), undefined, 'AF_UNSPEC addresses')
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 600 }), fc.uint8Array({ maxLength: 600 }), (h, s, t) => {
    decodeMptcpFullInfo(h, s, t)
    decodeMptcpInfo(h)
    decodeTcpInfo(t)
  }), { numRuns: 300 })
})

test('MPTCP_FULL_INFO: a header claiming 2^32-1 subflows costs nothing beyond the arrays given', () => {
  const header = Buffer.from(readFixture('v4-client-full-info'))
  header.writeUInt32LE(0xffffffff, 16)
  header.writeUInt32LE(0xffffffff, 20)
  const f = decodeMptcpFullInfo(header, readFixture('v4-client-full-info-subflows'), readFixture('v4-client-full-info-tcpinfo'))
  assert.equal(f?.subflows.length, 2)
  assert.equal(f?.numSubflows, 0xffffffff)
})
