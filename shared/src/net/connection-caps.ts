/**
 * Connection caps shared by the daemons (docs/design/threat-model.md, threats 4 and 5): a global
 * cap and a per-source cap on concurrent connections, an optional budget for connections that have
 * not authenticated yet (so unauthenticated hosts cannot take the global cap from subscribers),
 * and the fd-limit derived default `floor((RLIMIT_NOFILE − 64 − reserved) / 2)` (two fds per relayed
 * connection; `reserved`: fds budgeted elsewhere, the splice engine's pipes). What a "source" is
 * (the concentrator aggregates IPv6 by prefix) is the caller's key.
 */
import { readFileSync } from 'node:fs'

export type CapRefusal = 'max_conns' | 'per_source_limit' | 'unauthenticated_limit'

export interface CapLimits {
  maxConnections: number
  perSourceMaxConnections: number
  /**
   * Of `maxConnections`, how many slots connections that have not authenticated yet may hold
   * together (their own, smaller budget, so that unauthenticated hosts cannot crowd out
   * subscribers). Absent: no separate budget.
   */
  unauthenticatedMaxConnections?: number
}

/**
 * A held slot. It starts unauthenticated (counted in the unauthenticated budget) unless acquired
 * with `authenticated: true`; `authenticated()` moves it out of that budget (idempotent);
 * `release()` frees it (idempotent).
 */
export type Acquired = { ok: true, release: () => void, authenticated: () => void } | { ok: false, reason: CapRefusal }

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

/** fds kept for listeners, management, stdio, the journal and Node itself (docs/data-plane.md, "Pipes and the fd budget"). */
export const FD_RESERVE = 64

/**
 * Connections an fd limit allows: floor((nofile − 64 − reserved) / 2) (two fds per relayed
 * connection; `reserved`: the splice engine's pipe budget), at least 1, at most 1,048,576.
 */
export function connectionsForFdLimit (nofile: number, reservedCount = 0): number {
  if (!Number.isFinite(nofile)) return MaxDerivedConnections
  return Math.max(1, Math.min(MaxDerivedConnections, Math.floor((nofile - FD_RESERVE - reservedCount) / 2)))
}

export interface FdBudget {
  /** 2 × maxConnections + reserved + FD_RESERVE. */
  needed: number
  nofile: number
  fits: boolean
  /** Set when it does not fit: what to change. */
  message?: string
}

/** Whether `maxConnections` relayed connections plus the reserved fds (pipes) fit in RLIMIT_NOFILE `nofile`. Pure. */
export function fdBudget (maxConnections: number, nofile: number, reservedCount: number): FdBudget {
  const needed = 2 * maxConnections + reservedCount + FD_RESERVE
  if (!Number.isFinite(nofile) || needed <= nofile) return { needed, nofile, fits: true }
  return {
    needed,
    nofile,
    fits: false,
    message: `fd budget: limits.maxConnections ${maxConnections} × 2 sockets + ${reservedCount} reserved (splice pipes) + ${FD_RESERVE} = ${needed} fds, ` +
      `but RLIMIT_NOFILE is ${nofile}: at full load accept() or pipe2() will fail with EMFILE; raise LimitNOFILE to at least ${needed} ` +
      `or set limits.maxConnections ≤ ${connectionsForFdLimit(nofile, reservedCount)}`
  }
}

/**
 * `configured` when > 0 (`limits.maxConnections`), else derived from the fd limit less the fds
 * budgeted elsewhere (`reserved`: the data plane's `reservedFds()`, its pipe budget).
 */
export function effectiveMaxConnections (configured: number, nofile: () => number = readOpenFilesLimit, reserved = 0): number {
  return configured > 0 ? configured : connectionsForFdLimit(nofile(), reserved)
}

export class ConnectionCaps {
  #limits: CapLimits
  #total = 0
  #unauthenticated = 0
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
  /** Slots held by connections that have not authenticated yet. */
  get unauthenticated (): number { return this.#unauthenticated }
  /** Distinct sources holding at least one slot. */
  get sources (): number { return this.#perSource.size }

  /** Connections held per source (sources holding none are absent). */
  counts (): IterableIterator<number> {
    return this.#perSource.values()
  }

  /** Connections currently held by `source`. */
  countFor (source: string): number {
    return this.#perSource.get(source) ?? 0
  }

  /** A slot, or the reason there is none; see `Acquired`. */
  tryAcquire (source: string, options: { authenticated?: boolean } = {}): Acquired {
    if (this.#total >= this.#limits.maxConnections) return { ok: false, reason: 'max_conns' }
    const n = this.#perSource.get(source) ?? 0
    if (n >= this.#limits.perSourceMaxConnections) return { ok: false, reason: 'per_source_limit' }
    let pending = options.authenticated !== true
    const budget = this.#limits.unauthenticatedMaxConnections
    if (pending && budget !== undefined && this.#unauthenticated >= budget) return { ok: false, reason: 'unauthenticated_limit' }
    this.#total++
    if (pending) this.#unauthenticated++
    this.#perSource.set(source, n + 1)
    let released = false
    const authenticated = (): void => {
      if (!pending) return
      pending = false
      this.#unauthenticated--
    }
    return {
      ok: true,
      authenticated,
      release: () => {
        if (released) return
        released = true
        authenticated()
        this.#total--
        const left = (this.#perSource.get(source) ?? 1) - 1
        if (left <= 0) this.#perSource.delete(source)
        else this.#perSource.set(source, left)
      }
    }
  }
}
