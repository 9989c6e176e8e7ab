/**
 * Writer for encoders that compute their exact length first and allocate once.
 * Writing past the allocated size is a programming error and throws.
 */
export class ByteWriter {
  readonly buffer: Buffer
  #offset = 0

  constructor (length: number) {
    this.buffer = Buffer.alloc(length)
  }

  get offset (): number { return this.#offset }

  u8 (v: number): this {
    this.buffer.writeUInt8(v, this.#offset)
    this.#offset += 1
    return this
  }

  u16 (v: number): this {
    this.buffer.writeUInt16BE(v, this.#offset)
    this.#offset += 2
    return this
  }

  u32 (v: number): this {
    this.buffer.writeUInt32BE(v, this.#offset)
    this.#offset += 4
    return this
  }

  bytes (src: Uint8Array): this {
    if (this.#offset + src.length > this.buffer.length) throw new RangeError('ByteWriter overflow')
    this.buffer.set(src, this.#offset)
    this.#offset += src.length
    return this
  }

  zeros (n: number): this {
    if (this.#offset + n > this.buffer.length) throw new RangeError('ByteWriter overflow')
    this.#offset += n // Buffer.alloc zero-fills
    return this
  }

  /** The written bytes; asserts the precomputed length was exact. */
  finish (): Buffer {
    if (this.#offset !== this.buffer.length) {
      throw new RangeError(`ByteWriter length mismatch: wrote ${this.#offset} of ${this.buffer.length}`)
    }
    return this.buffer
  }
}
