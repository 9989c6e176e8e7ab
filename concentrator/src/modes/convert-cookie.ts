/**
 * Convert Cookie TLV (RFC 8803 Cookie, security considerations): the cookie proves that the client
 * receives what the converter sends to its address (anti-spoofing, like a TFO cookie). It is
 * HMAC-SHA-256 over the canonical client address, keyed with a random key that rotates every
 * `rotationMs`, truncated to `lengthBytes`. Cookies made with the current or the previous key are
 * accepted, so a client's cached cookie survives one rotation. Keys live in memory only: a restart
 * invalidates every cookie (the client gets Error 3 again and retries once).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

export interface ConvertCookieOptions {
  readonly rotationMs: number
  /** Multiple of 4, 4–32. */
  readonly lengthBytes: number
  readonly now?: () => number
  /** Key source (tests); default crypto.randomBytes(32). */
  readonly newKey?: () => Buffer
}

export class ConvertCookieKeys {
  readonly #rotationMs: number
  readonly #length: number
  readonly #now: () => number
  readonly #newKey: () => Buffer
  #current: Buffer
  #previous: Buffer | undefined
  #since: number

  constructor (opts: ConvertCookieOptions) {
    if (opts.lengthBytes % 4 !== 0 || opts.lengthBytes < 4 || opts.lengthBytes > 32) throw new RangeError(`cookie length ${opts.lengthBytes} is not a multiple of 4 in 4-32`)
    this.#rotationMs = opts.rotationMs
    this.#length = opts.lengthBytes
    this.#now = opts.now ?? Date.now
    this.#newKey = opts.newKey ?? (() => randomBytes(32))
    this.#current = this.#newKey()
    this.#since = this.#now()
  }

  get lengthBytes (): number { return this.#length }

  /** The cookie for this client address (canonical source key text). */
  issue (source: string): Buffer {
    this.#rotate()
    return mac(this.#current, source, this.#length)
  }

  /** Whether `cookie` was issued to `source` under the current or the previous key (constant time). */
  verify (source: string, cookie: Uint8Array): boolean {
    this.#rotate()
    if (cookie.length !== this.#length) return false
    const offered = Buffer.from(cookie.buffer, cookie.byteOffset, cookie.byteLength)
    const cur = timingSafeEqual(mac(this.#current, source, this.#length), offered)
    const prev = this.#previous !== undefined && timingSafeEqual(mac(this.#previous, source, this.#length), offered)
    return cur || prev
  }

  /** Rotates as many periods as have passed (two or more: the previous key is dropped too). */
  #rotate (): void {
    const elapsed = this.#now() - this.#since
    if (elapsed < this.#rotationMs) return
    this.#previous = elapsed < 2 * this.#rotationMs ? this.#current : undefined
    this.#current = this.#newKey()
    this.#since = this.#now()
  }
}

function mac (key: Buffer, source: string, length: number): Buffer {
  return createHmac('sha256', key).update(source).digest().subarray(0, length)
}
