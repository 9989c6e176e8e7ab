/**
 * Messages between the supervisor and its workers (child_process IPC, `serialization: 'advanced'`).
 *
 *   supervisor → worker   { t: 'call', id, call }         a request; answered by one `reply`
 *                         { t: 'stop' }                    drain and exit (as SIGTERM does)
 *   worker → supervisor   { t: 'ready', index, pid }       started, listeners bound
 *                         { t: 'reply', id, ok, value | error }
 *
 * Calls: `metrics` (registry.getMetricsAsJSON()), `status`, `sessions` (a page from offset 0 large
 * enough for the merged page), `reload` (an already validated configuration).
 */
import type { ConcentratorConfig } from '../config/config.ts'

export type WorkerCall =
  | { kind: 'metrics' }
  | { kind: 'status' }
  | { kind: 'sessions', limit: number }
  | { kind: 'reload', config: ConcentratorConfig }

export type ToWorker = { t: 'call', id: number, call: WorkerCall } | { t: 'stop' }

export type FromWorker =
  | { t: 'ready', index: number, pid: number }
  | { t: 'reply', id: number, ok: true, value: unknown }
  | { t: 'reply', id: number, ok: false, error: { code: string, message: string } }

/** Environment variable naming a worker's index; set by the supervisor when it forks (not a config key). */
export const WORKER_ENV = 'HYBRID_CONCENTRATOR_WORKER'

/** The worker index from the environment, or undefined in a process the supervisor did not fork. */
export function workerIndex (env: NodeJS.ProcessEnv): number | undefined {
  const v = env[WORKER_ENV]
  if (v === undefined || !/^\d{1,2}$/.test(v)) return undefined
  return Number(v)
}

/** The part of a ChildProcess / `process` the IPC needs (tests use a pair of emitters). */
export interface IpcChannel {
  send: (message: unknown) => boolean
  on: (event: 'message', listener: (message: unknown) => void) => unknown
}

/** What the supervisor needs of a forked worker (a ChildProcess). */
export interface WorkerChild {
  readonly pid?: number | undefined
  send: (message: ToWorker) => boolean
  kill: (signal?: NodeJS.Signals) => boolean
  on: ((event: 'message', listener: (m: FromWorker) => void) => unknown) &
  ((event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void) => unknown) &
  ((event: 'error', listener: (err: Error) => void) => unknown)
}
