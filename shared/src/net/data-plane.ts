/**
 * The data plane of established proxied connections (docs/data-plane.md), `dataPlane` in both
 * daemons' configuration:
 * - `stream`: the JS relay of relay.ts (every byte through user space);
 * - `splice`: the splice engine (splice-engine.ts) in one worker thread, driven through koffi; the
 *   start refuses with HYBRID_ERR_PREREQUISITE when the capability probe fails;
 * - `auto` (default): splice when the probe passes, else stream, with the reason logged.
 *
 * The probe relays a few bytes through a loopback TCP pair with the engine itself, so what is
 * checked is what runs: koffi, worker threads, epoll, pipe2 and splice between TCP sockets.
 */
import { once } from 'node:events'
import net from 'node:net'
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads'
import type { Logger } from 'pino'
import { HybridError } from '../errors.ts'
import { effectiveMaxConnections, fdBudget, readOpenFilesLimit } from './connection-caps.ts'
import { spliceLibc } from './libc.ts'
import type { Relay, RelayOptions } from './relay.ts'
import { SLOT_FIELDS, SLOTS_PER_CHUNK, type EngineCommand, type EngineEvent } from './splice-protocol.ts'
import { ENGINE_STAT_FIELDS, EngineStat } from './splice-engine.ts'
import { spliceRelay, type SpliceEngineLink } from './splice-relay.ts'

export type DataPlaneMode = 'splice' | 'stream' | 'auto'

export interface DataPlane {
  /** What the relays use now: 'stream' before start, and after a failed probe in auto mode. */
  readonly kind: () => 'splice' | 'stream'
  /** Probe and start the engine (splice, auto). Rejects only in `splice` mode (HYBRID_ERR_PREREQUISITE). */
  readonly start: () => Promise<void>
  readonly stop: () => Promise<void>
  /** Relay with the splice engine; only while kind() is 'splice'. */
  readonly relay: (client: net.Socket, server: net.Socket, opts: RelayOptions) => Relay
  /** Pipes open now (each is two fds), for the fd budget. */
  readonly pipesOpen: () => number
  /** Whether the splice engine's worker thread runs (it starts with the first spliced relay). */
  readonly engineRunning: () => boolean
  /**
   * fds this data plane budgets apart from the connections' sockets: the splice engine's pipes,
   * epoll and eventfd once the probe passed, else 0. The derived connection cap leaves room for
   * them (connection-caps.ts `effectiveMaxConnections`).
   */
  readonly reservedFds: () => number
}

export interface DataPlaneOptions {
  log?: Logger
  /** Pipes the engine may hold open at once (2 fds each); default: RLIMIT_NOFILE / 16, 16 … 4096. */
  maxPipes?: number
  /** Bytes one splice moves at most (the pipe's size, F_SETPIPE_SZ above 64 KiB). Default 65536. */
  pipeSize?: number
  /** The capability probe must relay its bytes within this. Milliseconds. Default 5000. */
  probeTimeoutMs?: number
  /**
   * `limits.maxConnections` as configured (0: derived from RLIMIT_NOFILE): at start the fd budget
   * (2 per connection + the pipe budget + 64) is checked against RLIMIT_NOFILE and a warning logged
   * when it does not fit. Absent: not checked.
   */
  maxConnections?: number
  /** Pooled empty pipes above the engine's 4 are closed after this long without a pipe taken. Milliseconds. Default 5000 (tests). */
  poolIdleMs?: number
  /** RLIMIT_NOFILE (tests); default: the process's soft limit. */
  openFilesLimit?: () => number
}

/** The fds the splice engine reserves in the fd budget: its pipes (2 each), its epoll and eventfd. */
export function engineFds (maxPipes: number): number {
  return 2 * maxPipes + 2
}

/** The pipes the fd budget allows by default: 1/16 of RLIMIT_NOFILE, between 16 and 4096. */
export function defaultMaxPipes (nofile: number = readOpenFilesLimit()): number {
  if (!Number.isFinite(nofile)) return 4096
  return Math.max(16, Math.min(4096, Math.floor(nofile / 16)))
}

/** The stream data plane: always the JS relay. */
export const streamDataPlane: DataPlane = {
  kind: () => 'stream',
  start: async () => {},
  stop: async () => {},
  relay: () => { throw new Error('the stream data plane has no splice relay') },
  pipesOpen: () => 0,
  engineRunning: () => false,
  reservedFds: () => 0
}

/** At start: warn when maxConnections × 2 + the reserved fds (pipes) + 64 exceed RLIMIT_NOFILE. */
function checkFdBudget (opts: DataPlaneOptions, reserved: number): void {
  if (opts.maxConnections === undefined) return
  const nofile = (opts.openFilesLimit ?? readOpenFilesLimit)()
  const budget = fdBudget(effectiveMaxConnections(opts.maxConnections, () => nofile, reserved), nofile, reserved)
  if (!budget.fits) opts.log?.warn({ fdsNeeded: budget.needed, nofile: budget.nofile }, budget.message ?? 'fd budget exceeds RLIMIT_NOFILE')
}

export function createDataPlane (mode: DataPlaneMode, opts: DataPlaneOptions = {}): DataPlane {
  if (mode === 'stream') return opts.maxConnections === undefined ? streamDataPlane : { ...streamDataPlane, start: async () => { checkFdBudget(opts, 0) } }
  /** The probe passed: relays are spliced (the engine itself starts with the first of them). */
  let params: { maxPipes: number, pipeSize: number } | undefined
  let engine: EngineHost | undefined
  return {
    kind: () => params === undefined ? 'stream' : 'splice',
    start: async () => {
      if (params !== undefined) return
      const nofile = opts.openFilesLimit ?? readOpenFilesLimit
      const maxPipes = opts.maxPipes ?? defaultMaxPipes(nofile())
      const pipeSize = opts.pipeSize ?? 65536
      // The probe runs in an engine of its own, stopped afterwards: an idle daemon carries no
      // worker thread (its isolate is several MiB of RSS) until the first relay is spliced.
      const probeHost = new EngineHost(maxPipes, pipeSize)
      try {
        await probeHost.start()
        await probe(probeHost, opts.probeTimeoutMs ?? 5000)
      } catch (err) {
        const why = (err as Error).message
        if (mode === 'splice') {
          throw new HybridError('HYBRID_ERR_PREREQUISITE', `dataPlane: splice: the splice capability probe failed (${why}); use dataPlane: auto or stream`,
            { cause: err, detail: { problems: [`splice data plane: ${why}`] } })
        }
        opts.log?.warn({ err: { message: why } }, 'splice data plane unavailable, relaying with the stream data plane (dataPlane: auto)')
        checkFdBudget(opts, 0)
        return
      } finally {
        await probeHost.stop()
      }
      params = { maxPipes, pipeSize }
      // The pipe budget is counted against RLIMIT_NOFILE: the derived connection cap leaves room for it (reservedFds).
      opts.log?.info({ dataPlane: 'splice', maxPipes, pipeSize, reservedFds: engineFds(maxPipes) }, 'data plane')
      checkFdBudget(opts, engineFds(maxPipes))
    },
    stop: async () => {
      const e = engine
      engine = undefined
      params = undefined
      await e?.stop()
    },
    relay: (client, server, relayOpts) => {
      if (params === undefined) throw new Error('splice data plane not started')
      if (engine === undefined) {
        // A worker that died ended its relays (as errors); the next relay starts a new one.
        const host: EngineHost = new EngineHost(params.maxPipes, params.pipeSize, opts.poolIdleMs, () => { if (engine === host) engine = undefined })
        engine = host
        host.launch()
      }
      return spliceRelay(engine, client, server, relayOpts)
    },
    pipesOpen: () => engine?.pipesOpen() ?? 0,
    engineRunning: () => engine !== undefined,
    reservedFds: () => (params === undefined ? 0 : engineFds(params.maxPipes))
  }
}

/** Relay 256 KiB each way through the engine over loopback TCP, byte-exact, within `timeoutMs`. */
async function probe (host: EngineHost, timeoutMs: number): Promise<void> {
  const server = net.createServer({ allowHalfOpen: true })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as net.AddressInfo).port
  try {
    const relayServer = net.createServer({ allowHalfOpen: true })
    relayServer.listen(0, '127.0.0.1')
    await once(relayServer, 'listening')
    const relayPort = (relayServer.address() as net.AddressInfo).port
    const accepted = once(relayServer, 'connection')
    const echoSide = once(server, 'connection')
    const client = net.connect({ port: relayPort, host: '127.0.0.1', allowHalfOpen: true })
    const [front] = await accepted as [net.Socket]
    const upstream = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true })
    await once(upstream, 'connect')
    const [echo] = await echoSide as [net.Socket]
    relayServer.close()
    for (const s of [client, echo]) s.on('error', () => {})
    echo.pipe(echo) // echo until the client's FIN, then FIN back
    const r = spliceRelay(host, front, upstream, { idleTimeoutMs: 5000, halfCloseTimeoutMs: 5000 })
    const payload = Buffer.alloc(256 * 1024)
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + (i >> 9)) & 0xff
    const chunks: Buffer[] = []
    client.on('data', (b: Buffer) => chunks.push(b))
    const closed = once(client, 'close') // may come before the relay settles
    client.end(payload)
    const timer = setTimeout(() => { r.abort('error') }, timeoutMs)
    const res = await r.done
    clearTimeout(timer)
    await closed
    const got = Buffer.concat(chunks)
    if (res.reason !== 'normal') throw new Error(`probe relay ended with ${res.reason}${res.error === undefined ? '' : `: ${res.error.message}`}`)
    if (!got.equals(payload) || res.bytesUp !== payload.length || res.bytesDown !== payload.length) {
      throw new Error(`probe relay was not byte-exact (sent ${payload.length}, got ${got.length}, counted ${res.bytesUp}/${res.bytesDown})`)
    }
  } finally {
    server.close()
  }
}

/**
 * The worker's entry: the built splice-engine.js; under tsx (tests, `.ts` sources) a bootstrap that
 * loads the TypeScript module through tsx, whose loader hooks do not reach worker threads on Node 20.
 */
function engineEntry (): string | URL {
  if (!import.meta.url.endsWith('.ts')) return new URL('./splice-engine.js', import.meta.url)
  const file = new URL('./splice-engine.ts', import.meta.url).href
  return `import('tsx/esm/api').then((m) => m.tsImport(${JSON.stringify(file)}, ${JSON.stringify(import.meta.url)}))`
}

type EventListener = (e: EngineEvent) => void

/** The worker thread and its channel: the main thread's end of splice-engine.ts. */
class EngineHost implements SpliceEngineLink {
  readonly maxPipes: number
  readonly pipeSize: number
  readonly #poolIdleMs: number | undefined
  /** EngineStat fields, written by the worker. */
  readonly #stats = new Int32Array(new SharedArrayBuffer(ENGINE_STAT_FIELDS * 4))
  #worker: Worker | undefined
  #port: MessagePort | undefined
  #eventFd = -1
  readonly #wake = Buffer.alloc(8)
  readonly #chunks: Float64Array[] = []
  readonly #free: number[] = []
  readonly #listeners = new Map<number, EventListener>()

  readonly #onGone: (() => void) | undefined

  /** `onGone`: the worker exited (stopped or died). */
  constructor (maxPipes: number, pipeSize: number, poolIdleMs?: number, onGone?: () => void) {
    this.maxPipes = maxPipes
    this.pipeSize = pipeSize
    this.#poolIdleMs = poolIdleMs
    this.#onGone = onGone
    this.#wake.writeBigUInt64LE(1n)
  }

  /** Start the worker and wait until it runs (the probe). */
  async start (): Promise<void> {
    const worker = this.launch()
    worker.ref() // launch() left it unref'd: this wait must keep the process alive
    await once(worker, 'online')
    this.#idle()
  }

  /**
   * Start the worker without waiting: commands sent before it runs wait in the port, and the
   * eventfd's count stays readable (level-triggered in the worker's epoll) until it reads them.
   */
  launch (): Worker {
    this.#eventFd = spliceLibc.eventfd(0, 0x80000 | 0x800) as number // EFD_CLOEXEC | EFD_NONBLOCK
    if (this.#eventFd < 0) throw new Error('eventfd failed')
    const { port1, port2 } = new MessageChannel()
    const worker = new Worker(engineEntry(), {
      eval: import.meta.url.endsWith('.ts'),
      workerData: {
        spliceEngine: true,
        eventFd: this.#eventFd,
        maxPipes: this.maxPipes,
        pipeSize: this.pipeSize,
        port: port2,
        stats: this.#stats.buffer,
        ...(this.#poolIdleMs === undefined ? {} : { poolIdleMs: this.#poolIdleMs })
      },
      transferList: [port2]
    })
    this.#worker = worker
    this.#port = port1
    port1.on('message', (e: EngineEvent) => { this.#listeners.get(e.id)?.(e) })
    worker.on('error', () => { this.#failAll() })
    worker.on('exit', () => { this.#failAll(); this.#closeEventFd(); this.#onGone?.() })
    this.#idle()
    return worker
  }

  /** Pipes open now, pooled ones included (2 fds each). */
  pipesOpen (): number { return Atomics.load(this.#stats, EngineStat.pipesOpen) }

  /** The worker and its port keep the process alive only while a relay uses them. */
  #idle (): void {
    this.#worker?.unref()
    this.#port?.unref()
  }

  async stop (): Promise<void> {
    const worker = this.#worker
    this.#worker = undefined
    if (worker === undefined) { this.#closeEventFd(); return }
    this.send({ t: 'close' })
    const exited = once(worker, 'exit')
    // Bounded wait for the worker; the timer is cleared so that it cannot hold the process for 2 s
    // after a stop (it did: every SIGTERM exit took the daemon's 2 s exit guard).
    let timer: NodeJS.Timeout | undefined
    await Promise.race([exited, new Promise((resolve) => { timer = setTimeout(resolve, 2000) })])
    clearTimeout(timer)
    this.#port?.close()
    this.#closeEventFd()
  }

  #closeEventFd (): void {
    if (this.#eventFd >= 0) spliceLibc.close(this.#eventFd)
    this.#eventFd = -1
  }

  /** A worker that died takes its connections with it: every relay ends as an error. */
  #failAll (): void {
    for (const [id, l] of [...this.#listeners]) l({ t: 'end', id, reason: 'error', errno: 5 /* EIO */ })
  }

  send (c: EngineCommand): void {
    this.#port?.postMessage(c)
    spliceLibc.write(this.#eventFd, this.#wake, 8)
  }

  /** A counter slot and its id; the listener gets the connection's engine events. */
  open (listener: EventListener): { id: number, slot: Float64Array } {
    let id = this.#free.pop()
    if (id === undefined) {
      const buffer = new SharedArrayBuffer(SLOTS_PER_CHUNK * SLOT_FIELDS * 8)
      const chunk = new Float64Array(buffer)
      const first = this.#chunks.length * SLOTS_PER_CHUNK
      this.#chunks.push(chunk)
      this.send({ t: 'chunk', buffer })
      for (let i = SLOTS_PER_CHUNK - 1; i > 0; i--) this.#free.push(first + i)
      id = first
    }
    const chunk = this.#chunks[Math.floor(id / SLOTS_PER_CHUNK)] as Float64Array
    const base = (id % SLOTS_PER_CHUNK) * SLOT_FIELDS
    const slot = chunk.subarray(base, base + SLOT_FIELDS)
    slot.fill(0)
    if (this.#listeners.size === 0) { this.#worker?.ref(); this.#port?.ref() }
    this.#listeners.set(id, listener)
    return { id, slot }
  }

  close (id: number): void {
    if (this.#listeners.delete(id)) this.#free.push(id)
    if (this.#listeners.size === 0) this.#idle()
  }
}
