/**
 * The supervisor's worker processes (supervisor.ts, docs/scale-out.md): forked, waited for until
 * every one is ready, called over IPC (metrics, status, sessions, reload), restarted with a back-off
 * when one exits unasked (0.5 s doubling to 30 s; reset once a worker has been up for a minute),
 * and drained in parallel at stop (SIGKILL for one still running after the drain and a grace).
 */
import type { Logger } from '../../../shared/src/log.ts'
import { HybridError } from '../../../shared/src/errors.ts'
import type { ConcentratorStatus } from '../mgmt/status-schema.ts'
import type { FromWorker, WorkerCall, WorkerChild } from './ipc.ts'
import type { SupervisorMetrics } from './supervisor-metrics.ts'
import type { WorkerStatus } from './status-schema.ts'

export interface WorkerPoolOptions {
  readonly count: number
  readonly fork: (index: number) => WorkerChild
  readonly log: Logger
  readonly now: () => number
  readonly metrics: Pick<SupervisorMetrics, 'workersUp' | 'workerRestarts'>
  /** Back-off before the first restart of a worker; doubles up to 30 s. */
  readonly restartBaseMs: number
  /** Timeout of one IPC call unless the caller gives one. */
  readonly callTimeoutMs: number
}

interface Slot {
  readonly index: number
  child?: WorkerChild | undefined
  pid?: number | undefined
  ready: boolean
  restarts: number
  consecutive: number
  upSince: number
  lastStatus: ConcentratorStatus | null
  /** Resolves when the current child has exited. */
  exited: Promise<void>
  restartTimer?: NodeJS.Timeout | undefined
}

interface Pending { resolve: (v: unknown) => void, reject: (e: Error) => void, timer: NodeJS.Timeout }

const MAX_BACKOFF_MS = 30_000
const STABLE_MS = 60_000
/** After the drain timeout, how long a worker may take to close and exit before SIGKILL. */
const EXIT_GRACE_MS = 5000

export class WorkerPool {
  readonly #o: WorkerPoolOptions
  readonly #slots: Slot[]
  readonly #pending = new Map<number, Pending>()
  #nextId = 1
  #started = false
  #stopping = false
  /** While starting: every worker ready, or one exited first. */
  #startWait: { resolve: () => void, reject: (err: Error) => void } | undefined

  constructor (o: WorkerPoolOptions) {
    this.#o = o
    this.#slots = Array.from({ length: o.count }, (_, index) => ({
      index, ready: false, restarts: 0, consecutive: 0, upSince: 0, lastStatus: null, exited: Promise.resolve()
    }))
  }

  get started (): boolean { return this.#started }
  get stopping (): boolean { return this.#stopping }
  allReady (): boolean { return this.#slots.every((s) => s.ready) }
  readiness (): Record<string, boolean> { return Object.fromEntries(this.#slots.map((s) => [`worker${s.index}`, s.ready])) }
  runningCount (): number { return this.#slots.filter((s) => s.child !== undefined).length }

  statuses (): WorkerStatus[] {
    return this.#slots.map((s) => ({
      index: s.index, pid: s.child === undefined ? null : (s.pid ?? null), ready: s.ready, restarts: s.restarts, status: s.lastStatus
    }))
  }

  /** The workers' own status, asked again (a worker that does not answer shows null). */
  async refreshStatuses (): Promise<void> {
    const answers = await this.callAll<ConcentratorStatus>({ kind: 'status' })
    for (const s of this.#slots) s.lastStatus = answers.get(s.index) ?? null
  }

  /** Fork every worker; resolves when all are ready, rejects when one exits first. */
  async start (): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#startWait = { resolve, reject }
      for (const slot of this.#slots) this.#spawn(slot)
    })
    this.#startWait = undefined
    this.#started = true
    this.#o.log.info({ workers: this.#slots.map((s) => ({ index: s.index, pid: s.pid })) }, 'all workers ready')
  }

  /** Every worker drains in parallel (`stop` over IPC); SIGKILL after `drainTimeoutMs` and a grace. */
  async stop (drainTimeoutMs: number): Promise<void> {
    this.#stopping = true
    this.#updateUp()
    for (const s of this.#slots) { clearTimeout(s.restartTimer); s.restartTimer = undefined }
    await Promise.all(this.#slots.map(async (s) => { await this.#stopOne(s, drainTimeoutMs + EXIT_GRACE_MS) }))
    for (const p of this.#pending.values()) { clearTimeout(p.timer); p.reject(new HybridError('HYBRID_ERR_INTERNAL', 'supervisor stopping')) }
    this.#pending.clear()
  }

  /** Marks the pool as stopping (no restart, readiness off) before the drain starts. */
  markStopping (): void {
    this.#stopping = true
    this.#updateUp()
  }

  /** Call every running worker; a worker that fails or is down is absent from the result. */
  async callAll<T> (c: WorkerCall, timeoutMs?: number): Promise<Map<number, T>> {
    const out = new Map<number, T>()
    await Promise.all(this.#slots.filter((s) => s.child !== undefined).map(async (s) => {
      try {
        out.set(s.index, await this.#call(s, c, timeoutMs) as T)
      } catch (err) {
        this.#o.log.debug({ err, worker: s.index }, `worker did not answer ${c.kind}`)
      }
    }))
    return out
  }

  /** Call every running worker; the failures come back with the worker's index. */
  async callEach (c: WorkerCall, timeoutMs: number): Promise<Array<{ worker: number, err: Error }>> {
    const running = this.#slots.filter((s) => s.child !== undefined)
    const results = await Promise.allSettled(running.map(async (s) => this.#call(s, c, timeoutMs)))
    return results.flatMap((r, i) => r.status === 'rejected' ? [{ worker: running[i]?.index ?? -1, err: r.reason as Error }] : [])
  }

  async #call (slot: Slot, c: WorkerCall, timeoutMs = this.#o.callTimeoutMs): Promise<unknown> {
    const child = slot.child
    if (child === undefined) throw new HybridError('HYBRID_ERR_INTERNAL', `worker ${slot.index} is not running`)
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new HybridError('HYBRID_ERR_INTERNAL', `worker ${slot.index}: no answer to ${c.kind} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#pending.set(id, { resolve, reject, timer })
      try {
        child.send({ t: 'call', id, call: c })
      } catch (err) {
        clearTimeout(timer)
        this.#pending.delete(id)
        reject(err instanceof Error ? err : new Error(String(err)))
      }
    })
  }

  #updateUp (): void { this.#o.metrics.workersUp.set(this.#slots.filter((s) => s.ready).length) }

  #spawn (slot: Slot): void {
    const child = this.#o.fork(slot.index)
    slot.child = child
    slot.pid = child.pid
    slot.ready = false
    let done!: () => void
    slot.exited = new Promise((resolve) => { done = resolve })
    child.on('message', (m) => { this.#onMessage(slot, m) })
    child.on('error', (err) => { this.#o.log.error({ err, worker: slot.index }, 'worker IPC error') })
    child.on('exit', (code, signal) => {
      const wasUp = slot.ready ? this.#o.now() - slot.upSince : 0
      slot.child = undefined
      slot.ready = false
      slot.lastStatus = null
      this.#updateUp()
      done()
      this.#onExit(slot, code, signal, wasUp)
    })
  }

  #onExit (slot: Slot, code: number | null, signal: NodeJS.Signals | null, wasUpMs: number): void {
    const log = this.#o.log
    if (this.#stopping) { log.info({ worker: slot.index, pid: slot.pid, code, signal }, 'worker exited'); return }
    if (!this.#started) {
      this.#startWait?.reject(new HybridError('HYBRID_ERR_INTERNAL', `worker ${slot.index} exited during start (code ${String(code)}, signal ${String(signal)})`))
      return
    }
    slot.consecutive = wasUpMs >= STABLE_MS ? 0 : slot.consecutive + 1
    const delay = Math.min(MAX_BACKOFF_MS, this.#o.restartBaseMs * 2 ** Math.max(0, slot.consecutive - 1))
    slot.restarts++
    this.#o.metrics.workerRestarts.inc({ worker: String(slot.index) })
    log.error({ worker: slot.index, pid: slot.pid, code, signal, restartInMs: delay }, 'worker exited unexpectedly: restarting it')
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined
      if (!this.#stopping) this.#spawn(slot)
    }, delay)
  }

  #onMessage (slot: Slot, m: FromWorker): void {
    if (m.t === 'ready') {
      slot.ready = true
      slot.upSince = this.#o.now()
      this.#updateUp()
      this.#o.log.info({ worker: slot.index, pid: m.pid }, 'worker ready')
      if (!this.#stopping && this.allReady()) this.#startWait?.resolve()
      return
    }
    if (m.t === 'reply') {
      const p = this.#pending.get(m.id)
      if (p === undefined) return
      this.#pending.delete(m.id)
      clearTimeout(p.timer)
      if (m.ok) p.resolve(m.value)
      else p.reject(new HybridError(m.error.code as 'HYBRID_ERR_INTERNAL', m.error.message))
    }
  }

  async #stopOne (s: Slot, deadlineMs: number): Promise<void> {
    const child = s.child
    if (child === undefined) return
    try { child.send({ t: 'stop' }) } catch { child.kill('SIGTERM') }
    let timer: NodeJS.Timeout | undefined
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.#o.log.error({ worker: s.index, pid: s.pid, afterMs: deadlineMs }, 'worker did not exit after the drain: SIGKILL')
        child.kill('SIGKILL')
        resolve()
      }, deadlineMs)
    })
    await Promise.race([s.exited, killed])
    clearTimeout(timer)
    await s.exited
  }
}
