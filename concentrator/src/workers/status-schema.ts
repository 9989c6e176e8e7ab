/**
 * `GET /api/v1/status` of the supervisor (`workers` > 1): its own state, the sum of the workers'
 * connections and, per worker, its PID, readiness, restarts and its own concentrator status (null
 * when it is down or did not answer within the call timeout).
 */
import { Type, type Static } from 'typebox'
import { KernelSettingsSchema } from '../../../shared/src/mgmt/status-schema.ts'
import { ConcentratorStatusSchema } from '../mgmt/status-schema.ts'

const Count = Type.Integer({ minimum: 0 })

export const WorkerStatusSchema = Type.Object({
  index: Count,
  pid: Type.Union([Count, Type.Null()]),
  ready: Type.Boolean(),
  restarts: Count,
  status: Type.Union([ConcentratorStatusSchema, Type.Null()])
})

export const SupervisorStatusSchema = Type.Object({
  version: Type.String(),
  uptimeSeconds: Count,
  ready: Type.Boolean(),
  draining: Type.Boolean(),
  pid: Count,
  connections: Type.Object({ active: Count, relaying: Count }, { description: 'sum over the workers that answered' }),
  workers: Type.Array(WorkerStatusSchema),
  kernel: KernelSettingsSchema
})

export type WorkerStatus = Static<typeof WorkerStatusSchema>
export type SupervisorStatus = Static<typeof SupervisorStatusSchema>
