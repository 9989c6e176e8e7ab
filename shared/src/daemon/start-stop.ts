/**
 * Start a daemon's parts in order and stop them in reverse, once: the composition roots
 * (cpe/src/cpe.ts, concentrator/src/concentrator.ts) list their parts instead of writing a start
 * function, a failed-start cleanup and a stop function that have to agree on the order.
 *
 * - `start(parts)`: each part's `start` in order. If one throws, its own `stop` and then those of
 *   the parts already started run in reverse (a part's stop must cope with a partial start, as the
 *   hand-written cleanups did), and the error is rethrown.
 * - `stop()`: the started parts' `stop` in reverse; a failing stop is logged with the part's name
 *   and the others still run. Idempotent: a part is stopped at most once.
 */
import type { Logger } from '../log.ts'

export interface Startable {
  /** Named in the log when its stop fails. */
  readonly name: string
  readonly start: () => Promise<void> | void
  readonly stop?: () => Promise<void> | void
}

export class StartStop {
  readonly #log: Logger
  readonly #started: Startable[] = []

  constructor (log: Logger) {
    this.#log = log
  }

  async start (parts: readonly Startable[]): Promise<void> {
    for (const part of parts) {
      try {
        await part.start()
      } catch (err) {
        this.#started.push(part)
        await this.stop()
        throw err
      }
      this.#started.push(part)
    }
  }

  async stop (): Promise<void> {
    for (let part = this.#started.pop(); part !== undefined; part = this.#started.pop()) {
      try {
        await part.stop?.()
      } catch (err) {
        this.#log.warn({ err, part: part.name }, `${part.name}: cleanup failed`)
      }
    }
  }
}
