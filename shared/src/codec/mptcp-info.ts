/**
 * Pure decoders of the kernel's MPTCP socket-option structs (include/uapi/linux/mptcp.h,
 * little-endian; layouts verified on Linux 6.18, see docs/mptcp-socket-layer.md).
 *
 * `struct mptcp_info` (MPTCP_INFO) grew over time; the kernel copies `min(user, kernel)` bytes and
 * reports the length, so fields past the returned length are `undefined`:
 *
 * | off | field | since |
 * |---|---|---|
 * | 0–5 | u8 subflows (extra ones only), add_addr_signal, add_addr_accepted, subflows_max, add_addr_signal_max, add_addr_accepted_max | 5.6 (40 B) |
 * | 8/12 | u32 flags (bit0 FALLBACK, bit1 REMOTE_KEY_RECEIVED) / token | 5.6 |
 * | 16/24/32 | u64 write_seq / snd_una / rcv_nxt | 5.6 |
 * | 40–42 | u8 local_addr_used, local_addr_max, csum_enabled | 48 B |
 * | 44 | u32 retransmits | 80 B |
 * | 48/56/64/72 | u64 bytes_retrans / bytes_sent / bytes_received / bytes_acked | 80 B |
 * | 80/81 | u8 subflows_total / endp_add_addr_max (?) | 88 B |
 * | 84/88/92 | u32 last_data_sent / last_data_recv / last_ack_recv (ms ago) | 96 B |
 *
 * `struct mptcp_full_info` (MPTCP_FULL_INFO, 136 B) is a 40-byte header followed by mptcp_info:
 * u32 size_tcpinfo_kernel@0, size_tcpinfo_user@4, size_sfinfo_kernel@8, size_sfinfo_user@12,
 * num_subflows@16, size_arrays_user@20; u64 user pointers subflow_info@24 and tcp_info@32. The
 * kernel fills two caller-provided arrays: `mptcp_subflow_info` (264 B: u32 id@0, local
 * sockaddr_storage@8, remote@136) and `tcp_info`, strides `size_*_user` (clamped by the kernel).
 */
import { decodeSockaddr } from './sockaddr.ts'
import { decodeTcpInfo, StructView, type TcpInfo } from './tcp-info.ts'

export const MptcpInfoFlag = {
  Fallback: 0x1,
  RemoteKeyReceived: 0x2
} as const
export type MptcpInfoFlag = typeof MptcpInfoFlag[keyof typeof MptcpInfoFlag]

/** The 5.6 layout, always present. */
export const MPTCP_INFO_MIN_BYTES = 40
/** Size on Linux 6.18. */
export const MPTCP_INFO_BYTES = 96
export const MPTCP_FULL_INFO_HEADER_BYTES = 40
export const MPTCP_FULL_INFO_BYTES = MPTCP_FULL_INFO_HEADER_BYTES + MPTCP_INFO_BYTES
export const MPTCP_SUBFLOW_INFO_BYTES = 264

export interface MptcpInfo {
  /** Bytes the kernel returned (feature detection). */
  length: number
  /** Extra subflows (0 = only the initial one). Prefer `subflowsTotal` where defined. */
  subflows: number
  addAddrSignal: number
  addAddrAccepted: number
  subflowsMax: number
  addAddrSignalMax: number
  addAddrAcceptedMax: number
  flags: number
  fallback: boolean
  remoteKeyReceived: boolean
  token: number
  writeSeq: bigint
  sndUna: bigint
  rcvNxt: bigint
  localAddrUsed: number | undefined
  localAddrMax: number | undefined
  csumEnabled: boolean | undefined
  retransmits: number | undefined
  bytesRetrans: number | undefined
  bytesSent: number | undefined
  bytesReceived: number | undefined
  bytesAcked: number | undefined
  /** All subflows, the initial one included. */
  subflowsTotal: number | undefined
  endpAddAddrMax: number | undefined
  lastDataSentMs: number | undefined
  lastDataRecvMs: number | undefined
  lastAckRecvMs: number | undefined
}

/** Decode `struct mptcp_info`; `undefined` when shorter than the 5.6 layout (40 bytes). */
export function decodeMptcpInfo (bytes: Uint8Array): MptcpInfo | undefined {
  if (bytes.byteLength < MPTCP_INFO_MIN_BYTES) return undefined
  const s = new StructView(bytes)
  const u8 = (off: number): number => s.u8(off) ?? 0
  const flags = s.u32(8) ?? 0
  const csum = s.u8(42)
  return {
    length: s.length,
    subflows: u8(0),
    addAddrSignal: u8(1),
    addAddrAccepted: u8(2),
    subflowsMax: u8(3),
    addAddrSignalMax: u8(4),
    addAddrAcceptedMax: u8(5),
    flags,
    fallback: (flags & MptcpInfoFlag.Fallback) !== 0,
    remoteKeyReceived: (flags & MptcpInfoFlag.RemoteKeyReceived) !== 0,
    token: s.u32(12) ?? 0,
    writeSeq: s.u64Big(16) ?? 0n,
    sndUna: s.u64Big(24) ?? 0n,
    rcvNxt: s.u64Big(32) ?? 0n,
    localAddrUsed: s.u8(40),
    localAddrMax: s.u8(41),
    csumEnabled: csum === undefined ? undefined : csum !== 0,
    retransmits: s.u32(44),
    bytesRetrans: s.u64(48),
    bytesSent: s.u64(56),
    bytesReceived: s.u64(64),
    bytesAcked: s.u64(72),
    subflowsTotal: s.u8(80),
    endpAddAddrMax: s.u8(81),
    lastDataSentMs: s.u32(84),
    lastDataRecvMs: s.u32(88),
    lastAckRecvMs: s.u32(92)
  }
}

export interface MptcpFullInfoHeader {
  sizeTcpInfoKernel: number
  sizeTcpInfoUser: number
  sizeSfInfoKernel: number
  sizeSfInfoUser: number
  /** Subflows the connection has (may exceed the slots the caller provided). */
  numSubflows: number
  sizeArraysUser: number
}

export function decodeMptcpFullInfoHeader (bytes: Uint8Array): MptcpFullInfoHeader | undefined {
  if (bytes.byteLength < MPTCP_FULL_INFO_HEADER_BYTES) return undefined
  const s = new StructView(bytes)
  const u32 = (off: number): number => s.u32(off) ?? 0
  return {
    sizeTcpInfoKernel: u32(0),
    sizeTcpInfoUser: u32(4),
    sizeSfInfoKernel: u32(8),
    sizeSfInfoUser: u32(12),
    numSubflows: u32(16),
    sizeArraysUser: u32(20)
  }
}

/** One subflow: its `mptcp_subflow_info` joined with its `tcp_info`. */
export interface MptcpSubflow {
  /** Per-connection subflow counter (`subflow_id`): 1 = the initial subflow, joins count up. */
  id: number
  family: 4 | 6
  localAddress: string
  localPort: number
  remoteAddress: string
  remotePort: number
  rttUs: number
  /** Sender-side per-link accounting: these sum to the MPTCP-level bytes acked. */
  bytesAcked: number | undefined
  /** Receiver-side per-link accounting. */
  bytesReceived: number | undefined
  /** Every transmission attempt (retransmissions included). */
  bytesSent: number | undefined
  bytesRetrans: number | undefined
  /** `tcpi_total_retrans`. */
  retransmits: number
  sndCwnd: number
  state: number
  tcpInfo: TcpInfo
}

export interface MptcpFullInfo {
  info: MptcpInfo
  header: MptcpFullInfoHeader
  /** Subflows the kernel reported; `subflows.length` is smaller only if the arrays were too short. */
  numSubflows: number
  subflows: MptcpSubflow[]
}

/**
 * Decode an MPTCP_FULL_INFO result: `header` is the optval the kernel wrote back (at least 40
 * bytes; the embedded mptcp_info follows), `subflowInfo` and `tcpInfo` the two arrays it filled.
 * `undefined` when the header or the embedded mptcp_info is too short.
 */
export function decodeMptcpFullInfo (header: Uint8Array, subflowInfo: Uint8Array, tcpInfo: Uint8Array): MptcpFullInfo | undefined {
  const h = decodeMptcpFullInfoHeader(header)
  if (h === undefined) return undefined
  const info = decodeMptcpInfo(header.subarray(MPTCP_FULL_INFO_HEADER_BYTES))
  if (info === undefined) return undefined
  // Bounded by the bytes actually provided, whatever the header claims.
  const count = Math.min(h.numSubflows, h.sizeArraysUser, slots(subflowInfo, h.sizeSfInfoUser), slots(tcpInfo, h.sizeTcpInfoUser))
  const subflows: MptcpSubflow[] = []
  for (let i = 0; i < count; i++) {
    const sf = decodeSubflow(
      slice(subflowInfo, i, h.sizeSfInfoUser),
      slice(tcpInfo, i, h.sizeTcpInfoUser)
    )
    if (sf !== undefined) subflows.push(sf)
  }
  return { info, header: h, numSubflows: h.numSubflows, subflows }
}

function slots (bytes: Uint8Array, stride: number): number {
  return stride > 0 ? Math.floor(bytes.byteLength / stride) : 0
}

function slice (bytes: Uint8Array, index: number, stride: number): Uint8Array {
  const start = index * stride
  if (stride <= 0 || start + stride > bytes.byteLength) return new Uint8Array(0)
  return bytes.subarray(start, start + stride)
}

/** Join one `mptcp_subflow_info` with its `tcp_info`; `undefined` if either is unusable. */
export function decodeSubflow (sfInfo: Uint8Array, tcpInfoBytes: Uint8Array): MptcpSubflow | undefined {
  if (sfInfo.byteLength < MPTCP_SUBFLOW_INFO_BYTES) return undefined
  const local = decodeSockaddr(sfInfo.subarray(8, 136))
  const remote = decodeSockaddr(sfInfo.subarray(136, 264))
  const tcp = decodeTcpInfo(tcpInfoBytes)
  if (local === undefined || remote === undefined || tcp === undefined) return undefined
  return {
    id: new StructView(sfInfo).u32(0) ?? 0,
    family: local.family,
    localAddress: local.address,
    localPort: local.port,
    remoteAddress: remote.address,
    remotePort: remote.port,
    rttUs: tcp.rttUs,
    bytesAcked: tcp.bytesAcked,
    bytesReceived: tcp.bytesReceived,
    bytesSent: tcp.bytesSent,
    bytesRetrans: tcp.bytesRetrans,
    retransmits: tcp.totalRetrans,
    sndCwnd: tcp.sndCwnd,
    state: tcp.state,
    tcpInfo: tcp
  }
}
