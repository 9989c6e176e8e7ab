/**
 * Wire format of the lab's flow tool (a small bulk-transfer test, like iperf3 but over our own
 * socket layer, so one MPTCP connection can run a download and then an upload).
 *
 * ```
 * request  (client → server, 12 bytes): "HAFL" | op u8 (1 download, 2 upload) | 3 × 0 | durationMs u32
 * stream   (sender → receiver):          frames [len u32][len bytes] … then [0 u32] = end of stream
 * report   (server → client after an upload, 20 bytes):
 *          totalBytes u64 | elapsedMs u32 | warmBytes u64 (payload received in the first second)
 * ```
 * All integers big-endian. Download: the server streams for durationMs; the client measures.
 * Upload: the client streams; the server measures (first to last byte) and reports. Several
 * requests may follow each other on one connection. Pure code: no I/O.
 */

export const FLOW_MAGIC = 'HAFL'
export const FLOW_OP = { download: 1, upload: 2 } as const
export type FlowDirection = keyof typeof FLOW_OP
export const REQUEST_SIZE = 12
export const REPORT_SIZE = 20
/** Frame size on the wire (header included) used by the senders. */
export const FRAME_SIZE = 65_536
/** The "warm-up" window excluded from the steady-state rate. */
export const WARM_MS = 1000

export interface FlowRequest { direction: FlowDirection, durationMs: number }
export interface FlowReport { totalBytes: number, elapsedMs: number, warmBytes: number }

export function encodeRequest (req: FlowRequest): Buffer {
  const buf = Buffer.alloc(REQUEST_SIZE)
  buf.write(FLOW_MAGIC, 0, 'latin1')
  buf.writeUInt8(FLOW_OP[req.direction], 4)
  buf.writeUInt32BE(req.durationMs, 8)
  return buf
}

/** A request from the start of `buf`; undefined when more bytes are needed; an error string when invalid. */
export function decodeRequest (buf: Buffer): FlowRequest | string | undefined {
  if (buf.length < REQUEST_SIZE) return undefined
  if (buf.toString('latin1', 0, 4) !== FLOW_MAGIC) return 'bad magic'
  const op = buf.readUInt8(4)
  const direction = op === FLOW_OP.download ? 'download' : op === FLOW_OP.upload ? 'upload' : undefined
  if (direction === undefined) return `unknown op ${op}`
  return { direction, durationMs: buf.readUInt32BE(8) }
}

export function encodeReport (r: FlowReport): Buffer {
  const buf = Buffer.alloc(REPORT_SIZE)
  buf.writeBigUInt64BE(BigInt(r.totalBytes), 0)
  buf.writeUInt32BE(r.elapsedMs, 8)
  buf.writeBigUInt64BE(BigInt(r.warmBytes), 12)
  return buf
}

export function decodeReport (buf: Buffer): FlowReport | undefined {
  if (buf.length < REPORT_SIZE) return undefined
  return { totalBytes: Number(buf.readBigUInt64BE(0)), elapsedMs: buf.readUInt32BE(8), warmBytes: Number(buf.readBigUInt64BE(12)) }
}

/** One data frame of FRAME_SIZE bytes (header + zero payload); senders write the same buffer repeatedly. */
export function dataFrame (size = FRAME_SIZE): Buffer {
  if (size < 5) throw new RangeError('a data frame needs at least one payload byte (length 0 ends the stream)')
  const buf = Buffer.alloc(size)
  buf.writeUInt32BE(size - 4, 0)
  return buf
}

export const END_FRAME: Buffer = Buffer.alloc(4)

/**
 * Counts the payload of a frame stream, chunk by chunk, without copying payload. After the end
 * frame, `done` is true and `push` returns the bytes that followed it (the next message).
 */
export class FrameCounter {
  payloadBytes = 0
  done = false
  #remaining = 0
  #header = Buffer.alloc(4)
  #headerFill = 0

  /** Feed a chunk; returns the bytes after the end frame (empty until done). */
  push (chunk: Buffer): Buffer {
    let off = 0
    while (off < chunk.length && !this.done) {
      if (this.#remaining > 0) {
        const n = Math.min(this.#remaining, chunk.length - off)
        this.#remaining -= n
        this.payloadBytes += n
        off += n
        continue
      }
      const n = Math.min(4 - this.#headerFill, chunk.length - off)
      chunk.copy(this.#header, this.#headerFill, off, off + n)
      this.#headerFill += n
      off += n
      if (this.#headerFill < 4) break
      this.#headerFill = 0
      this.#remaining = this.#header.readUInt32BE(0)
      if (this.#remaining === 0) this.done = true
    }
    return chunk.subarray(off)
  }
}

/** Mbit/s from bytes over milliseconds (0 for a non-positive interval). */
export function mbps (bytes: number, ms: number): number {
  return ms > 0 ? (bytes * 8) / (ms * 1000) : 0
}
