/**
 * Connection caps shared by the daemons (security-and-operations.md §1, threats 4 and 5): a global
 * cap and a per-source cap on concurrent connections, and the fd-limit derived default
 * `floor((RLIMIT_NOFILE − 64) / 2)` (two fds per relayed connection). The concentrator has its own
 * copy in concentrator/src/accept/ (conn-caps.ts, fd-limit.ts) and may switch to this module.
 */
import { readFileSync } from 'node:fs'

export type CapRefusal = 'max_conns' | 'per_source_limit'

export interface CapLimits {
  maxConnections: number
  perSourceMaxConnections: number
}

export type Acquired = { ok: true, release: () => void } | { ok: false, reason: CapRefusal }

export const MaxDerivedConnections = 1_048_576

/** Soft "Max open files" from /proc/self/limits text; undefined when absent or unparsable. */
export function parseOpenFilesLimit (text: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith('Max open files'))
  if (line === undefined) return undefined
  const soft = line.slice('Max open files'.length).trim().split(/\s+/)[0]
  if (soft === 'unlimited') return Infinity
  if (soft === undefined || !/^\d+$/.test(soft)) return undefined
  return Number(soft)
}

/** The open-file soft limit of this process; 1024 when unreadable. */
export function readOpenFilesLimit (read: () => string = () => readFileSync('/proc/self/limits', 'utf8')): number {
  try {
    return parseOpenFilesLimit(read()) ?? 1024
  } catch {
    return 1024
  }
}

/** Connections an fd limit allows: floor((nofile − 64) / 2) (two fds per relayed connection), at least 1, at most 1,048,576. */
export function connectionsForFdLimit (nofile: number): number {
  if (!Number.isFinite(nofile)) return MaxDerivedConnections
  return Math.max(1, Math.min(MaxDerivedConnections, Math.floor((nofile - 64) / 2)))
}

/** `configured` when > 0 (`limits.maxConnections`), else derived from the fd limit. */
export function effectiveMaxConnections (configured: number, nofile: () => number = readOpenFilesLimit): number {
  return configured > 0 ? configured : connectionsForFdLimit(nofile())
}

export class ConnectionCaps {
  #limits: CapLimits
  #total = 0
  readonly #perSource = new Map<string, number>()

  constructor (limits: CapLimits) {
    this.#limits = { ...limits }
  }

  /** New limits apply to later acquisitions; slots already held are kept. */
  setLimits (limits: CapLimits): void {
    this.#limits = { ...limits }
  }

  get limits (): CapLimits { return { ...this.#limits } }
  get total (): number { return this.#total }
  /** Distinct sources holding at least one slot. */
  get sources (): number { return this.#perSource.size }

  /** Connections currently held by `source`. */
  countFor (source: string): number {
    return this.#perSource.get(source) ?? 0
  }

  /** A slot, or the reason there is none; `release()` is idempotent. */
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
