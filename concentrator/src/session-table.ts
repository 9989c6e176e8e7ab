/**
 * Relayed connections currently open, for the management API's top-N view
 * (`GET /api/v1/sessions`). Source and destination appear here and in logs, never in metrics.
 * Bytes come from the relay's socket counters (`relay.progress()`), read only when listed.
 */
import type { Mode, Side } from '../../shared/src/metrics/labels.ts'
import type { RelayEndReason } from '../../shared/src/net/relay.ts'

export interface SessionEntry {
  readonly id: number
  readonly mode: Mode
  /** Client address:port as seen by the listener. */
  readonly src: string
  /** Destination as requested (name or literal) and the vetted literal connected to. */
  readonly dst: string
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

export interface SessionView {
  id: number
  mode: Mode
  src: string
  dst: string
  upstream: string
  started: string
  durationSeconds: number
  mptcp: boolean
  bytesUp: number
  bytesDown: number
}

export interface SessionPage {
  total: number
  offset: number
  limit: number
  sessions: SessionView[]
}

export class SessionTable {
  readonly #entries = new Map<number, SessionEntry>()

  add (entry: SessionEntry): void {
    this.#entries.set(entry.id, entry)
  }

  delete (id: number): void {
    this.#entries.delete(id)
  }

  get size (): number { return this.#entries.size }

  /** The relays, for the overload manager (buffered bytes, idle shedding). */
  relays (): Iterable<SessionEntry> { return this.#entries.values() }

  /** Sessions ordered by total bytes (largest first), then a page of them. */
  page (offset: number, limit: number, now = Date.now()): SessionPage {
    const views = [...this.#entries.values()].map((e) => view(e, now))
    views.sort((a, b) => (b.bytesUp + b.bytesDown) - (a.bytesUp + a.bytesDown) || a.id - b.id)
    return { total: views.length, offset, limit, sessions: views.slice(offset, offset + limit) }
  }
}

function view (e: SessionEntry, now: number): SessionView {
  const { up, down } = e.progress()
  return {
    id: e.id,
    mode: e.mode,
    src: e.src,
    dst: e.dst,
    upstream: e.upstream,
    started: new Date(e.started).toISOString(),
    durationSeconds: Math.max(0, (now - e.started) / 1000),
    mptcp: e.mptcp,
    bytesUp: up,
    bytesDown: down
  }
}
