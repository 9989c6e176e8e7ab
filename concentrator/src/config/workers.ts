/**
 * `workers`: how many worker processes serve the listeners on one machine (docs/scale-out.md,
 * "Many cores on one machine"). 1 (the default) is the single process of before; N > 1 turns the
 * started process into a supervisor (concentrator/src/workers/supervisor.ts) that forks N workers,
 * each binding every listener (transparent mode's TPROXY listeners too) with SO_REUSEPORT; 0 = one
 * worker per CPU. Read at start only.
 */
import { availableParallelism } from 'node:os'
import { integerOption } from '../../../shared/src/config/schema-helpers.ts'
import type { CheckProblem } from '../../../shared/src/config/problem.ts'

export const MAX_WORKERS = 64

export const WorkersSchema = integerOption({
  default: 1,
  minimum: 0,
  maximum: MAX_WORKERS,
  unit: 'processes',
  description: 'worker processes sharing the listeners (SO_REUSEPORT); 1: one process; 0: one per CPU; read at start only'
})

export interface WorkersCheckInput {
  readonly workers: number
  readonly listeners: readonly { readonly port: number }[]
}

/** The number of workers `workers` asks for on this machine (0 → the CPUs this process may use). */
export function resolveWorkers (workers: number, cpus: () => number = availableParallelism): number {
  return workers === 0 ? Math.min(Math.max(1, cpus()), MAX_WORKERS) : workers
}

/**
 * Cross-field checks of `workers` (concentrator/src/config/check.ts). Only when more than one worker
 * is asked for (`0` counts as many: the machine it runs on may have more than one CPU).
 */
export function workersProblems (c: WorkersCheckInput): CheckProblem[] {
  if (c.workers === 1) return []
  const out: CheckProblem[] = []
  // Every worker binds the same port: an ephemeral port (0) would give each worker its own.
  c.listeners.forEach((l, i) => {
    if (l.port === 0) out.push({ path: ['listeners', i, 'port'], message: 'must be a fixed port when workers is not 1 (each worker binds it with SO_REUSEPORT)' })
  })
  return out
}
