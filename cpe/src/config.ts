/**
 * Configuration schema of the CPE agent (TypeBox). The config helper (shared/src/config) loads it:
 * defaults < YAML file < environment (`HYBRID_CPE_*`) < command line, validated, then deep-frozen.
 * Reference: docs/configuration.md (generated from this schema by scripts/config-reference.ts).
 */
import { Type, type Static } from 'typebox'
import { endpointProperties, LogSchema, managementSchema, MptcpSchema } from '../../shared/src/config/common-schema.ts'
import { stringEnum } from '../../shared/src/config/schema-helpers.ts'
import { CpeLimitsSchema } from './config-limits.ts'

export { LogSchema }

export const ENV_PREFIX = 'HYBRID_CPE_'

export const UplinkSchema = Type.Object({
  /** Short label used in logs and metrics (`dsl`, `lte0`). Required. */
  name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,15}$', description: 'label in logs and metric labels (lower case, at most 16 characters)' }),
  /** Linux network interface of this access (`eth1`, `wwan0`). Required. */
  interface: Type.String({ pattern: '^[^/\\s:]{1,15}$', description: 'Linux network interface name' }),
  /** Access type: `dsl` (fixed, preferred) or `lte` (cellular). Required. */
  role: stringEnum(['dsl', 'lte'], 'access type: dsl (fixed, preferred) or lte (cellular)')
}, { additionalProperties: false })

export const ConfigSchema = Type.Object({
  /** Logging. */
  log: LogSchema,
  /** Management API; default 127.0.0.1:9091, no token. */
  management: managementSchema(9091),
  /** Behaviour without kernel MPTCP; default `fail`. */
  mptcp: MptcpSchema,
  /** WAN accesses bonded with MPTCP (one MPTCP endpoint each). Required, 1–8 entries. */
  uplinks: Type.Array(UplinkSchema, { minItems: 1, maxItems: 8, description: 'WAN accesses bonded with MPTCP (one endpoint each)' }),
  /** Concentrator address (IP literal) and port of its listener for `mode`. Required. */
  concentrator: Type.Object(endpointProperties('concentrator'), { additionalProperties: false, description: 'the concentrator listener matching mode' }),
  /** Signalling to the concentrator: `socks5`, `convert` (RFC 8803) or `transparent`. Default `socks5`. */
  mode: stringEnum(['socks5', 'convert', 'transparent'], 'signalling towards the concentrator: socks5, convert (RFC 8803) or transparent', 'socks5'),
  /** Limits and timeouts. */
  limits: CpeLimitsSchema
}, { additionalProperties: false })

export type Config = Static<typeof ConfigSchema>
