/**
 * `GET /api/v1/status` of the concentrator: the response schema (docs/concentrator.md, "Management
 * API") and its type, which the composition root's status builder must satisfy.
 */
import { Type, type Static } from 'typebox'
import { KernelSettingsSchema, OverloadStatusSchema } from '../../../shared/src/mgmt/status-schema.ts'

const Count = Type.Integer({ minimum: 0 })

export const ConcentratorStatusSchema = Type.Object({
  version: Type.String(),
  uptimeSeconds: Count,
  ready: Type.Boolean(),
  draining: Type.Boolean(),
  listeners: Type.Array(Type.Object({ host: Type.String(), port: Count, mode: Type.String(), protocol: Type.Union([Type.Literal('mptcp'), Type.Literal('tcp')]) })),
  connections: Type.Object({
    active: Count,
    relaying: Count,
    handshaking: Type.Integer(),
    max: Count,
    perSourceMax: Count,
    unauthenticated: Count,
    unauthenticatedMax: Count,
    sources: Count
  }, { description: 'every accept path (SOCKS5, Convert, transparent)' }),
  auth: Type.Object({ trustedPrefixes: Count, users: Count, throttledSources: Count }),
  policy: Type.Object({ hostAddresses: Type.Array(Type.String(), { description: 'own addresses refused as destinations' }) }),
  overload: OverloadStatusSchema,
  kernel: KernelSettingsSchema
})

export type ConcentratorStatus = Static<typeof ConcentratorStatusSchema>
