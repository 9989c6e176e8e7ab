/**
 * Byte relay between the two legs of a proxied connection (client = the MPTCP side facing the CPE or
 * LAN, server = the re-originated TCP side). Used after a handshake has finished.
 *
 * - Each direction is a small pump ('data' → write, pause on a full buffer, resume on 'drain'):
 *   backpressure is honoured and an error or premature close on either leg destroys both. Two
 *   `stream.pipeline()`s did the same but cost ≈ 10 `stream.finished` subscriptions per
 *   connection, about half of an idle relayed connection's heap (bench/results/relay-*.md).
 * - Half-close: when one side sends FIN, its pump ends the other leg's writable side with `end()`
 *   (both legs run with `allowHalfOpen: true`), and a half-close timer bounds how long the other direction may stay
 *   open (CLOSE_WAIT / FIN_WAIT2 build-up: docs/design/threat-model.md, threat 3).
 * - Idle: one socket timeout on the client leg, which sees every byte in both directions.
 * - Abnormal ends are resets, never FINs: when a leg errors (ECONNRESET, EPIPE, ETIMEDOUT …), closes
 *   before its FIN was read and ours flushed, or the relay is aborted (idle / half-close / max
 *   duration / drain / overload), the other leg is closed with RST (`resetAndDestroy`). A FIN there would make a
 *   truncated transfer look complete to the far application, and a FIN-closed socket would keep its
 *   unsent send buffer in FIN-WAIT for up to the peer's lifetime. Only a normal end (both FINs
 *   relayed) closes with FIN.
 * - Process death is a reset too: while a leg is relayed it has SO_LINGER {1, 0} (`armResetOnClose`),
 *   so when the daemon is killed (kill -9, OOM) the kernel's close sends RST / MP_FASTCLOSE instead
 *   of the FIN a plain close would send (without it a LAN client read a crash as a complete
 *   download). Right before the relay passes a FIN on (`end()`), that leg goes back to a normal
 *   close: its last bytes and FIN are then the kernel's to deliver, even if the process dies.
 * - Dead peers: `keepalive` (SO_KEEPALIVE, TCP_KEEPIDLE/KEEPINTVL/KEEPCNT, TCP_USER_TIMEOUT) is set on
 *   both legs; a peer that vanished ends the relay with ETIMEDOUT, reason 'peer_timeout'. On an MPTCP
 *   leg keepalive only kills the subflows (the MPTCP socket stays up with none, no error), so every
 *   keepalive interval the relay reads MPTCP_INFO; no subflow at two checks in a row (a path manager
 *   may re-create one in between) ends the relay the same way. A plain leg whose live peer keeps
 *   its window shut (a client that stopped reading) is not a dead peer: its TCP_USER_TIMEOUT is off
 *   while it is window-stalled (zero-window.ts; the kernel would otherwise drop it after the timeout).
 * - A reset is never mistaken for a FIN: Node reports a reset that arrives with the last queued bytes
 *   as 'end' (libuv synthesises EOF on POLLHUP after a short read), so at every 'end' the relay
 *   reads SO_ERROR; a pending ECONNRESET (or any error) resets the other leg instead of ending it.
 *   This is how the concentrator's drain cut-off (MP_FASTCLOSE) sometimes reached the LAN client
 *   as EOF: the CPE's upstream leg was paused by backpressure when the fastclose arrived.
 * - Bytes are counted from the sockets' own counters when the relay ends, never per chunk.
 *
 * Bytes already read past the handshake (`earlyData`) are written to the server first; nothing read
 * is ever dropped. A leg whose FIN was already consumed before the relay started (a handshake or the
 * CPE's first-bytes collector read to end of stream: `readableEnded`) is treated as half-closed at
 * once: its FIN is passed on after the early data instead of waiting for an 'end' that never comes.
 */
import type { Socket } from 'node:net'
import { armResetOnClose, disarmResetOnClose, pendingSocketError, type LegKeepalive } from './sockopt.ts'
import { stopPeerWatch, watchPeers } from './peer-watch.ts'
import type { DataPlane } from './data-plane.ts'

export type RelayEndReason = 'normal' | 'idle_timeout' | 'half_close_timeout' | 'max_duration' | 'error' | 'drain' | 'peer_timeout' | 'overload'

export interface RelayOptions {
  /** Close both legs after this long without a byte in either direction. Milliseconds; 0 = off. */
  idleTimeoutMs: number
  /** After the first FIN, the other direction must finish within this. Milliseconds; 0 = off. */
  halfCloseTimeoutMs: number
  /** Hard cap on the connection's lifetime. Milliseconds; 0 or absent = off. */
  maxDurationMs?: number
  /** Dead-peer detection set on both legs when the relay starts; absent = the kernel's (off). */
  keepalive?: LegKeepalive
  /** Bytes read from the client before the relay started that belong to the server (early data). */
  earlyData?: Uint8Array
  /** The client's FIN was already read before the relay started (pipelined request, data, FIN): the server leg is ended after `earlyData`. */
  clientEnded?: boolean
  /**
   * Called when a leg's write buffer filled up and the relay paused reading the other leg
   * (observed as that leg's 'drain', which ends every such pause). `side` is the leg written to.
   */
  onBackpressure?: (side: RelaySide) => void
  /** Called once when the first direction finishes (FIN seen) while the other is still open. */
  onHalfClose?: () => void
  /** Called once when a half-closed relay ends (pairs with onHalfClose, for a gauge). */
  onHalfCloseEnd?: () => void
  /**
   * Called when a FIN was read from a leg or passed on to one, while both fds are still open (the
   * CPE samples per-path counters then). `side`: the leg the FIN went to.
   */
  onFin?: (side: RelaySide) => void
  /**
   * Who moves the bytes (data-plane.ts): absent or a stream data plane = this module's JS pumps;
   * a started splice data plane = the splice engine (splice-relay.ts). Same result either way.
   */
  dataPlane?: DataPlane | undefined
}

/** `client` = the leg facing the CPE / LAN, `server` = the re-originated leg. */
export type RelaySide = 'client' | 'server'

export interface RelayResult {
  reason: RelayEndReason
  /** Client → server bytes written to the server leg (includes early data). */
  bytesUp: number
  /** Server → client bytes written to the client leg. */
  bytesDown: number
  durationMs: number
  error?: Error
  /** A keepalive option the kernel refused on a leg (the relay runs on without it). */
  sockoptError?: Error
}

export interface Relay {
  /** Settles once both legs are closed. Never rejects. */
  readonly done: Promise<RelayResult>
  /** Bytes relayed so far: `{ up, down }`. */
  progress: () => { up: number, down: number }
  /** Tear both legs down now, recording `reason` (e.g. 'drain' at shutdown). Idempotent. */
  abort: (reason: RelayEndReason) => void
  /** Whether one direction has finished while the other is still open. */
  halfClosed: () => boolean
  /** Bytes queued in user space per leg, waiting to be written to it. */
  buffered: () => Record<RelaySide, number>
}

/** Per-leg progress flags: the relay is finished when both legs have read their FIN and flushed ours. */
interface LegState { readEnded: boolean, writeFinished: boolean, closed: boolean, pausedByUs: boolean }

/** Close a leg with RST (SO_LINGER 0); a socket already gone is left alone. */
export { peerWatchCount, watchPeers } from './peer-watch.ts'

export function resetLeg (s: Socket): void {
  if (s.destroyed) return
  try {
    s.resetAndDestroy()
  } catch {
    s.destroy() // not a TCP handle (cannot happen for relayed legs): close it anyway
  }
}

export function relay (client: Socket, server: Socket, opts: RelayOptions): Relay {
  if (opts.dataPlane?.kind() === 'splice') return opts.dataPlane.relay(client, server, opts)
  return streamRelay(client, server, opts)
}

function streamRelay (client: Socket, server: Socket, opts: RelayOptions): Relay {
  // What the relay's closures need of `opts`, read once: they capture these, not the options
  // object (one fewer object, often with a shape of its own, kept per idle relayed connection).
  const { onBackpressure, onHalfClose, onHalfCloseEnd, onFin, halfCloseTimeoutMs } = opts
  const clientEnded = opts.clientEnded === true
  const started = Date.now()
  // Half-close needs both legs to keep their writable side open after the peer's FIN.
  client.allowHalfOpen = true
  server.allowHalfOpen = true
  const upBase = server.bytesWritten
  const downBase = client.bytesWritten
  const c: LegState = { readEnded: false, writeFinished: false, closed: false, pausedByUs: false }
  const sv: LegState = { readEnded: false, writeFinished: false, closed: false, pausedByUs: false }
  let reason: RelayEndReason | undefined
  let firstError: Error | undefined
  let sockoptError: Error | undefined
  let halfCloseTimer: NodeJS.Timeout | undefined
  let maxTimer: NodeJS.Timeout | undefined
  let peerTimers: NodeJS.Timeout[] = []
  let halfClosedOpen = false
  let settle: (r: RelayResult) => void = () => {}
  const done = new Promise<RelayResult>((resolve) => { settle = resolve })

  const progress = (): { up: number, down: number } => ({
    up: server.bytesWritten - upBase,
    down: client.bytesWritten - downBase
  })
  const directionsDone = (): number => (sv.writeFinished ? 1 : 0) + (c.writeFinished ? 1 : 0)

  /**
   * Tear both legs down. A normal end closes with FIN (both directions are over); anything else
   * resets, so neither far end mistakes a cut-off for a complete transfer and the kernel frees the
   * send buffers at once instead of holding them in FIN-WAIT.
   */
  const abort = (why: RelayEndReason): void => {
    reason ??= why
    if (reason === 'normal') {
      client.destroy()
      server.destroy()
    } else {
      resetLeg(client)
      resetLeg(server)
    }
  }

  const finish = (): void => {
    if (halfClosedOpen) onHalfCloseEnd?.()
    clearTimeout(halfCloseTimer)
    clearTimeout(maxTimer)
    stopPeerWatch(peerTimers)
    const { up, down } = progress()
    const result: RelayResult = { reason: reason ?? 'normal', bytesUp: up, bytesDown: down, durationMs: Date.now() - started }
    if (firstError !== undefined) result.error = firstError
    if (sockoptError !== undefined) result.sockoptError = sockoptError
    settle(result)
  }

  /** A direction ended cleanly (the FIN reached the other leg and our writes are flushed). */
  const onWriteFinished = (): void => {
    if (directionsDone() === 1 && !client.destroyed && !server.destroyed) {
      halfClosedOpen = true
      onHalfClose?.()
      if (halfCloseTimeoutMs > 0) halfCloseTimer = setTimeout(() => { abort('half_close_timeout') }, halfCloseTimeoutMs)
    }
    // Both directions are over: nothing may linger (a leg can still be open for reading).
    if (directionsDone() === 2) abort('normal')
  }

  const onClose = (leg: LegState): void => {
    leg.closed = true
    if (c.closed && sv.closed) {
      finish()
    } else if (!(leg.readEnded && leg.writeFinished)) {
      // Closed before its FIN was read and ours flushed: the peer vanished (RST, error, timeout).
      firstError ??= new Error('relay leg closed prematurely')
      abort('error')
    }
    // A leg that closed cleanly leaves the other to flush its last bytes and FIN.
  }

  /** Copy src → dst with backpressure; one set of listeners per direction, no stream.pipeline. */
  const pump = (src: Socket, srcLeg: LegState, dst: Socket, dstLeg: LegState, dstSide: RelaySide): void => {
    src.on('data', (chunk: Buffer) => {
      if (!dst.write(chunk)) {
        srcLeg.pausedByUs = true
        src.pause()
      }
    })
    dst.on('drain', () => {
      if (!srcLeg.pausedByUs) return
      srcLeg.pausedByUs = false
      onBackpressure?.(dstSide)
      src.resume()
    })
    const onEnd = (): void => {
      // A reset that came with the last queued bytes reaches Node as an end of stream (libuv:
      // POLLHUP after a short read); the socket still holds the error. Pass it on as a reset.
      const pending = pendingSocketError(src)
      if (pending !== undefined) {
        firstError ??= Object.assign(new Error(`${src === client ? 'client' : 'server'} leg: ${pending} read as end of stream`), { code: pending })
        abort(pending === 'ETIMEDOUT' ? 'peer_timeout' : 'error')
        return
      }
      srcLeg.readEnded = true
      lingerOff(dst)
      onFin?.(dstSide)
      dst.end()
    }
    dst.on('finish', () => {
      dstLeg.writeFinished = true
      onFin?.(dstSide)
      onWriteFinished()
    })
    // 'end' was emitted before the relay listened (nc -N style clients, a FIN read while the upstream
    // was dialled: `clientEnded`): pass the FIN on now, after the early data.
    if (src.readableEnded || (src === client && clientEnded)) onEnd()
    else src.on('end', onEnd)
  }

  /** A leg about to be ended cleanly: a normal close again (FIN, queued bytes delivered). */
  const lingerOff = (s: Socket): void => {
    if (!s.destroyed) disarmResetOnClose(s)
  }
  for (const [sock, leg] of [[client, c], [server, sv]] as const) {
    sockoptError ??= armResetOnClose(sock)
    sock.on('error', (err: Error & { code?: string }) => {
      firstError ??= err
      abort(err.code === 'ETIMEDOUT' ? 'peer_timeout' : 'error')
    })
    sock.on('close', () => { onClose(leg) })
  }
  if (opts.keepalive !== undefined) {
    const watch = watchPeers(client, server, opts.keepalive, (message) => {
      firstError ??= Object.assign(new Error(message), { code: 'ETIMEDOUT' })
      abort('peer_timeout')
    })
    peerTimers = watch.timers
    sockoptError ??= watch.sockoptError
  }
  if (opts.idleTimeoutMs > 0) {
    client.setTimeout(opts.idleTimeoutMs, () => { abort('idle_timeout') })
  }
  if (opts.maxDurationMs !== undefined && opts.maxDurationMs > 0) {
    maxTimer = setTimeout(() => { abort('max_duration') }, opts.maxDurationMs)
  }
  if (opts.earlyData !== undefined && opts.earlyData.length > 0) server.write(opts.earlyData)
  pump(client, c, server, sv, 'server')
  pump(server, sv, client, c, 'client')
  // A signalling layer may have paused a leg while it handshook; 'data' listeners do not undo that.
  client.resume()
  server.resume()

  return {
    done,
    progress,
    abort,
    halfClosed: () => directionsDone() === 1,
    buffered: () => ({ client: client.writableLength, server: server.writableLength })
  }
}
