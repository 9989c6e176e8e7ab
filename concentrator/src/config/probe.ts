/**
 * `probe` section of the concentrator config: the path-health probe responder (UDP echo) the CPEs
 * use to tell, per access, whether packets reach the concentrator (docs/path-health.md).
 */
import { Type, type Static } from 'typebox'
import { endpointProperties } from '../../../shared/src/config/common-schema.ts'
import { integerOption, portOption } from '../../../shared/src/config/schema-helpers.ts'

export const ProbeListenSchema = Type.Object(endpointProperties('probe responder'), { additionalProperties: false })

export const ProbeSchema = Type.Object({
  /** Run the responder. Default false (off unless configured; the CPEs' `health.enabled` needs it). */
  enabled: Type.Boolean({ default: false, description: 'run the UDP path-health probe responder (CPEs with health.enabled need it)' }),
  /** UDP port used with the listener addresses when `listen` is unset. Default 7047. */
  port: portOption('UDP port of the responder on every listener address (when listen is unset)', 7047),
  /** Explicit UDP sockets; unset: every `listeners[].host` (deduplicated) at `port`. */
  listen: Type.Optional(Type.Array(ProbeListenSchema,
    { minItems: 1, maxItems: 16, description: 'UDP addresses of the responder; unset: every listener host at probe.port' })),
  /** Sources answered; unset: `auth.trustedPrefixes`. Everything else is dropped silently. */
  trustedPrefixes: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }),
    { maxItems: 4096, description: 'source prefixes whose probes are answered; unset: auth.trustedPrefixes' })),
  /** Sustained probes answered per source address. Unit probes/s. Default 50 (a CPE probing every 50 ms needs 20). */
  ratePerSecond: integerOption({
    default: 50,
    minimum: 1,
    maximum: 10_000,
    unit: 'probes/s',
    description: 'probes answered per source address and second (token bucket rate)'
  }),
  /** Token bucket depth per source. Unit probes. Default 50. */
  burst: integerOption({ default: 50, minimum: 1, maximum: 10_000, unit: 'probes', description: 'token bucket depth per source address' })
}, { additionalProperties: false, default: {}, description: 'UDP path-health probe responder (docs/path-health.md)' })

export type ProbeConfig = Static<typeof ProbeSchema>
