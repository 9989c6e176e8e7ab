/**
 * Configuration schema of the concentrator (TypeBox). The config helper (shared/src/config) loads it:
 * defaults < YAML file < environment (`HYBRID_CONC_*`) < command line, validated, then deep-frozen.
 * Reference: docs/configuration.md (generated from this schema by scripts/config-reference.ts).
 */
import { Type, type Static } from 'typebox'
import { endpointProperties, LogSchema, managementSchema, MptcpSchema } from '../../shared/src/config/common-schema.ts'
import { stringEnum } from '../../shared/src/config/schema-helpers.ts'
import { ConcentratorLimitsSchema } from './config-limits.ts'

export { LogSchema }

export const ENV_PREFIX = 'HYBRID_CONC_'

export const ListenerSchema = Type.Object({
  ...endpointProperties('listen'),
  /** Signalling spoken on this listener: `socks5` (RFC 1928) or `convert` (RFC 8803). Required. */
  mode: stringEnum(['socks5', 'convert'], 'signalling on this listener: socks5 (RFC 1928) or convert (RFC 8803)')
}, { additionalProperties: false })

export const ConfigSchema = Type.Object({
  /** Logging. */
  log: LogSchema,
  /** Management API; default 127.0.0.1:9090, no token. */
  management: managementSchema(9090),
  /** Behaviour without kernel MPTCP; default `fail`. */
  mptcp: MptcpSchema,
  /**
   * MPTCP listeners facing the CPEs. Default: one SOCKS5 listener on 127.0.0.1:1080, deliberately
   * loopback-only, so nothing is exposed until the operator names the access-facing address.
   * RFC 8803 assigns no Convert port; choose one (peers use 1234 or 5124).
   */
  listeners: Type.Array(ListenerSchema, {
    minItems: 1,
    maxItems: 16,
    default: [{ host: '127.0.0.1', port: 1080, mode: 'socks5' }],
    description: 'MPTCP listeners facing the CPEs (default loopback only: set the access-facing address)'
  }),
  /** Limits and timeouts. */
  limits: ConcentratorLimitsSchema
}, { additionalProperties: false })

export type Config = Static<typeof ConfigSchema>
