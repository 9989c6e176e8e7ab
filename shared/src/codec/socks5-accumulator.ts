/**
 * Takes whole SOCKS5 messages out of a stream of chunks for the server and client state machines,
 * without concatenating chunks (ws `Receiver.consume`, yamux `Decoder`).
 *
 * A message that lies inside one chunk is decoded in place (zero copy). Only a message split across
 * chunks is copied, byte range by byte range, into one small pending buffer, and only up to the
 * message's size limit; bytes past the message stay in the caller's chunk. The pending buffer never
 * holds more than the remaining handshake budget, so `bufferedBytes <= budget` always holds.
 *
 * Decoders must be prefix-consistent (see `Decoded`): the view handed to them is cut at the size
 * limit in both paths, so a message that does not fit fails the same way however it was split.
 */
import { Socks5Reply } from './socks5-constants.ts'
import type { Decoded, Socks5Fault } from './socks5-constants.ts'

export type TakeResult<T> =
  | { readonly status: 'need-more' }
  | { readonly status: 'ok', readonly value: T, readonly next: number }
  | { readonly status: 'fault', readonly fault: Socks5Fault }

const NeedMore = { status: 'need-more' } as const

export class Socks5Accumulator {
  readonly #budget: number
  #consumed = 0
  #pending: Buffer | undefined
  #pendingLength = 0

  /** @param budget total bytes all messages taken through this accumulator may occupy. */
  constructor (budget: number) {
    this.#budget = budget
  }

  /** Bytes copied and waiting for the rest of their message. */
  get bufferedBytes (): number { return this.#pendingLength }
  /** Bytes of complete messages taken so far. */
  get consumedBytes (): number { return this.#consumed }

  /**
   * Take one message starting at `chunk[offset]`, of at most `maxMessageBytes`. On `ok`, `next` is
   * the offset in `chunk` right after the message. On `need-more`, all of the chunk from `offset`
   * has been kept; feed the next chunk at offset 0.
   */
  take<T> (chunk: Uint8Array, offset: number, decode: (bytes: Uint8Array) => Decoded<T>, maxMessageBytes: number): TakeResult<T> {
    if (offset >= chunk.length) return NeedMore
    const cap = Math.max(0, Math.min(maxMessageBytes, this.#budget - this.#consumed))
    if (this.#pendingLength === 0) {
      const view = chunk.subarray(offset, offset + cap)
      const r = decode(view)
      if (r === undefined) {
        if (view.length >= cap) return tooLarge(cap)
        this.#stash(view, cap)
        return NeedMore
      }
      return this.#settle(r, offset, 0)
    }
    const pending = this.#pending as Buffer
    const before = this.#pendingLength
    const n = Math.min(cap - before, chunk.length - offset)
    pending.set(chunk.subarray(offset, offset + n), before)
    this.#pendingLength += n
    const r = decode(pending.subarray(0, this.#pendingLength))
    if (r === undefined) {
      if (this.#pendingLength >= cap) return this.#drop(tooLarge(cap))
      return NeedMore
    }
    this.#pendingLength = 0
    return this.#settle(r, offset, before)
  }

  #stash (view: Uint8Array, cap: number): void {
    if (this.#pending === undefined || this.#pending.length < cap) this.#pending = Buffer.alloc(cap)
    this.#pending.set(view, 0)
    this.#pendingLength = view.length
  }

  #settle<T> (r: Exclude<Decoded<T>, undefined>, offset: number, before: number): TakeResult<T> {
    if (!r.ok) return this.#drop({ status: 'fault', fault: r.fault })
    this.#consumed += r.bytesRead
    return { status: 'ok', value: r.value, next: offset + r.bytesRead - before }
  }

  #drop<T> (result: TakeResult<T>): TakeResult<T> {
    this.#pendingLength = 0
    return result
  }
}

function tooLarge (cap: number): { status: 'fault', fault: Socks5Fault } {
  return {
    status: 'fault',
    fault: { code: 'HYBRID_ERR_SOCKS5_HANDSHAKE_TOO_LARGE', rep: Socks5Reply.GeneralFailure, detail: `message exceeds ${cap} bytes left in the handshake budget` }
  }
}
