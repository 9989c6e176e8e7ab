/**
 * State the Transport Converter keeps across connections: cookie keys (when `convert.cookie.required`)
 * and the per-source Error rate limiter. One per concentrator; `update(config)` on reload keeps the
 * keys and the buckets unless their settings changed (so cached cookies stay valid over a reload).
 */
import type { ConvertConfig } from '../config/convert.ts'
import { ConvertCookieKeys } from './convert-cookie.ts'
import { SourceTokenBucket } from './convert-rate-limit.ts'

export interface ConverterStateDeps {
  readonly now?: () => number
}

export class ConverterState {
  readonly #now: (() => number) | undefined
  #config: ConvertConfig
  #cookies: ConvertCookieKeys | undefined
  #errors: SourceTokenBucket
  #privateTypes: ReadonlySet<number>

  constructor (config: ConvertConfig, deps: ConverterStateDeps = {}) {
    this.#now = deps.now
    this.#config = config
    this.#cookies = this.#makeCookies(config)
    this.#errors = this.#makeBucket(config)
    this.#privateTypes = new Set(config.privateTypes)
  }

  get config (): ConvertConfig { return this.#config }
  /** Undefined: cookies are not required. */
  get cookies (): ConvertCookieKeys | undefined { return this.#cookies }
  get errorLimiter (): SourceTokenBucket { return this.#errors }
  get privateTypes (): ReadonlySet<number> { return this.#privateTypes }

  update (next: ConvertConfig): void {
    const prev = this.#config
    this.#config = next
    const c = next.cookie
    if (!c.required) this.#cookies = undefined
    else if (!prev.cookie.required || c.keyRotationSeconds !== prev.cookie.keyRotationSeconds ||
      c.lengthBytes !== prev.cookie.lengthBytes) this.#cookies = this.#makeCookies(next)
    const r = next.errorRateLimit
    if (r.perSecond !== prev.errorRateLimit.perSecond || r.burst !== prev.errorRateLimit.burst) this.#errors = this.#makeBucket(next)
    this.#privateTypes = new Set(next.privateTypes)
  }

  sweep (): void { this.#errors.sweep() }

  #makeCookies (c: ConvertConfig): ConvertCookieKeys | undefined {
    if (!c.cookie.required) return undefined
    const opts = { rotationMs: c.cookie.keyRotationSeconds * 1000, lengthBytes: c.cookie.lengthBytes }
    return new ConvertCookieKeys(this.#now === undefined ? opts : { ...opts, now: this.#now })
  }

  #makeBucket (c: ConvertConfig): SourceTokenBucket {
    const opts = { perSecond: c.errorRateLimit.perSecond, burst: c.errorRateLimit.burst }
    return new SourceTokenBucket(this.#now === undefined ? opts : { ...opts, now: this.#now })
  }
}
