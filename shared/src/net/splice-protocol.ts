/**
 * What the main thread and the splice engine's worker (splice-engine.ts) tell each other, and the
 * layout of the shared counter slots (one per relayed connection, in SharedArrayBuffer chunks).
 */

/** Float64 fields of one slot. */
export const Slot = {
  /** Bytes spliced to the server leg. */
  up: 0,
  /** Bytes spliced to the client leg. */
  down: 1,
  /** Bytes in the up / down pipe (read, not yet written). */
  pipeUp: 2,
  pipeDown: 3,
  /** Date.now() of the last byte read or FIN passed on. */
  lastActivity: 4,
  /** Writes that found the leg full (EAGAIN) and later went on: the splice form of a 'drain' after a pause. */
  backpressureServer: 5,
  backpressureClient: 6,
  /** FINs passed on (0–2), set before the shutdown(2) that sends the FIN, so `halfClosed()` never lags the wire. */
  fins: 7
} as const

export const SLOT_FIELDS = 8
export const SLOTS_PER_CHUNK = 1024

export type EngineCommand =
  | { t: 'chunk', buffer: SharedArrayBuffer }
  | { t: 'add', id: number, client: number, server: number, clientEnded: boolean, serverEnded: boolean }
  | { t: 'stop', id: number }
  | { t: 'close' }

export type EngineEvent =
  /** A FIN was passed on to leg `side` (that leg is shut down for writing). */
  | { t: 'fin', id: number, side: 'client' | 'server' }
  /** The engine let go of both fds: the main thread may close them. errno ≠ 0 with reason 'error'. */
  | { t: 'end', id: number, reason: 'normal' | 'error' | 'stopped', errno: number }
