/**
 * The Capsule Protocol (RFC 9297 §3.2) and the DATAGRAM capsule (§3.5), as carried in the data of
 * an HTTP/2 extended CONNECT stream (RFC 8441) for CONNECT-UDP (RFC 9298). Pure: no I/O.
 * See docs/udp-wire.md for the layout and test vectors.
 *
 *   Capsule {
 *     Capsule Type (i),        QUIC varint (quic-varint.ts)
 *     Capsule Length (i),      length of the value in bytes
 *     Capsule Value (..),
 *   }
 *
 * DATAGRAM (type 0x00): the value is an HTTP Datagram Payload; for CONNECT-UDP that is
 * `Context ID (i)` followed by the UDP payload when the context ID is 0 (RFC 9298 §5).
 *
 * Stream data can split a capsule anywhere, so `CapsuleReader` accumulates. Capsule types it does
 * not know are returned like any other (the caller skips them, as RFC 9297 §3.2 requires). A capsule
 * whose length exceeds the reader's budget is a fault before any of its value is buffered, so a
 * peer cannot make the reader hold more than `maxValueBytes` plus one header.
 */
import { readVarint, varintLength, writeVarint } from './quic-varint.ts'

export const CapsuleType = { Datagram: 0x00 } as const

/** RFC 9298 §5: the UDP payload of a datagram is at most 65 527 bytes (65 535 − 8). */
export const MaxUdpPayloadBytes = 65_527
/** Context ID 0 carries UDP payloads (RFC 9298 §4); other IDs belong to extensions. */
export const UdpPayloadContextId = 0

export interface Capsule {
  /** The capsule type; `Infinity` for a type above 2^53 − 1 (unknown by definition). */
  readonly type: number
  /** A view of the value (valid until the next `push`). */
  readonly value: Uint8Array
}

export type CapsuleFault =
  /** A length above the reader's budget (or above 2^53 − 1). */
  | 'too_large'
  /** The stream ended inside a capsule (`end()`). */
  | 'truncated'

export type CapsuleNext = { readonly capsule: Capsule } | { readonly need: true } | { readonly fault: CapsuleFault }

/** Incremental capsule parser for one stream. */
export class CapsuleReader {
  readonly #maxValueBytes: number
  #buf: Buffer = Buffer.alloc(0)
  #faulted: CapsuleFault | undefined

  /** `maxValueBytes`: the largest capsule value accepted (a DATAGRAM needs the context ID plus the UDP payload). */
  constructor (maxValueBytes = MaxUdpPayloadBytes + 8) {
    if (!Number.isSafeInteger(maxValueBytes) || maxValueBytes < 0) throw new RangeError('maxValueBytes out of range')
    this.#maxValueBytes = maxValueBytes
  }

  /** Bytes buffered and not yet returned as capsules. */
  get buffered (): number { return this.#buf.length }

  push (chunk: Uint8Array): void {
    if (this.#faulted !== undefined || chunk.length === 0) return
    this.#buf = this.#buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.#buf, chunk])
  }

  /** The next whole capsule, `need` (push more), or a fault (sticky: the stream must be aborted). */
  next (): CapsuleNext {
    if (this.#faulted !== undefined) return { fault: this.#faulted }
    const type = readVarint(this.#buf, 0)
    if (type === undefined) return { need: true }
    const len = readVarint(this.#buf, type.length)
    if (len === undefined) return { need: true }
    if (len.value > this.#maxValueBytes) return this.#fault('too_large')
    const start = type.length + len.length
    const end = start + len.value
    if (this.#buf.length < end) return { need: true }
    const value = this.#buf.subarray(start, end)
    this.#buf = this.#buf.subarray(end)
    return { capsule: { type: type.value, value } }
  }

  /** The stream ended: a fault if it ended inside a capsule. */
  end (): CapsuleFault | undefined {
    if (this.#faulted !== undefined) return this.#faulted
    return this.#buf.length === 0 ? undefined : this.#fault('truncated').fault
  }

  #fault (f: CapsuleFault): { fault: CapsuleFault } {
    this.#faulted = f
    this.#buf = Buffer.alloc(0)
    return { fault: f }
  }
}

/** One capsule: type, length, value. Throws RangeError for a type out of varint range (caller bug). */
export function encodeCapsule (type: number, value: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(varintLength(type) + varintLength(value.length) + value.length)
  let at = writeVarint(type, out, 0)
  at = writeVarint(value.length, out, at)
  out.set(value, at)
  return out
}

/** A DATAGRAM capsule carrying `payload` under `contextId` (0: a UDP payload). One allocation. */
export function encodeDatagramCapsule (payload: Uint8Array, contextId = UdpPayloadContextId): Buffer {
  if (contextId === UdpPayloadContextId && payload.length > MaxUdpPayloadBytes) throw new RangeError('UDP payload above 65527 bytes')
  const valueLength = varintLength(contextId) + payload.length
  const out = Buffer.allocUnsafe(varintLength(CapsuleType.Datagram) + varintLength(valueLength) + valueLength)
  let at = writeVarint(CapsuleType.Datagram, out, 0)
  at = writeVarint(valueLength, out, at)
  at = writeVarint(contextId, out, at)
  out.set(payload, at)
  return out
}

export type HttpDatagramFault = 'short' | 'oversized'
export type HttpDatagram =
  | { readonly ok: true, readonly contextId: number, readonly payload: Uint8Array }
  | { readonly ok: false, readonly fault: HttpDatagramFault }

/**
 * Splits an HTTP Datagram Payload (a DATAGRAM capsule's value) into context ID and payload. A UDP
 * payload (context 0) above 65 527 bytes is `oversized`; the caller drops it. Unknown context IDs
 * come back as they are: the caller drops those too (RFC 9298 §4) and counts them.
 */
export function decodeHttpDatagram (value: Uint8Array): HttpDatagram {
  const ctx = readVarint(value, 0)
  if (ctx === undefined) return { ok: false, fault: 'short' }
  const payload = value.subarray(ctx.length)
  if (ctx.value === UdpPayloadContextId && payload.length > MaxUdpPayloadBytes) return { ok: false, fault: 'oversized' }
  return { ok: true, contextId: ctx.value, payload }
}
