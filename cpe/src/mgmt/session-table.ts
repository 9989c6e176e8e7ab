/**
 * Relayed connections currently open, for `GET /api/v1/sessions` (top N by bytes). LAN addresses
 * and destinations appear here and in logs, never in metrics. Bytes come from the relay's counters,
 * read only when listed.
 */
import type { Side } from '../../../shared/src/metrics/labels.ts'
import type { RelayEndReason } from '../../../shared/src/net/relay.ts'

export interface CpeSessionEntry {
  readonly id: number
  /** LAN client address:port. */
  readonly src: string
  /** Original destination address:port. */
  readonly dst: string
  /** Concentrator address:port. */
  readonly upstream: string
  /** Epoch ms. */
  readonly started: number
  readonly mptcp: boolean
  readonly pipelined: boolean
  /** TFO outcome label, or `none`. */
  readonly tfo: string
  /** Path of the initial subflow (undefined: unknown local address). */
  readonly path: string | undefined
  readonly progress: () => { up: number, down: number }
  /** Bytes queued in user space per leg (the overload manager's buffered-bytes input). */
  readonly buffered: () => Record<Side, number>
  /** Close the relay now (overload shedding). */
  readonly abort: (reason: RelayEndReason) => void
}

export interface CpeSessionView extends Omit<CpeSessionEntry, 'progress' | 'buffered' | 'abort' | 'started' | 'path'> {
  started: string
  path: string | null
  durationSeconds: number
  bytesUp: number
  bytesDown: number
}

export interface CpeSessionPage {
  total: number
  offset: number
  limit: number
  sessions: CpeSessionView[]
}

export class CpeSessionTable {
  readonly #entries = new Map<number, CpeSessionEntry>()

  add (entry: CpeSessionEntry): void { this.#entries.set(entry.id, entry) }
  delete (id: number): void { this.#entries.delete(id) }
  get size (): number { return this.#entries.size }
  /** The relays, for the overload manager (buffered bytes, idle shedding). */
  relays (): Iterable<CpeSessionEntry> { return this.#entries.values() }

  /** Sessions ordered by total bytes (largest first, then by id), then one page. */
  page (offset: number, limit: number, now = Date.now()): CpeSessionPage {
    const views = [...this.#entries.values()].map((e): CpeSessionView => {
      const { up, down } = e.progress()
      const { progress: _p, buffered: _b, abort: _a, started, path, ...rest } = e
      return {
        ...rest,
        path: path ?? null,
        started: new Date(started).toISOString(),
        durationSeconds: Math.max(0, (now - started) / 1000),
        bytesUp: up,
        bytesDown: down
      }
    })
    views.sort((a, b) => (b.bytesUp + b.bytesDown) - (a.bytesUp + a.bytesDown) || a.id - b.id)
    return { total: views.length, offset, limit, sessions: views.slice(offset, offset + limit) }
  }
}
