/**
 * One relayed connection on the splice data plane (docs/data-plane.md): the `Relay` of relay.ts
 * with the bytes moved by the splice engine's worker instead of JS 'data' events.
 *
 * The handover (the point where no byte may be lost or reordered):
 * 1. both legs stop reading at once and for good (`stopReading`: libuv's read is stopped, not just
 *    the stream paused — a paused net.Socket still reads up to its highWaterMark — and cannot be
 *    restarted by a later read()/resume() or by the read(0) Readable queues after a push, which
 *    a relay started inside a 'data' handler would otherwise get one tick later);
 * 2. whatever Node already holds in a leg's readable buffer (bytes read past the handshake,
 *    `unshift`ed leftovers) is taken out synchronously, in the same tick, so libuv cannot read more
 *    in between, and written to the other leg with the early data: through Node, in order;
 * 3. the engine gets the fds only when both legs' write queues are empty (the last write
 *    callback), so its splices come after every byte Node wrote;
 * 4. from then on the Socket objects are never read or written; they keep owning the fds (their
 *    keepalive, SO_LINGER and MPTCP_INFO helpers go on working) and are closed by this module only
 *    after the engine has reported `end`, i.e. has let go of the fds.
 *
 * Counters: bytes written by Node at the handover (socket.bytesWritten) plus the engine's spliced
 * bytes from the shared slot. Idle: one timer, re-armed from the engine's last-activity stamp.
 */
import type { Socket } from 'node:net'
import { constants } from 'node:os'
import { armResetOnClose, socketFd, stopReading } from './sockopt.ts'
import { resetLeg, watchPeers, type Relay, type RelayEndReason, type RelayOptions, type RelayResult, type RelaySide } from './relay.ts'
import { Slot, type EngineCommand, type EngineEvent } from './splice-protocol.ts'

/** What a splice relay needs of the engine host (data-plane.ts). */
export interface SpliceEngineLink {
  open: (listener: (e: EngineEvent) => void) => { id: number, slot: Float64Array }
  close: (id: number) => void
  send: (c: EngineCommand) => void
}

const errnoNames = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]))

/** Take what Node has buffered for reading out of a leg whose reading is stopped. */
function takeBuffered (s: Socket): Buffer[] {
  const out: Buffer[] = []
  while (s.readableLength > 0) {
    const b = s.read() as Buffer | null
    if (b === null) break
    out.push(b)
  }
  return out
}

/** Whether the leg's end of stream was already read by Node (the FIN sits behind the buffer). */
function readEof (s: Socket): boolean {
  return s.readableEnded || (s as unknown as { _readableState?: { ended?: boolean } })._readableState?.ended === true
}

function flushed (s: Socket): Promise<void> {
  if (s.writableLength === 0 || s.destroyed) return Promise.resolve()
  return new Promise((resolve) => { s.write(Buffer.alloc(0), () => { resolve() }) })
}

export function spliceRelay (engine: SpliceEngineLink, client: Socket, server: Socket, opts: RelayOptions): Relay {
  const started = Date.now()
  client.allowHalfOpen = true
  server.allowHalfOpen = true
  // Stop both legs (for good) before anything else, then drain Node's buffers in this same tick.
  stopReading(client)
  stopReading(server)
  const upBuffered = takeBuffered(client)
  const downBuffered = takeBuffered(server)
  const clientEnded = opts.clientEnded === true || readEof(client)
  const serverEnded = readEof(server)
  const upBase = server.bytesWritten
  const downBase = client.bytesWritten

  let reason: RelayEndReason | undefined
  let firstError: Error | undefined
  let sockoptError: Error | undefined
  let spliced = false
  let engineDone = false
  let finished = false
  let fins = 0
  let halfOpened = false
  let halfCloseTimer: NodeJS.Timeout | undefined
  let idleTimer: NodeJS.Timeout | undefined
  let maxTimer: NodeJS.Timeout | undefined
  let peerTimers: NodeJS.Timeout[] = []
  let settle: (r: RelayResult) => void = () => {}
  const done = new Promise<RelayResult>((resolve) => { settle = resolve })
  const { id, slot } = engine.open((e) => { onEngine(e) })
  slot[Slot.lastActivity] = started

  const progress = (): { up: number, down: number } => ({
    up: server.bytesWritten - upBase + slot[Slot.up]!,
    down: client.bytesWritten - downBase + slot[Slot.down]!
  })

  const closeLegs = (): void => {
    if (reason === 'normal') {
      client.destroy()
      server.destroy()
    } else {
      resetLeg(client)
      resetLeg(server)
    }
  }

  const abort = (why: RelayEndReason): void => {
    if (reason !== undefined) return
    reason = why
    if (spliced && !engineDone) engine.send({ t: 'stop', id }) // legs closed when the engine lets go
    else closeLegs()
  }

  /** Settles once both legs are destroyed (their fds are closed by destroy() at once) and the engine let go. */
  const finish = (): void => {
    if (finished || !client.destroyed || !server.destroyed || (spliced && !engineDone)) return
    finished = true
    engine.close(id)
    if (halfOpened) opts.onHalfCloseEnd?.()
    clearTimeout(halfCloseTimer)
    clearTimeout(idleTimer)
    clearTimeout(maxTimer)
    for (const t of peerTimers) clearInterval(t)
    const bp = [slot[Slot.backpressureServer]!, slot[Slot.backpressureClient]!] as const
    for (let i = 0; i < bp[0]; i++) opts.onBackpressure?.('server')
    for (let i = 0; i < bp[1]; i++) opts.onBackpressure?.('client')
    const { up, down } = progress()
    const result: RelayResult = { reason: reason ?? 'normal', bytesUp: up, bytesDown: down, durationMs: Date.now() - started }
    if (firstError !== undefined) result.error = firstError
    if (sockoptError !== undefined) result.sockoptError = sockoptError
    settle(result)
  }

  const onEngine = (e: EngineEvent): void => {
    if (e.t === 'fin') {
      fins++
      opts.onFin?.(e.side)
      if (fins === 1 && reason === undefined) {
        halfOpened = true
        opts.onHalfClose?.()
        if (opts.halfCloseTimeoutMs > 0) halfCloseTimer = setTimeout(() => { abort('half_close_timeout') }, opts.halfCloseTimeoutMs)
      }
      return
    }
    engineDone = true
    if (e.reason === 'error') {
      const code = errnoNames.get(e.errno) ?? `errno ${e.errno}`
      firstError ??= Object.assign(new Error(`splice relay: ${code}`), { code })
      reason ??= code === 'ETIMEDOUT' ? 'peer_timeout' : 'error'
    } else if (e.reason === 'normal') {
      reason ??= 'normal'
    }
    closeLegs()
    finish() // counted now, not a loop turn later at 'close': the far ends may already have seen the FINs
  }

  const armIdle = (ms: number): void => {
    idleTimer = setTimeout(() => {
      const quiet = Date.now() - slot[Slot.lastActivity]!
      if (quiet >= opts.idleTimeoutMs) abort('idle_timeout')
      else armIdle(opts.idleTimeoutMs - quiet)
    }, ms)
  }

  for (const sock of [client, server]) {
    sockoptError ??= armResetOnClose(sock)
    sock.on('error', (err: Error & { code?: string }) => {
      firstError ??= err
      abort(err.code === 'ETIMEDOUT' ? 'peer_timeout' : 'error')
    })
    sock.on('close', () => {
      // Only this module closes a spliced leg; before the handover a close is the peer going away.
      if (!spliced && reason === undefined) { firstError ??= new Error('relay leg closed prematurely'); abort('error') }
      if (!client.destroyed || !server.destroyed) closeLegs()
      finish()
    })
  }
  if (opts.keepalive !== undefined) {
    const watch = watchPeers(client, server, opts.keepalive, (message) => {
      firstError ??= Object.assign(new Error(message), { code: 'ETIMEDOUT' })
      abort('peer_timeout')
    })
    peerTimers = watch.timers
    sockoptError ??= watch.sockoptError
  }
  if (opts.idleTimeoutMs > 0) armIdle(opts.idleTimeoutMs)
  if (opts.maxDurationMs !== undefined && opts.maxDurationMs > 0) maxTimer = setTimeout(() => { abort('max_duration') }, opts.maxDurationMs)

  if (opts.earlyData !== undefined && opts.earlyData.length > 0) server.write(opts.earlyData)
  for (const b of upBuffered) server.write(b)
  for (const b of downBuffered) client.write(b)
  Promise.all([flushed(client), flushed(server)]).then(() => {
    if (reason !== undefined || client.destroyed || server.destroyed) return
    const cfd = fdOf(client)
    const sfd = fdOf(server)
    if (cfd < 0 || sfd < 0) { firstError ??= new Error('relay leg has no fd'); abort('error'); return }
    spliced = true
    engine.send({ t: 'add', id, client: cfd, server: sfd, clientEnded, serverEnded })
  }, () => {})

  return {
    done,
    progress,
    abort,
    halfClosed: () => slot[Slot.fins] === 1,
    buffered: () => ({
      client: client.writableLength + slot[Slot.pipeDown]!,
      server: server.writableLength + slot[Slot.pipeUp]!
    }) satisfies Record<RelaySide, number>
  }
}

function fdOf (s: Socket): number {
  try {
    return socketFd(s)
  } catch {
    return -1
  }
}
