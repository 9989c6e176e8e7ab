/**
 * Connection caps (threats 4 and 5): a global cap over all listeners and a per-source cap on
 * concurrent connections. `tryAcquire` either takes one slot of each and returns a release
 * function (idempotent), or names the cap that was hit. Limits can be changed on reload; existing
 * connections keep their slots (a lowered cap only affects new connections).
 */
export type CapRefusal = 'max_conns' | 'per_source_limit'

export interface CapLimits {
  maxConnections: number
  perSourceMaxConnections: number
}

export type Acquired = { ok: true, release: () => void } | { ok: false, reason: CapRefusal }

export class ConnectionCaps {
  #limits: CapLimits
  #total = 0
  readonly #perSource = new Map<string, number>()

  constructor (limits: CapLimits) {
    this.#limits = { ...limits }
  }

  setLimits (limits: CapLimits): void {
    this.#limits = { ...limits }
  }

  get limits (): CapLimits { return { ...this.#limits } }
  get total (): number { return this.#total }
  /** Distinct sources holding at least one slot. */
  get sources (): number { return this.#perSource.size }

  countFor (source: string): number {
    return this.#perSource.get(source) ?? 0
  }

  tryAcquire (source: string): Acquired {
    if (this.#total >= this.#limits.maxConnections) return { ok: false, reason: 'max_conns' }
    const n = this.#perSource.get(source) ?? 0
    if (n >= this.#limits.perSourceMaxConnections) return { ok: false, reason: 'per_source_limit' }
    this.#total++
    this.#perSource.set(source, n + 1)
    let released = false
    return {
      ok: true,
      release: () => {
        if (released) return
        released = true
        this.#total--
        const left = (this.#perSource.get(source) ?? 1) - 1
        if (left <= 0) this.#perSource.delete(source)
        else this.#perSource.set(source, left)
      }
    }
  }
}
