/**
 * Concurrency caps for DNS lookups: a global cap and a per-source cap (docs/design/threat-model.md, threat 10: slow,
 * attacker-chosen names must not starve everybody else). A request over a cap waits in a bounded
 * FIFO queue; a full queue answers "busy" at once. The caller bounds the wait with an AbortSignal.
 */

export interface LookupLimiterOptions {
  /** Lookups in flight at once, all sources. */
  readonly maxConcurrent: number
  /** Lookups in flight at once for one source key. */
  readonly maxPerSource: number
  /** Requests waiting for a slot, all sources. */
  readonly maxQueued: number
}

interface Waiter {
  readonly source: string
  readonly grant: (release: () => void) => void
}

/** Releases a slot; safe to call more than once. */
export type Release = () => void

export class LookupLimiter {
  readonly #opts: LookupLimiterOptions
  readonly #perSource = new Map<string, number>()
  #active = 0
  #queue: Waiter[] = []

  constructor (options: LookupLimiterOptions) {
    this.#opts = options
  }

  get active (): number {
    return this.#active
  }

  get queued (): number {
    return this.#queue.length
  }

  activeFor (source: string): number {
    return this.#perSource.get(source) ?? 0
  }

  /**
   * A slot, now or when one frees. Resolves `undefined` when the queue (global, or the per-source
   * share of `maxPerSource` × 4) is full, or when `signal` aborts while waiting.
   */
  async acquire (source: string, signal?: AbortSignal): Promise<Release | undefined> {
    if (this.#fits(source)) return this.#take(source)
    const queuedForSource = this.#queue.reduce((n, w) => n + (w.source === source ? 1 : 0), 0)
    if (this.#queue.length >= this.#opts.maxQueued || queuedForSource >= this.#opts.maxPerSource * 4) return undefined
    if (signal?.aborted === true) return undefined
    return new Promise<Release | undefined>((resolve) => {
      const waiter: Waiter = {
        source,
        grant: (release) => { signal?.removeEventListener('abort', onAbort); resolve(release) }
      }
      const onAbort = (): void => {
        this.#queue = this.#queue.filter((w) => w !== waiter)
        resolve(undefined)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#queue.push(waiter)
    })
  }

  #fits (source: string): boolean {
    return this.#active < this.#opts.maxConcurrent && this.activeFor(source) < this.#opts.maxPerSource
  }

  #take (source: string): Release {
    this.#active++
    this.#perSource.set(source, this.activeFor(source) + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      this.#active--
      const n = this.activeFor(source) - 1
      if (n <= 0) this.#perSource.delete(source)
      else this.#perSource.set(source, n)
      this.#drain()
    }
  }

  #drain (): void {
    for (let i = 0; i < this.#queue.length && this.#active < this.#opts.maxConcurrent;) {
      const w = this.#queue[i]
      if (w !== undefined && this.#fits(w.source)) {
        this.#queue.splice(i, 1)
        w.grant(this.#take(w.source))
      } else {
        i++
      }
    }
  }
}
