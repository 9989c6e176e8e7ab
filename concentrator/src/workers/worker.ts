/**
 * A worker of the supervisor (`workers` > 1): the ordinary concentrator (concentrator.ts) with
 * SO_REUSEPORT listeners, without the machine-wide parts and without its own management server,
 * answering the supervisor's calls over IPC (ipc.ts). It tells the supervisor when it is ready;
 * `stop` from the supervisor, SIGTERM, or the loss of the IPC channel (the supervisor died) all end
 * in the same drain and exit (main.ts wires `stopSelf` to SIGTERM).
 */
import { isHybridError } from '../../../shared/src/errors.ts'
import type { Logger } from '../../../shared/src/log.ts'
import type { Concentrator } from '../concentrator.ts'
import type { FromWorker, IpcChannel, ToWorker, WorkerCall } from './ipc.ts'

export interface WorkerChannel extends IpcChannel {
  on: (event: 'message' | 'disconnect', listener: (message: unknown) => void) => unknown
}

export interface WorkerOptions {
  index: number
  pid: number
  channel: WorkerChannel
  /** Drain and exit through the process's own stop path (main.ts: SIGTERM to itself). */
  stopSelf: () => void
  /** After stop: let the process exit although the IPC channel is still open. */
  releaseChannel: () => void
  log: Logger
}

/** The concentrator as a worker: same start/stop/reload, plus the IPC server. */
export function serveAsWorker (c: Concentrator, o: WorkerOptions): Concentrator {
  const send = (m: FromWorker): void => {
    try { o.channel.send(m) } catch { /* channel closed: the disconnect handler stops us */ }
  }
  const answer = async (call: WorkerCall): Promise<unknown> => {
    switch (call.kind) {
      case 'metrics': return c.registry.getMetricsAsJSON()
      case 'status': return c.status()
      case 'sessions': return c.sessions.page(0, call.limit)
      case 'reload': await c.reload(call.config); return null
    }
  }
  o.channel.on('message', (raw) => {
    const m = raw as ToWorker
    if (m.t === 'stop') { o.stopSelf(); return }
    if (m.t !== 'call') return
    answer(m.call).then(
      (value) => { send({ t: 'reply', id: m.id, ok: true, value }) },
      (err: unknown) => {
        send({ t: 'reply', id: m.id, ok: false, error: { code: isHybridError(err) ? err.code : 'HYBRID_ERR_INTERNAL', message: err instanceof Error ? err.message : String(err) } })
      })
  })
  o.channel.on('disconnect', () => {
    o.log.warn({ worker: o.index }, 'supervisor gone (IPC channel closed): draining and exiting')
    o.stopSelf()
  })
  return {
    ...c,
    start: async () => {
      await c.start()
      send({ t: 'ready', index: o.index, pid: o.pid })
    },
    stop: async () => {
      try { await c.stop() } finally { o.releaseChannel() }
    }
  }
}
