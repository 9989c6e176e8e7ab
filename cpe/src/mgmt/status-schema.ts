/**
 * `GET /api/v1/status` (and `/status`) of the CPE agent: the response schema (docs/cpe.md,
 * "Management API") and its type, which the status builder (status.ts) must satisfy. fastify
 * serialises exactly these fields, and the OpenAPI document at /docs describes them.
 */
import { Type, type Static } from 'typebox'
import { OverloadStatusSchema } from '../../../shared/src/mgmt/status-schema.ts'
import { ConcentratorSchema } from '../config/socks5.ts'
import { STEERING_MODES } from '../config/steering.ts'

const Count = Type.Integer({ minimum: 0 })
const NullableString = Type.Union([Type.String(), Type.Null()])

export const CpeChecksSchema = Type.Object({
  uplinks: Type.Boolean({ description: 'the uplink manager (or observer) runs' }),
  listener: Type.Boolean({ description: 'the interception listener is bound (true when intercept.rules is off)' }),
  rules: Type.Boolean({ description: 'the owned nft table is installed (true unless intercept.rules is managed)' }),
  accepting: Type.Boolean({ description: 'started and not draining' })
})

export const FailoverViewSchema = Type.Object({
  steeredTo: NullableString,
  blackholeDetections: Count,
  lastBlackholeAt: NullableString
}, { description: 'failover.enabled: where failover steers new subflows (docs/failover.md)' })

export const SteeringViewSchema = Type.Object({
  mode: Type.Union([Type.Enum([...STEERING_MODES]), Type.Null()]),
  dslLoad: Type.Number(),
  lteActive: Type.Boolean(),
  preferred: NullableString,
  failbackPulseUntil: NullableString,
  backup: Type.Record(Type.String(), Type.Union([Type.Boolean(), Type.Null()])),
  classes: Type.Array(Type.Object({ name: Type.String(), access: Type.String(), active: Type.Boolean() }))
}, { description: 'steering mode and state (docs/steering.md)' })

export const CpeStatusSchema = Type.Object({
  version: Type.String(),
  uptimeSeconds: Count,
  ready: Type.Boolean(),
  draining: Type.Boolean(),
  checks: CpeChecksSchema,
  mode: Type.Union([Type.Literal('socks5'), Type.Literal('convert'), Type.Literal('transparent')]),
  multipathMode: Type.Union([Type.Literal('aggregate'), Type.Literal('backup')]),
  concentrator: Type.Object({
    ...ConcentratorSchema.properties,
    stepwise: Type.Array(Type.String(), { description: 'concentrators handled stepwise (found not to accept pipelining)' })
  }),
  connections: Type.Object({
    active: Count,
    relaying: Count,
    handshaking: Type.Integer(),
    max: Count,
    perSourceMax: Count
  }),
  failover: Type.Optional(FailoverViewSchema),
  steering: Type.Optional(SteeringViewSchema),
  overload: OverloadStatusSchema
})

export type CpeChecks = Static<typeof CpeChecksSchema>
export type CpeStatus = Static<typeof CpeStatusSchema>
