/**
 * The splice engine: the worker thread of the splice data plane (docs/data-plane.md). It owns one
 * epoll instance; every relayed connection's two socket fds are in it (edge-triggered: EPOLLIN,
 * EPOLLOUT, EPOLLRDHUP). Each direction moves bytes src → pipe → dst with splice(2)
 * (SPLICE_F_MOVE | SPLICE_F_NONBLOCK): the bytes never enter user space.
 *
 * - Pipes are taken only while a direction has bytes in flight: from a small pool when the source
 *   becomes readable, back to the pool when it is empty again and the source has nothing more
 *   (EAGAIN). An idle connection holds no pipe (0 extra fds, no pipe buffers). At most `maxPipes`
 *   are open at once (the fd budget); a direction that finds none waits for one to come back.
 * - Backpressure is the kernel's: a direction whose destination is full (EAGAIN) leaves its bytes
 *   in its pipe and stops reading its source until EPOLLOUT; the source's receive window closes.
 * - FIN: splice returning 0 is the source's end of stream, unless SO_ERROR holds an error (a reset
 *   that came with the last bytes), which ends the connection as an error. After the pipe is
 *   empty the destination's SO_LINGER reset-on-close is cleared and it is shut down for writing.
 * - The fds stay owned by the main thread's Socket objects (paused, never read or written while
 *   here). The engine never closes them: it removes them from its epoll set and reports `end`;
 *   only then may the main thread close them (a closed fd number could be reused at once).
 *
 * Counters per connection live in SharedArrayBuffer slots the main thread reads synchronously.
 */
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads'
import { lastErrno, spliceLibc as sys } from './libc.ts'
import { Slot, SLOT_FIELDS, SLOTS_PER_CHUNK, type EngineCommand, type EngineEvent } from './splice-protocol.ts'

const EPOLLIN = 0x1
const EPOLLOUT = 0x4
const EPOLLERR = 0x8
const EPOLLRDHUP = 0x2000
const EPOLLET = 0x80000000
const EPOLL_CTL_ADD = 1
const EPOLL_CTL_DEL = 2
const SPLICE_F_MOVE = 1
const SPLICE_F_NONBLOCK = 2
const O_NONBLOCK = 0x800
const O_CLOEXEC = 0x80000
const EAGAIN = 11
const EINTR = 4
const SHUT_WR = 1
const F_SETPIPE_SZ = 1031
/** struct epoll_event is packed (12 bytes) on x86-64 only; 16 elsewhere. */
const EV_SIZE = process.arch === 'x64' ? 12 : 16
/** Offset of epoll_event.data (u64) in the struct. */
const EV_DATA = process.arch === 'x64' ? 4 : 8
const MAX_EVENTS = 256
/** Empty pipes kept for reuse; more are closed when released. */
const POOL_MAX = 64
/** Empty pipes kept once no pipe has been taken for `poolIdleMs`: the rest are closed (their fds count against RLIMIT_NOFILE). */
export const POOL_KEEP = 4
/** How long the pool may stay above POOL_KEEP without a pipe being taken. */
export const POOL_IDLE_MS = 5000
/** Fields of the engine-wide stats (an Int32Array over a SharedArrayBuffer the main thread reads). */
export const EngineStat = { pipesOpen: 0, pipesPooled: 1 } as const
export const ENGINE_STAT_FIELDS = 2

interface Direction {
  readonly src: number
  readonly dst: number
  /** [read end, write end] while bytes are in flight. */
  pipe: [number, number] | undefined
  inPipe: number
  eof: boolean
  finSent: boolean
  blocked: boolean
  waitingForPipe: boolean
  readonly counter: number
  readonly pipeGauge: number
  readonly backpressure: number
}

interface Conn {
  readonly id: number
  readonly slot: Float64Array
  readonly up: Direction
  readonly down: Direction
  ended: boolean
}

interface EngineOptions {
  eventFd: number
  maxPipes: number
  pipeSize: number
  port: MessagePort
  /** EngineStat fields, shared with the main thread (pipesOpen() of the data plane). */
  stats?: Int32Array
  /** Pool trimming (POOL_KEEP, POOL_IDLE_MS by default; tests shorten it). */
  poolKeep?: number
  poolIdleMs?: number
}

const scratch = Buffer.alloc(8)
const intBuf = Buffer.alloc(4)
const lenBuf = [4]

export class SpliceEngine {
  readonly #epfd: number
  readonly #opts: EngineOptions
  readonly #byFd = new Map<number, Conn>()
  readonly #byId = new Map<number, Conn>()
  readonly #chunks: Float64Array[] = []
  readonly #pool: Array<[number, number]> = []
  readonly #waiting = new Set<Direction>()
  #pipesOpen = 0
  /** When a pipe was last taken (Date.now()): the pool is trimmed after poolIdleMs without one. */
  #lastTake = 0
  readonly #poolKeep: number
  readonly #poolIdleMs: number
  #running = true
  readonly #events = Buffer.alloc(EV_SIZE * MAX_EVENTS)
  readonly #evBuf = Buffer.alloc(16)

  constructor (opts: EngineOptions) {
    this.#opts = opts
    this.#poolKeep = opts.poolKeep ?? POOL_KEEP
    this.#poolIdleMs = opts.poolIdleMs ?? POOL_IDLE_MS
    this.#epfd = sys.epollCreate1(O_CLOEXEC) as number
    if (this.#epfd < 0) throw new Error(`epoll_create1: errno ${lastErrno()}`)
    this.#ctl(EPOLL_CTL_ADD, opts.eventFd, EPOLLIN)
  }

  run (): void {
    while (this.#running) {
      // With pipes to trim, wake up in time for it; otherwise the 1 s safety net.
      const timeout = this.#pool.length > this.#poolKeep ? Math.min(1000, this.#poolIdleMs) : 1000
      const n = sys.epollWait(this.#epfd, this.#events, MAX_EVENTS, timeout) as number
      if (n < 0) {
        if (lastErrno() === EINTR) continue
        throw new Error(`epoll_wait: errno ${lastErrno()}`)
      }
      for (let i = 0; i < n; i++) {
        const off = i * EV_SIZE
        const events = this.#events.readUInt32LE(off)
        const fd = this.#events.readUInt32LE(off + EV_DATA)
        if (fd === this.#opts.eventFd) { this.#commands(); continue }
        const conn = this.#byFd.get(fd)
        if (conn !== undefined) this.#service(conn, (events & EPOLLERR) !== 0 ? fd : -1)
      }
      if (this.#waiting.size > 0 && this.#pool.length > 0) this.#serviceWaiting()
      if (this.#pool.length > this.#poolKeep && Date.now() - this.#lastTake >= this.#poolIdleMs) this.#trimPool()
    }
  }

  /** Close the pooled pipes beyond poolKeep: a burst's pipes do not stay open (2 fds each) once it is over. */
  #trimPool (): void {
    while (this.#pool.length > this.#poolKeep) {
      const p = this.#pool.pop() as [number, number]
      sys.close(p[0])
      sys.close(p[1])
      this.#pipesOpen--
    }
    this.#stats()
  }

  #stats (): void {
    const st = this.#opts.stats
    if (st === undefined) return
    st[EngineStat.pipesOpen] = this.#pipesOpen
    st[EngineStat.pipesPooled] = this.#pool.length
  }

  #ctl (op: number, fd: number, events: number): number {
    this.#evBuf.fill(0)
    this.#evBuf.writeUInt32LE(events >>> 0, 0)
    this.#evBuf.writeUInt32LE(fd, EV_DATA)
    return sys.epollCtl(this.#epfd, op, fd, this.#evBuf) as number
  }

  #commands (): void {
    sys.read(this.#opts.eventFd, scratch, 8)
    for (;;) {
      const m = receiveMessageOnPort(this.#opts.port)
      if (m === undefined) return
      this.#command(m.message as EngineCommand)
    }
  }

  #command (c: EngineCommand): void {
    if (c.t === 'chunk') { this.#chunks.push(new Float64Array(c.buffer)); return }
    if (c.t === 'close') { this.#running = false; return }
    if (c.t === 'stop') {
      const conn = this.#byId.get(c.id)
      if (conn !== undefined) this.#end(conn, 'stopped', 0)
      return
    }
    const chunk = this.#chunks[Math.floor(c.id / SLOTS_PER_CHUNK)]
    if (chunk === undefined) { this.#post({ t: 'end', id: c.id, reason: 'error', errno: 22 }); return }
    const base = (c.id % SLOTS_PER_CHUNK) * SLOT_FIELDS
    const slot = chunk.subarray(base, base + SLOT_FIELDS)
    const dir = (src: number, dst: number, eof: boolean, counter: number, pipeGauge: number, backpressure: number): Direction =>
      ({ src, dst, pipe: undefined, inPipe: 0, eof, finSent: false, blocked: false, waitingForPipe: false, counter, pipeGauge, backpressure })
    const conn: Conn = {
      id: c.id,
      slot,
      up: dir(c.client, c.server, c.clientEnded, Slot.up, Slot.pipeUp, Slot.backpressureServer),
      down: dir(c.server, c.client, c.serverEnded, Slot.down, Slot.pipeDown, Slot.backpressureClient),
      ended: false
    }
    this.#byId.set(c.id, conn)
    this.#byFd.set(c.client, conn)
    this.#byFd.set(c.server, conn)
    const ev = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET
    if (this.#ctl(EPOLL_CTL_ADD, c.client, ev) < 0 || this.#ctl(EPOLL_CTL_ADD, c.server, ev) < 0) {
      this.#end(conn, 'error', lastErrno())
      return
    }
    this.#service(conn, -1)
  }

  /** Run both directions until each would block; `errFd` ≥ 0: EPOLLERR was reported on it. */
  #service (conn: Conn, errFd: number): void {
    if (errFd >= 0) {
      const err = socketError(errFd)
      if (err !== 0) { this.#end(conn, 'error', err); return }
    }
    this.#pump(conn, conn.up)
    if (!conn.ended) this.#pump(conn, conn.down)
    if (!conn.ended && conn.up.finSent && conn.down.finSent) this.#end(conn, 'normal', 0)
  }

  #pump (conn: Conn, d: Direction): void {
    for (;;) {
      if (d.inPipe > 0) {
        const pipe = d.pipe as [number, number]
        const n = sys.splice(pipe[0], null, d.dst, null, d.inPipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK) as number
        if (n < 0) {
          const e = lastErrno()
          if (e === EAGAIN) { d.blocked = true; return }
          if (e === EINTR) continue
          this.#end(conn, 'error', e); return
        }
        if (d.blocked) { d.blocked = false; conn.slot[d.backpressure] = conn.slot[d.backpressure]! + 1 }
        d.inPipe -= n
        conn.slot[d.counter] = conn.slot[d.counter]! + n
        conn.slot[d.pipeGauge] = d.inPipe
        continue
      }
      if (d.eof) {
        if (!d.finSent) this.#sendFin(conn, d)
        return
      }
      if (d.pipe === undefined && !this.#takePipe(d)) return
      const pipe = d.pipe as unknown as [number, number]
      const n = sys.splice(d.src, null, pipe[1], null, this.#opts.pipeSize, SPLICE_F_MOVE | SPLICE_F_NONBLOCK) as number
      if (n > 0) {
        d.inPipe = n
        conn.slot[d.pipeGauge] = n
        conn.slot[Slot.lastActivity] = Date.now()
        continue
      }
      if (n === 0) {
        const err = socketError(d.src)
        if (err !== 0) { this.#end(conn, 'error', err); return }
        d.eof = true
        this.#releasePipe(d)
        continue
      }
      const e = lastErrno()
      if (e === EINTR) continue
      this.#releasePipe(d)
      if (e !== EAGAIN) this.#end(conn, 'error', e)
      return
    }
  }

  #sendFin (conn: Conn, d: Direction): void {
    d.finSent = true
    conn.slot[Slot.fins] = conn.slot[Slot.fins]! + 1
    setLinger(d.dst, false)
    if ((sys.shutdown(d.dst, SHUT_WR) as number) < 0) { this.#end(conn, 'error', lastErrno()); return }
    conn.slot[Slot.lastActivity] = Date.now()
    this.#post({ t: 'fin', id: conn.id, side: d === conn.up ? 'server' : 'client' })
  }

  #takePipe (d: Direction): boolean {
    this.#lastTake = Date.now()
    const pooled = this.#pool.pop()
    if (pooled !== undefined) { d.pipe = pooled; this.#stats(); return true }
    if (this.#pipesOpen < this.#opts.maxPipes) {
      const fds = Buffer.alloc(8)
      if ((sys.pipe2(fds, O_NONBLOCK | O_CLOEXEC) as number) === 0) {
        d.pipe = [fds.readInt32LE(0), fds.readInt32LE(4)]
        this.#pipesOpen++
        this.#stats()
        if (this.#opts.pipeSize > 65536) sys.fcntl(d.pipe[1], F_SETPIPE_SZ, this.#opts.pipeSize)
        return true
      }
    }
    // No pipe (budget spent or EMFILE): wait until one is released; the source's bytes stay in the kernel.
    d.waitingForPipe = true
    this.#waiting.add(d)
    return false
  }

  #releasePipe (d: Direction): void {
    if (d.pipe === undefined) return
    if (this.#pool.length < POOL_MAX) {
      this.#pool.push(d.pipe)
    } else {
      sys.close(d.pipe[0])
      sys.close(d.pipe[1])
      this.#pipesOpen--
    }
    d.pipe = undefined
    this.#stats()
  }

  #serviceWaiting (): void {
    for (const d of this.#waiting) {
      if (this.#pool.length === 0) return
      this.#waiting.delete(d)
      d.waitingForPipe = false
      const conn = this.#byFd.get(d.src)
      if (conn !== undefined && !conn.ended) this.#service(conn, -1)
    }
  }

  #dropPipe (d: Direction): void {
    this.#waiting.delete(d)
    if (d.pipe === undefined) return
    if (d.inPipe === 0) { this.#releasePipe(d); return }
    sys.close(d.pipe[0])
    sys.close(d.pipe[1])
    this.#pipesOpen--
    d.pipe = undefined
    this.#stats()
  }

  #end (conn: Conn, reason: 'normal' | 'error' | 'stopped', errno: number): void {
    if (conn.ended) return
    conn.ended = true
    this.#ctl(EPOLL_CTL_DEL, conn.up.src, 0)
    this.#ctl(EPOLL_CTL_DEL, conn.down.src, 0)
    this.#byFd.delete(conn.up.src)
    this.#byFd.delete(conn.down.src)
    this.#byId.delete(conn.id)
    this.#dropPipe(conn.up)
    this.#dropPipe(conn.down)
    this.#post({ t: 'end', id: conn.id, reason, errno })
  }

  #post (e: EngineEvent): void {
    this.#opts.port.postMessage(e)
  }
}

function socketError (fd: number): number {
  lenBuf[0] = 4
  const rc = sys.getsockopt(fd, 1 /* SOL_SOCKET */, 4 /* SO_ERROR */, intBuf, lenBuf) as number
  return rc < 0 ? 0 : intBuf.readInt32LE(0)
}

const lingerBuf = Buffer.alloc(8)
function setLinger (fd: number, on: boolean): void {
  lingerBuf.writeInt32LE(on ? 1 : 0, 0)
  lingerBuf.writeInt32LE(0, 4)
  sys.setsockopt(fd, 1 /* SOL_SOCKET */, 13 /* SO_LINGER */, lingerBuf, 8)
}

if (parentPort !== null && (workerData as { spliceEngine?: boolean } | undefined)?.spliceEngine === true) {
  const d = workerData as { eventFd: number, maxPipes: number, pipeSize: number, port: MessagePort, stats: SharedArrayBuffer, poolIdleMs?: number }
  const { eventFd, maxPipes, pipeSize, port, poolIdleMs } = d
  new SpliceEngine({ eventFd, maxPipes, pipeSize, port, stats: new Int32Array(d.stats), ...(poolIdleMs === undefined ? {} : { poolIdleMs }) }).run()
  d.port.close()
}
