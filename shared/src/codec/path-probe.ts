/**
 * Path-health probe datagram (pure): the CPE sends one per access and interval over UDP to the
 * concentrator's probe responder (docs/path-health.md), which echoes it with the type changed.
 * The echo is byte for byte the request except `type`, so a reply is never larger than its request
 * (no amplification) and the sender can match it by sequence number and compute the RTT from its
 * own timestamp.
 *
 *    0       4   5   6       8               12                              20
 *   +-------+---+---+-------+---------------+-------------------------------+- - - - - -+
 *   | 'HPRB'| v | t | flags |  sequence u32 |  sender timestamp u64 (µs)    | padding … |
 *   +-------+---+---+-------+---------------+-------------------------------+- - - - - -+
 *   magic  version=1  type 1 request, 2 reply  flags 0 (reserved)  padding zero, ≤ 236 bytes
 *
 * All integers big-endian. Malformed input is a fault value, never an exception (a responder
 * decodes untrusted datagrams in an event handler).
 */

export const ProbeMagic = 0x48505242 // 'HPRB'
export const ProbeVersion = 1
export const ProbeHeaderBytes = 20
/** Largest datagram accepted (header + padding); anything larger is dropped as oversized. */
export const ProbeMaxBytes = 256

export const ProbeType = { Request: 1, Reply: 2 } as const
export type ProbeType = typeof ProbeType[keyof typeof ProbeType]

export interface ProbeMessage {
  type: ProbeType
  /** uint32, wraps. */
  sequence: number
  /** Sender's clock in microseconds (opaque to the responder), 0 … 2^53-1. */
  timestampUs: number
  /** Zero padding after the header (path-MTU tests, or simply 0). */
  paddingBytes: number
}

export type ProbeFault = 'short' | 'oversized' | 'bad_magic' | 'bad_version' | 'bad_type' | 'bad_flags' | 'bad_timestamp'

export type ProbeDecodeResult = { ok: true, value: ProbeMessage } | { ok: false, fault: ProbeFault }

/** One allocation of exactly header + padding bytes. Throws RangeError on out-of-range fields (caller bug). */
export function encodeProbe (msg: ProbeMessage): Buffer {
  if (!Number.isInteger(msg.sequence) || msg.sequence < 0 || msg.sequence > 0xffffffff) throw new RangeError('probe sequence out of range')
  if (!Number.isSafeInteger(msg.timestampUs) || msg.timestampUs < 0) throw new RangeError('probe timestamp out of range')
  if (!Number.isInteger(msg.paddingBytes) || msg.paddingBytes < 0 || msg.paddingBytes > ProbeMaxBytes - ProbeHeaderBytes) throw new RangeError('probe padding out of range')
  const buf = Buffer.alloc(ProbeHeaderBytes + msg.paddingBytes)
  buf.writeUInt32BE(ProbeMagic, 0)
  buf.writeUInt8(ProbeVersion, 4)
  buf.writeUInt8(msg.type, 5)
  buf.writeUInt16BE(0, 6)
  buf.writeUInt32BE(msg.sequence, 8)
  buf.writeBigUInt64BE(BigInt(msg.timestampUs), 12)
  return buf
}

/** Validates every header field; the whole datagram is the message (UDP keeps boundaries). */
export function decodeProbe (bytes: Uint8Array): ProbeDecodeResult {
  if (bytes.length > ProbeMaxBytes) return { ok: false, fault: 'oversized' }
  if (bytes.length < ProbeHeaderBytes) return { ok: false, fault: 'short' }
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (b.readUInt32BE(0) !== ProbeMagic) return { ok: false, fault: 'bad_magic' }
  if (b.readUInt8(4) !== ProbeVersion) return { ok: false, fault: 'bad_version' }
  const type = b.readUInt8(5)
  if (type !== ProbeType.Request && type !== ProbeType.Reply) return { ok: false, fault: 'bad_type' }
  if (b.readUInt16BE(6) !== 0) return { ok: false, fault: 'bad_flags' }
  const ts = b.readBigUInt64BE(12)
  if (ts > BigInt(Number.MAX_SAFE_INTEGER)) return { ok: false, fault: 'bad_timestamp' }
  return { ok: true, value: { type, sequence: b.readUInt32BE(8), timestampUs: Number(ts), paddingBytes: b.length - ProbeHeaderBytes } }
}

/**
 * The responder's echo of a valid request: a copy of the same length with type = reply, all other
 * bytes (sequence, timestamp, padding) kept. Never longer than the request.
 */
export function echoOf (request: Uint8Array): Buffer {
  const reply = Buffer.from(request)
  reply.writeUInt8(ProbeType.Reply, 5)
  return reply
}
