/**
 * The relayed connections a daemon has open, for `GET /api/v1/sessions` (top N by bytes) and the
 * overload manager (buffered bytes, idle shedding). One table for both daemons: each daemon's entry
 * adds its own fields (the CPE's path and TFO outcome, the concentrator's mode) to the common ones.
 * Addresses appear here and in logs, never in metrics. Bytes come from the relay's counters, read
 * only when listed.
 */
import type { Side } from '../metrics/labels.ts'
import type { RelayEndReason } from '../net/relay.ts'

export interface SessionEntry {
  readonly id: number
  /** Client address:port as the daemon accepted it. */
  readonly src: string
  /** The destination (as requested, or the original destination on the CPE). */
  readonly dst: string
  /** Where the daemon connected to: the concentrator (CPE) or the vetted literal (concentrator). */
  readonly upstream: string
  /** Epoch ms. */
  readonly started: number
  readonly mptcp: boolean
  readonly progress: () => { up: number, down: number }
  /** Bytes queued in user space per leg (the overload manager's buffered-bytes input). */
  readonly buffered: () => Record<Side, number>
  /** Close the relay now (overload shedding). */
  readonly abort: (reason: RelayEndReason) => void
}

type Listed<T> = { [K in keyof T]: undefined extends T[K] ? Exclude<T[K], undefined> | null : T[K] }

/** What the API lists: the entry's data fields (undefined ones as null), times and byte counts. */
export type SessionView<E extends SessionEntry> = Listed<Omit<E, 'progress' | 'buffered' | 'abort' | 'started'>> & {
  started: string
  durationSeconds: number
  bytesUp: number
  bytesDown: number
}

export interface SessionPage<E extends SessionEntry> {
  total: number
  offset: number
  limit: number
  sessions: Array<SessionView<E>>
}

function view<E extends SessionEntry> (e: E, now: number): SessionView<E> {
  const { up, down } = e.progress()
  const { progress: _p, buffered: _b, abort: _a, started, ...rest } = e
  const fields = Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, v ?? null]))
  return {
    ...fields,
    started: new Date(started).toISOString(),
    durationSeconds: Math.max(0, (now - started) / 1000),
    bytesUp: up,
    bytesDown: down
  } as SessionView<E>
}

export class SessionTable<E extends SessionEntry> {
  readonly #entries = new Map<number, E>()

  add (entry: E): void { this.#entries.set(entry.id, entry) }
  delete (id: number): void { this.#entries.delete(id) }
  get size (): number { return this.#entries.size }
  /** The relays, for the overload manager (buffered bytes, idle shedding). */
  relays (): Iterable<E> { return this.#entries.values() }

  /** Sessions ordered by total bytes (largest first, then by id), then one page. */
  page (offset: number, limit: number, now = Date.now()): SessionPage<E> {
    const rows = [...this.#entries.values()].map((e) => ({ id: e.id, view: view(e, now) }))
    const bytes = (r: typeof rows[number]): number => r.view.bytesUp + r.view.bytesDown
    rows.sort((a, b) => bytes(b) - bytes(a) || a.id - b.id)
    return { total: rows.length, offset, limit, sessions: rows.slice(offset, offset + limit).map((r) => r.view) }
  }
}
