/**
 * Name resolution for the destination policy (docs/design/threat-model.md, threat 10).
 * c-ares (`dns.promises.Resolver`), never
 * `dns.lookup`: getaddrinfo runs on libuv's 4-thread pool, where slow attacker-chosen names would
 * stall fs, crypto and every other lookup. A and AAAA are asked in parallel; results are cached
 * for the records' TTL (capped), failures for a fixed negative TTL; lookups are capped globally
 * and per source, identical names in flight share one lookup, and each call has a deadline.
 *
 * `resolve()` never rejects: it answers addresses, or a failure reason for the policy.
 */
import { promises as dnsPromises } from 'node:dns'
import { LookupLimiter } from './lookup-limiter.ts'

export interface RecordWithTtl {
  readonly address: string
  readonly ttl: number
}

/** What the resolver needs from DNS; the c-ares backend below, or a fake in tests. */
export interface DnsBackend {
  resolve4: (name: string) => Promise<RecordWithTtl[]>
  resolve6: (name: string) => Promise<RecordWithTtl[]>
  /** Abort every outstanding query (shutdown); they reject with ECANCELLED. */
  cancel?: () => void
}

export interface ResolvedAddress {
  readonly address: string
  readonly family: 4 | 6
}

export type ResolveFailureReason = 'dns_failed' | 'dns_timeout' | 'dns_busy'

export type ResolveResult =
  | { readonly ok: true, readonly addresses: readonly ResolvedAddress[], readonly cached: boolean }
  | { readonly ok: false, readonly reason: ResolveFailureReason, readonly detail: string, readonly cached: boolean }

/** Resolves a host name on behalf of a source (the per-source cap key, e.g. the CPE's address). */
export interface HostResolver {
  resolve: (name: string, source: string) => Promise<ResolveResult>
  /** Cancel outstanding lookups (shutdown); pending calls answer dns_failed. */
  close?: () => void
}

export interface ResolverLimits {
  /** Lookups in flight, all sources. Default 64. */
  readonly maxConcurrent: number
  /** Lookups in flight per source. Default 8. */
  readonly maxPerSource: number
  /** Requests waiting for a slot, all sources (per source: maxPerSource × 4). Default 256. */
  readonly maxQueued: number
  /** Whole call, waiting for a slot included, in ms. Default 4000 (timeout × tries). */
  readonly deadlineMs: number
  /** Upper bound on a positive cache entry, seconds. Default 300. */
  readonly maxTtlSeconds: number
  /** Lifetime of a cached failure (NXDOMAIN, no data, SERVFAIL, timeout), seconds. Default 30. */
  readonly negativeTtlSeconds: number
  /** Names held in the cache; the oldest entry goes first. Default 10000. */
  readonly maxCacheEntries: number
}

export const DefaultResolverLimits: ResolverLimits = {
  maxConcurrent: 64,
  maxPerSource: 8,
  maxQueued: 256,
  deadlineMs: 4000,
  maxTtlSeconds: 300,
  negativeTtlSeconds: 30,
  maxCacheEntries: 10_000
}

export interface CaresBackendOptions {
  /** `ip` or `ip:port` / `[ip]:port`; empty = the system's resolv.conf servers. */
  readonly servers?: readonly string[]
  /** c-ares per-try timeout, ms. Default 2000. */
  readonly timeoutMs?: number
  /** c-ares tries per server. Default 2. */
  readonly tries?: number
}

/**
 * c-ares backend. Note (measured, c-ares 1.34.6 in Node 20.20): with timeout 2000 and tries 2, a
 * server that never answers yields ETIMEOUT only after ≈ 6–7 s (c-ares backs off between tries),
 * hence the resolver's own deadline. Throws if a server string is invalid.
 */
export function createCaresBackend (options: CaresBackendOptions = {}): DnsBackend {
  const r = new dnsPromises.Resolver({ timeout: options.timeoutMs ?? 2000, tries: options.tries ?? 2 })
  if (options.servers !== undefined && options.servers.length > 0) r.setServers([...options.servers])
  return {
    resolve4: async (name) => r.resolve4(name, { ttl: true }),
    resolve6: async (name) => r.resolve6(name, { ttl: true })
  }
}

interface CacheEntry {
  readonly expiresAt: number
  readonly result: ResolveResult
}

export interface HostResolverOptions {
  readonly backend: DnsBackend
  readonly limits?: Partial<ResolverLimits>
  /** Milliseconds clock for the cache (tests inject one). Default `Date.now`. */
  readonly now?: () => number
}

function errorCode (reason: unknown): string {
  const code = (reason as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : 'EUNKNOWN'
}

/** Merge the A and AAAA outcomes: any address wins; else a timeout on either side is a timeout. */
function combine (r4: PromiseSettledResult<RecordWithTtl[]>, r6: PromiseSettledResult<RecordWithTtl[]>):
{ result: ResolveResult, ttl: number } {
  const addresses: ResolvedAddress[] = []
  let ttl = Infinity
  for (const [r, family] of [[r4, 4], [r6, 6]] as const) {
    if (r.status !== 'fulfilled') continue
    for (const rec of r.value) {
      addresses.push({ address: rec.address, family })
      ttl = Math.min(ttl, rec.ttl)
    }
  }
  if (addresses.length > 0) return { result: { ok: true, addresses, cached: false }, ttl }
  const codes = [r4, r6].map((r) => (r.status === 'rejected' ? errorCode(r.reason) : 'ENODATA'))
  const reason = codes.includes('ETIMEOUT') ? 'dns_timeout' : 'dns_failed'
  return { result: { ok: false, reason, detail: `A: ${codes[0] ?? ''}, AAAA: ${codes[1] ?? ''}`, cached: false }, ttl: 0 }
}

export class CachingResolver implements HostResolver {
  readonly #backend: DnsBackend
  readonly #limits: ResolverLimits
  readonly #now: () => number
  readonly #limiter: LookupLimiter
  readonly #cache = new Map<string, CacheEntry>()
  readonly #inflight = new Map<string, Promise<ResolveResult>>()

  constructor (options: HostResolverOptions) {
    this.#backend = options.backend
    this.#limits = { ...DefaultResolverLimits, ...options.limits }
    this.#now = options.now ?? Date.now
    this.#limiter = new LookupLimiter(this.#limits)
  }

  /** For metrics and tests. */
  get stats (): { active: number, queued: number, cached: number, inflight: number } {
    return { active: this.#limiter.active, queued: this.#limiter.queued, cached: this.#cache.size, inflight: this.#inflight.size }
  }

  close (): void {
    this.#backend.cancel?.()
  }

  async resolve (name: string, source: string): Promise<ResolveResult> {
    const early = this.#cached(name) ?? this.#inflight.get(name)
    if (early !== undefined) return early
    // A ref'd timer (AbortSignal.timeout is unref'd), cleared as soon as the call settles.
    const deadline = new AbortController()
    const timer = setTimeout(() => { deadline.abort() }, this.#limits.deadlineMs)
    try {
      return await this.#acquireAndLookup(name, source, deadline.signal)
    } finally {
      clearTimeout(timer)
    }
  }

  async #acquireAndLookup (name: string, source: string, deadline: AbortSignal): Promise<ResolveResult> {
    const release = await this.#limiter.acquire(source, deadline)
    if (release === undefined) {
      const detail = deadline.aborted ? 'no lookup slot before the deadline' : 'lookup queue full'
      return { ok: false, reason: 'dns_busy', detail, cached: false }
    }
    const again = this.#cached(name) ?? this.#inflight.get(name)
    if (again !== undefined) {
      release()
      return again
    }
    const pending = this.#lookup(name, deadline, release)
    this.#inflight.set(name, pending)
    try {
      return await pending
    } finally {
      if (this.#inflight.get(name) === pending) this.#inflight.delete(name)
    }
  }

  /** The slot is held until c-ares itself gives up, so the cap bounds real work, not answers. */
  async #lookup (name: string, deadline: AbortSignal, release: () => void): Promise<ResolveResult> {
    const work = Promise.allSettled([this.#backend.resolve4(name), this.#backend.resolve6(name)])
    work.finally(release).catch(() => {})
    let onAbort: (() => void) | undefined
    const timedOut = new Promise<'timeout'>((resolve) => {
      onAbort = () => { resolve('timeout') }
      if (deadline.aborted) resolve('timeout')
      else deadline.addEventListener('abort', onAbort, { once: true })
    })
    const outcome = await Promise.race([work, timedOut])
    if (onAbort !== undefined) deadline.removeEventListener('abort', onAbort)
    if (outcome === 'timeout') {
      const result: ResolveResult = { ok: false, reason: 'dns_timeout', detail: `no answer within ${this.#limits.deadlineMs} ms`, cached: false }
      this.#store(name, result, this.#limits.negativeTtlSeconds)
      return result
    }
    const { result, ttl } = combine(outcome[0], outcome[1])
    this.#store(name, result, result.ok ? Math.min(ttl, this.#limits.maxTtlSeconds) : this.#limits.negativeTtlSeconds)
    return result
  }

  #cached (name: string): ResolveResult | undefined {
    const e = this.#cache.get(name)
    if (e === undefined) return undefined
    if (e.expiresAt <= this.#now()) {
      this.#cache.delete(name)
      return undefined
    }
    return { ...e.result, cached: true }
  }

  #store (name: string, result: ResolveResult, ttlSeconds: number): void {
    if (!(ttlSeconds > 0) || this.#limits.maxCacheEntries <= 0) return
    this.#cache.delete(name)
    while (this.#cache.size >= this.#limits.maxCacheEntries) {
      const oldest = this.#cache.keys().next()
      if (oldest.done === true) break
      this.#cache.delete(oldest.value)
    }
    this.#cache.set(name, { expiresAt: this.#now() + ttlSeconds * 1000, result })
  }
}

export function createHostResolver (options: HostResolverOptions): CachingResolver {
  return new CachingResolver(options)
}
