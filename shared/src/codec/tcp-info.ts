/**
 * Pure decoder of the kernel's `struct tcp_info` (getsockopt TCP_INFO, and each element of
 * MPTCP_FULL_INFO / MPTCP_TCPINFO). Little-endian, x86_64/arm64 layout (include/uapi/linux/tcp.h).
 *
 * The kernel copies `min(user length, its own size)`; 6.18 has 280 bytes, every kernel since 2.6
 * at least 104. Fields up to `total_retrans` (offset 100) are always present; every later field is
 * `undefined` when the returned length does not cover it (feature detection by length, never by
 * kernel version).
 *
 * | off | field | off | field |
 * |---|---|---|---|
 * | 0 | u8 state | 68 | u32 rtt (µs) |
 * | 1 | u8 ca_state | 72 | u32 rttvar (µs) |
 * | 2 | u8 retransmits | 76 | u32 snd_ssthresh |
 * | 5 | u8 options (TcpInfoOption) | 80 | u32 snd_cwnd |
 * | 6 | u4 snd_wscale, u4 rcv_wscale | 100 | u32 total_retrans |
 * | 7 | bit0 delivery_rate_app_limited, bits1-2 fastopen_client_fail | 104 | u64 pacing_rate |
 * | 8 | u32 rto (µs) | 120/128 | u64 bytes_acked / bytes_received |
 * | 16/20 | u32 snd_mss / rcv_mss | 136/140 | u32 segs_out / segs_in |
 * | 24 | u32 unacked | 148 | u32 min_rtt (µs) |
 * | 32 | u32 lost | 160 | u64 delivery_rate (bytes/s) |
 * | 44/52 | u32 last_data_sent / last_data_recv (ms) | 200/208 | u64 bytes_sent / bytes_retrans |
 * | 60 | u32 pmtu | 228/232 | u32 snd_wnd / rcv_wnd |
 */

export const TcpInfoOption = {
  Timestamps: 0x1,
  Sack: 0x2,
  Wscale: 0x4,
  Ecn: 0x8,
  EcnSeen: 0x10,
  /** The SYN carried data that the peer acknowledged (TCP Fast Open). */
  SynData: 0x20
} as const
export type TcpInfoOption = typeof TcpInfoOption[keyof typeof TcpInfoOption]

/** `tcpi_fastopen_client_fail` (2 bits). */
export const FastOpenClientFail = {
  Unspecified: 0,
  /** No cookie cached: the SYN asked for one and the data followed the handshake. */
  NoCookie: 1,
  /** The SYN carried data but the SYN-ACK did not acknowledge it (server ignored it). */
  SynDataNotAcked: 2,
  /** The SYN with data was retransmitted (middlebox dropped it?). */
  SynRetransmitted: 3
} as const
export type FastOpenClientFail = typeof FastOpenClientFail[keyof typeof FastOpenClientFail]

/** Length of the 2.6-era struct: everything below it is always present. */
export const TCP_INFO_MIN_BYTES = 104
/** Size on Linux 6.18: pass at least this much to get every field this decoder knows. */
export const TCP_INFO_BYTES = 280

export interface TcpInfo {
  /** Bytes the kernel returned (feature detection). */
  length: number
  /** TCP_ESTABLISHED = 1, SYN_SENT = 2, SYN_RECV = 3, … CLOSE = 7, LISTEN = 10. */
  state: number
  caState: number
  /** Current consecutive retransmissions of the head segment. */
  retransmits: number
  /** tcpi_probes: unanswered zero-window probes (or keepalive probes) outstanding. */
  probes: number
  options: number
  synData: boolean
  sndWscale: number
  rcvWscale: number
  deliveryRateAppLimited: boolean
  fastOpenClientFail: number
  rtoUs: number
  sndMss: number
  rcvMss: number
  unacked: number
  lost: number
  lastDataSentMs: number
  lastDataRecvMs: number
  /** tcpi_last_ack_recv: ms since the peer's last ACK (a zero-window probe's answer counts). */
  lastAckRecvMs: number
  pmtu: number
  rttUs: number
  rttVarUs: number
  sndSsthresh: number
  sndCwnd: number
  totalRetrans: number
  pacingRate: number | undefined
  bytesAcked: number | undefined
  bytesReceived: number | undefined
  segsOut: number | undefined
  segsIn: number | undefined
  /** tcpi_notsent_bytes (Linux ≥ 4.6): bytes queued in the kernel and not yet sent. */
  notsentBytes: number | undefined
  minRttUs: number | undefined
  /** Bytes per second. */
  deliveryRate: number | undefined
  /** Every transmission attempt, retransmissions included (do not use for goodput). */
  bytesSent: number | undefined
  bytesRetrans: number | undefined
  sndWnd: number | undefined
  rcvWnd: number | undefined
}

/** Little-endian field reader that yields `undefined` past the returned length. */
export class StructView {
  readonly #dv: DataView
  readonly length: number

  constructor (bytes: Uint8Array) {
    this.#dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    this.length = bytes.byteLength
  }

  u8 (off: number): number | undefined {
    return off + 1 <= this.length ? this.#dv.getUint8(off) : undefined
  }

  u32 (off: number): number | undefined {
    return off + 4 <= this.length ? this.#dv.getUint32(off, true) : undefined
  }

  /** A u64 counter as a number (exact below 2^53, i.e. 9 PB). */
  u64 (off: number): number | undefined {
    return off + 8 <= this.length ? Number(this.#dv.getBigUint64(off, true)) : undefined
  }

  /** A u64 that may use all 64 bits (sequence numbers). */
  u64Big (off: number): bigint | undefined {
    return off + 8 <= this.length ? this.#dv.getBigUint64(off, true) : undefined
  }
}

/** Decode `struct tcp_info`; `undefined` if fewer than 104 bytes came back. */
export function decodeTcpInfo (bytes: Uint8Array): TcpInfo | undefined {
  if (bytes.byteLength < TCP_INFO_MIN_BYTES) return undefined
  const s = new StructView(bytes)
  const u8 = (off: number): number => s.u8(off) ?? 0
  const u32 = (off: number): number => s.u32(off) ?? 0
  const options = u8(5)
  return {
    length: s.length,
    state: u8(0),
    caState: u8(1),
    retransmits: u8(2),
    probes: u8(3),
    options,
    synData: (options & TcpInfoOption.SynData) !== 0,
    sndWscale: u8(6) & 0x0f,
    rcvWscale: u8(6) >> 4,
    deliveryRateAppLimited: (u8(7) & 0x1) !== 0,
    fastOpenClientFail: (u8(7) >> 1) & 0x3,
    rtoUs: u32(8),
    sndMss: u32(16),
    rcvMss: u32(20),
    unacked: u32(24),
    lost: u32(32),
    lastDataSentMs: u32(44),
    lastDataRecvMs: u32(52),
    lastAckRecvMs: u32(56),
    pmtu: u32(60),
    rttUs: u32(68),
    rttVarUs: u32(72),
    sndSsthresh: u32(76),
    sndCwnd: u32(80),
    totalRetrans: u32(100),
    pacingRate: s.u64(104),
    bytesAcked: s.u64(120),
    bytesReceived: s.u64(128),
    segsOut: s.u32(136),
    segsIn: s.u32(140),
    notsentBytes: s.u32(144),
    minRttUs: s.u32(148),
    deliveryRate: s.u64(160),
    bytesSent: s.u64(200),
    bytesRetrans: s.u64(208),
    sndWnd: s.u32(228),
    rcvWnd: s.u32(232)
  }
}
