/**
 * Bounds-checked reader over a byte array for the pure codecs. Reading past the end never throws:
 * every read returns `undefined`, so decoders turn a short buffer into "need more bytes".
 */
export class ByteReader {
  readonly #bytes: Uint8Array
  #offset: number

  constructor (bytes: Uint8Array, offset = 0) {
    this.#bytes = bytes
    this.#offset = offset
  }

  get offset (): number { return this.#offset }
  get remaining (): number { return this.#bytes.length - this.#offset }

  u8 (): number | undefined {
    if (this.remaining < 1) return undefined
    const v = this.#bytes[this.#offset] as number
    this.#offset += 1
    return v
  }

  u16 (): number | undefined {
    if (this.remaining < 2) return undefined
    const b = this.#bytes
    const o = this.#offset
    this.#offset += 2
    return ((b[o] as number) << 8) | (b[o + 1] as number)
  }

  u32 (): number | undefined {
    if (this.remaining < 4) return undefined
    const hi = this.u16() as number
    const lo = this.u16() as number
    return hi * 0x10000 + lo
  }

  /** A view (no copy) of the next `n` bytes. */
  bytes (n: number): Uint8Array | undefined {
    if (n < 0 || this.remaining < n) return undefined
    const v = this.#bytes.subarray(this.#offset, this.#offset + n)
    this.#offset += n
    return v
  }

  skip (n: number): boolean {
    if (n < 0 || this.remaining < n) return false
    this.#offset += n
    return true
  }
}
