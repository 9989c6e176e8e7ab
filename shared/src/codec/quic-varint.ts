/**
 * QUIC variable-length integers (RFC 9000 §16), the integer encoding of HTTP Datagrams, capsules
 * (RFC 9297) and CONNECT-UDP context IDs (RFC 9298). See docs/udp-wire.md.
 *
 * The two most significant bits of the first byte give the length: 00 → 1 byte (6-bit value),
 * 01 → 2 bytes (14 bits), 10 → 4 bytes (30 bits), 11 → 8 bytes (62 bits), big-endian.
 *
 * Values are JavaScript numbers. A value above 2^53 − 1 (possible only in the 8-byte form) cannot
 * be represented exactly and is reported as `Infinity`: callers treat it as out of range (a length)
 * or unknown (a capsule type, a context ID), which is what such a value means to this product.
 * A decoder accepts non-minimal encodings (RFC 9000 allows them); the encoder always writes the
 * shortest form.
 */

/** Largest value the encoder writes (the decoder reports larger 62-bit values as `Infinity`). */
export const VarintMaxSafe = Number.MAX_SAFE_INTEGER

export interface VarintRead {
  /** The value, or `Infinity` above 2^53 − 1. */
  readonly value: number
  /** Bytes the encoding took: 1, 2, 4 or 8. */
  readonly length: 1 | 2 | 4 | 8
}

/** Bytes the shortest encoding of `v` takes. Throws RangeError for a value no varint can carry. */
export function varintLength (v: number): 1 | 2 | 4 | 8 {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`varint out of range: ${v}`)
  if (v < 0x40) return 1
  if (v < 0x4000) return 2
  if (v < 0x40000000) return 4
  return 8
}

/** Writes the shortest encoding of `v` at `offset` of `out`; returns the offset after it. */
export function writeVarint (v: number, out: Uint8Array, offset: number): number {
  const n = varintLength(v)
  if (offset < 0 || offset + n > out.length) throw new RangeError('varint does not fit the buffer')
  if (n === 1) {
    out[offset] = v
  } else if (n === 2) {
    out[offset] = 0x40 | (v >>> 8)
    out[offset + 1] = v & 0xff
  } else if (n === 4) {
    out[offset] = 0x80 | (v >>> 24)
    out[offset + 1] = (v >>> 16) & 0xff
    out[offset + 2] = (v >>> 8) & 0xff
    out[offset + 3] = v & 0xff
  } else {
    const hi = Math.floor(v / 0x100000000)
    const lo = v >>> 0
    out[offset] = 0xc0 | (hi >>> 24)
    out[offset + 1] = (hi >>> 16) & 0xff
    out[offset + 2] = (hi >>> 8) & 0xff
    out[offset + 3] = hi & 0xff
    out[offset + 4] = lo >>> 24
    out[offset + 5] = (lo >>> 16) & 0xff
    out[offset + 6] = (lo >>> 8) & 0xff
    out[offset + 7] = lo & 0xff
  }
  return offset + n
}

/** The shortest encoding of `v` as a new Buffer. */
export function encodeVarint (v: number): Buffer {
  const out = Buffer.allocUnsafe(varintLength(v))
  writeVarint(v, out, 0)
  return out
}

/** Decodes the varint at `offset`; `undefined` when the bytes end inside it. Never throws. */
export function readVarint (bytes: Uint8Array, offset = 0): VarintRead | undefined {
  if (offset < 0 || offset >= bytes.length) return undefined
  const first = bytes[offset] as number
  const prefix = first >>> 6
  const length = (1 << prefix) as 1 | 2 | 4 | 8
  if (offset + length > bytes.length) return undefined
  let value = first & 0x3f
  for (let i = 1; i < length; i++) value = value * 256 + (bytes[offset + i] as number)
  // Up to 2^53 the running product is exact; beyond it the number is no longer the varint's value.
  return { value: Number.isSafeInteger(value) ? value : Infinity, length }
}
