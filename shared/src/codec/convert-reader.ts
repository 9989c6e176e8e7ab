/**
 * Incremental Convert reader for either side of the connection. Accumulates at most the 4-byte
 * header, then exactly Total Length × 4 bytes (≤ Limits.convertMaxMessageBytes, known before any
 * body byte is copied), in one buffer allocated up front. Never throws on input; bytes past the
 * message are application data and come back untouched as `rest` (a view of the last chunk).
 */
import { Limits } from './limits.ts'
import { isConvertProblem, toFailure } from './convert-error.ts'
import type { ConvertFailure } from './convert-error.ts'
import { CONVERT_HEADER_BYTES, decodeConvertHeader, decodeConvertMessage } from './convert.ts'
import type { ConvertDecodeOptions, ConvertMessage } from './convert.ts'

export const ConvertReaderState = {
  /** Waiting for the 4 header bytes. */
  Header: 'header',
  /** Header valid; waiting for the rest of Total Length × 4 bytes. */
  Body: 'body',
  /** A message was returned; the reader is spent. */
  Done: 'done',
  /** A failure was returned; the reader is spent. */
  Failed: 'failed'
} as const
export type ConvertReaderState = (typeof ConvertReaderState)[keyof typeof ConvertReaderState]

export type ConvertFeedResult =
  | { readonly status: 'need-more' }
  | {
    readonly status: 'message'
    readonly message: ConvertMessage
    /** Bytes of this chunk that belonged to the message. */
    readonly bytesConsumed: number
    /** The rest of this chunk: application data, not copied. */
    readonly rest: Uint8Array
  }
  | { readonly status: 'failed', readonly failure: ConvertFailure }
  /** `feed` after Done or Failed: nothing was read. */
  | { readonly status: 'closed' }

export type ConvertReaderOptions = ConvertDecodeOptions

export class ConvertReader {
  readonly #options: ConvertDecodeOptions
  readonly #buf = new Uint8Array(Limits.convertMaxMessageBytes)
  #filled = 0
  #needed = CONVERT_HEADER_BYTES
  #state: ConvertReaderState = ConvertReaderState.Header

  constructor (options: ConvertReaderOptions) {
    this.#options = options
  }

  get state (): ConvertReaderState { return this.#state }
  /** Bytes held (never more than Limits.convertMaxMessageBytes). */
  get buffered (): number { return this.#filled }
  /** Bytes still needed before the current state can advance (0 once spent). */
  get missing (): number { return this.#state === 'done' || this.#state === 'failed' ? 0 : this.#needed - this.#filled }

  feed (chunk: Uint8Array): ConvertFeedResult {
    if (this.#state === 'done' || this.#state === 'failed') return { status: 'closed' }
    let used = this.#take(chunk, 0)
    if (this.#state === 'header') {
      if (this.#filled < this.#needed) return { status: 'need-more' }
      const header = decodeConvertHeader(this.#buf.subarray(0, CONVERT_HEADER_BYTES))
      if (header === undefined) return { status: 'need-more' } // unreachable: 4 bytes are present
      if (isConvertProblem(header)) return this.#fail(toFailure(header, this.#buf.subarray(0, CONVERT_HEADER_BYTES)))
      this.#state = ConvertReaderState.Body
      this.#needed = header.totalBytes
      used += this.#take(chunk, used)
    }
    if (this.#filled < this.#needed) return { status: 'need-more' }
    return this.#finish(chunk, used)
  }

  /** Copies up to the missing count from chunk[from...]; returns how many bytes were copied. */
  #take (chunk: Uint8Array, from: number): number {
    const n = Math.min(this.#needed - this.#filled, chunk.length - from)
    if (n <= 0) return 0
    this.#buf.set(chunk.subarray(from, from + n), this.#filled)
    this.#filled += n
    return n
  }

  #finish (chunk: Uint8Array, used: number): ConvertFeedResult {
    const r = decodeConvertMessage(this.#buf.subarray(0, this.#needed), this.#options)
    if (r === undefined) return { status: 'need-more' } // unreachable: the whole message is present
    if (!r.ok) return this.#fail(r.failure)
    this.#state = ConvertReaderState.Done
    return { status: 'message', message: r.message, bytesConsumed: used, rest: chunk.subarray(used) }
  }

  #fail (failure: ConvertFailure): ConvertFeedResult {
    this.#state = ConvertReaderState.Failed
    return { status: 'failed', failure }
  }
}

/** A converter-side reader: decodes client messages (Info, Connect, Cookie). */
export function createConverterSideReader (privateTypes?: ReadonlySet<number>): ConvertReader {
  return new ConvertReader(privateTypes === undefined ? { side: 'converter' } : { side: 'converter', privateTypes })
}

/** A client-side reader: decodes converter replies (Extended TCP Header, Supported, Error). */
export function createClientSideReader (privateTypes?: ReadonlySet<number>): ConvertReader {
  return new ConvertReader(privateTypes === undefined ? { side: 'client' } : { side: 'client', privateTypes })
}
