/**
 * CPE Convert mode, pure parts: the first write towards the converter, and what a converter reply
 * means for the LAN connection (docs/convert.md "CPE Convert mode").
 */
import { buildConvertConnect, findConvertTlv } from '../../../shared/src/codec/convert.ts'
import type { ConvertMessage } from '../../../shared/src/codec/convert.ts'
import { ConvertErrorCode, cookieFromMissingCookieValue } from '../../../shared/src/codec/convert-error.ts'
import { ConvertTlvType } from '../../../shared/src/codec/convert-tlv.ts'
import type { RejectReason, UpstreamFailureReason } from '../../../shared/src/metrics/labels.ts'
import type { OriginalDestination } from '../intercept/interceptor.ts'

/**
 * The one write that opens a Convert connection: `[Hdr][Connect][Cookie?]` + the LAN client's first
 * bytes. With TFO it all travels in the SYN. IPv4 destinations go as IPv4-mapped (the codec).
 */
export function buildFirstWrite (destination: OriginalDestination, first: Uint8Array, cookie?: Uint8Array): Buffer {
  return buildConvertConnect({
    port: destination.port,
    destination: { family: destination.family, address: destination.address },
    ...(cookie === undefined ? {} : { cookie })
  }, first)
}

export type ConvertReplyAction =
  /** Success (no Error TLV): relay. */
  | { readonly type: 'relay' }
  /** Error 3 with a cookie: cache it and retry once with it. */
  | { readonly type: 'retry-with-cookie', readonly cookie: Uint8Array }
  /** Error 64/65: shun this converter for the back-off period and fall back for this connection. */
  | { readonly type: 'backoff-and-fallback' }
  /** Reset the LAN connection; counted as a rejection or an upstream failure. */
  | {
    readonly type: 'reset',
    readonly count: { readonly kind: 'rejected', readonly reason: RejectReason } | {
      readonly kind: 'upstream',
      readonly reason: UpstreamFailureReason
    }
  }

const reset = (kind: 'rejected' | 'upstream', reason: string): ConvertReplyAction =>
  ({ type: 'reset', count: kind === 'rejected' ? { kind, reason: reason as RejectReason } : { kind, reason: reason as UpstreamFailureReason } })

/** Maps a decoded converter reply to the LAN action. `errorCode` is set when the reply carries an Error TLV. */
export function convertReplyAction (message: ConvertMessage): ConvertReplyAction {
  const err = findConvertTlv(message, ConvertTlvType.Error)
  if (err === undefined) return { type: 'relay' }
  switch (err.code) {
    case ConvertErrorCode.ConnectionReset: return reset('upstream', 'refused')
    case ConvertErrorCode.DestinationUnreachable: return reset('upstream', 'unreachable')
    case ConvertErrorCode.NotAuthorized: return reset('rejected', 'acl_denied')
    case ConvertErrorCode.ResourceExceeded: case ConvertErrorCode.NetworkFailure: return { type: 'backoff-and-fallback' }
    case ConvertErrorCode.MissingCookie: {
      const cookie = cookieFromMissingCookieValue(err.value)
      // The value is zero-padded to the word: a cookie is a whole number of words; an empty one is no offer.
      const words = Math.floor(cookie.length / 4) * 4
      return words === 0 ? reset('rejected', 'auth_failed') : { type: 'retry-with-cookie', cookie: Uint8Array.from(cookie.subarray(0, words)) }
    }
    default: return reset('upstream', 'other') // 0, 1, 2, 33, private, unassigned: logged and counted by the caller
  }
}

/** Error code of the reply, if it carries one (for hybrid_convert_errors_total{direction="received"}). */
export function replyErrorCode (message: ConvertMessage): number | undefined {
  return findConvertTlv(message, ConvertTlvType.Error)?.code
}

/**
 * Per-converter memory shared by all connections: the cookie learnt from Error 3 and the back-off
 * deadline after Error 64/65.
 */
export class ConverterMemory {
  readonly #now: () => number
  readonly #cookies = new Map<string, Uint8Array>()
  readonly #until = new Map<string, number>()

  constructor (now: () => number = Date.now) { this.#now = now }

  cookie (key: string): Uint8Array | undefined { return this.#cookies.get(key) }
  setCookie (key: string, cookie: Uint8Array): void { this.#cookies.set(key, cookie) }
  forgetCookie (key: string): void { this.#cookies.delete(key) }
  backOff (key: string, ms: number): void { this.#until.set(key, this.#now() + ms) }
  backedOff (key: string): boolean {
    const until = this.#until.get(key)
    if (until === undefined) return false
    if (this.#now() < until) return true
    this.#until.delete(key)
    return false
  }
}
