/**
 * Sub-millisecond one-shot timer for the delay line.
 *
 * Node timers run on libuv's loop clock, which is whole milliseconds and on Linux read from
 * CLOCK_MONOTONIC_COARSE (it lags by up to a tick): measured, a 10 ms delay line with setTimeout
 * released packets 0.4 ms late on average and up to 3 ms late. Here a worker thread sleeps in
 * `Atomics.wait` (a futex with a sub-millisecond timeout) until the target time and wakes the main
 * loop with `postMessage` (≈ 50–100 µs). The worker never spins: it sleeps until re-armed.
 *
 * Times are `nowMs()` values: CLOCK_MONOTONIC in milliseconds, the same in every thread.
 */
import { Worker } from 'node:worker_threads'

export function nowMs (): number {
  return Number(process.hrtime.bigint()) / 1e6
}

// Shared layout: i32[0] = generation (bumped on every arm/cancel), f64[1] = target ms (Infinity = none).
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const i32 = new Int32Array(workerData)
const f64 = new Float64Array(workerData)
const now = () => Number(process.hrtime.bigint()) / 1e6
for (;;) {
  const gen = Atomics.load(i32, 0)
  const target = f64[1]
  const rem = target - now()
  if (target === Infinity) { Atomics.wait(i32, 0, gen); continue }
  if (rem > 0) { Atomics.wait(i32, 0, gen, rem); continue }
  parentPort.postMessage(gen)
  Atomics.wait(i32, 0, gen)
}
`

export class PreciseTimer {
  readonly #shared = new SharedArrayBuffer(16)
  readonly #i32 = new Int32Array(this.#shared)
  readonly #f64 = new Float64Array(this.#shared)
  readonly #worker: Worker
  #fn: (() => void) | undefined

  constructor () {
    this.#f64[1] = Infinity
    this.#worker = new Worker(WORKER, { eval: true, workerData: this.#shared })
    this.#worker.unref()
    this.#worker.on('message', (gen: number) => {
      if (gen !== Atomics.load(this.#i32, 0)) return // re-armed or cancelled since
      const fn = this.#fn
      this.#fn = undefined
      fn?.()
    })
  }

  /** Call `fn` once at `atMs` (a nowMs() value); replaces any armed call. */
  arm (atMs: number, fn: () => void): void {
    this.#fn = fn
    this.#f64[1] = atMs
    Atomics.add(this.#i32, 0, 1)
    Atomics.notify(this.#i32, 0)
  }

  cancel (): void {
    this.#fn = undefined
    this.#f64[1] = Infinity
    Atomics.add(this.#i32, 0, 1)
    Atomics.notify(this.#i32, 0)
  }

  async close (): Promise<void> {
    this.cancel()
    await this.#worker.terminate()
  }
}
