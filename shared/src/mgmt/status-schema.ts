/**
 * Response schemas of the parts of `GET /api/v1/status` both daemons share (TypeBox, so the
 * OpenAPI document at /docs describes them and fastify serialises exactly these fields).
 */
import { Type, type Static } from 'typebox'

const Reading = Type.Object({ eventLoopDelayMs: Type.Number(), heapBytes: Type.Number(), openFiles: Type.Number(), bufferedBytes: Type.Number() })

export const OverloadStatusSchema = Type.Object({
  enabled: Type.Boolean(),
  active: Type.Array(Type.Union([Type.Literal('stop_accept_busiest'), Type.Literal('refuse_new'), Type.Literal('shed_idle')]), { description: 'actions in force' }),
  pressure: Type.Object({ event_loop: Type.Number(), heap: Type.Number(), fds: Type.Number(), buffered: Type.Number() }, { description: 'per resource, 1 = its limit' }),
  readings: Reading,
  limits: Reading
}, { description: 'overload manager (docs/overload.md)' })

export const KernelSettingsSchema = Type.Record(Type.String(), Type.Object({ value: Type.String(), before: Type.String() }), {
  description: 'kernel settings this daemon changed and restores at stop (key → value now, value before)'
})

export type OverloadStatusBody = Static<typeof OverloadStatusSchema>
