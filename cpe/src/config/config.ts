/**
 * Configuration schema of the CPE agent (TypeBox). The config helper (shared/src/config) loads it:
 * defaults < YAML file < environment (`HYBRID_CPE_*`) < command line, validated, then deep-frozen.
 * Reference: docs/configuration.md (generated from this schema by scripts/config-reference.ts).
 */
import { Type, type Static } from 'typebox'
import { LogSchema, managementSchema, MptcpSchema, stateDirSchema, dataPlaneSchema } from '../../../shared/src/config/common-schema.ts'
import { stringEnum } from '../../../shared/src/config/schema-helpers.ts'
import type { DeepReadonly } from '../../../shared/src/config/freeze.ts'
import { CpeLimitsSchema } from './limits.ts'
import { InterceptSchema } from './intercept.ts'
import { MultipathSchema, UplinkSchema } from './uplinks.ts'
import { ConcentratorSchema, Socks5Schema } from './socks5.ts'
import { ConvertClientSchema } from './convert.ts'
import { HealthSchema } from './health.ts'
import { FailoverSchema } from './failover.ts'
import { SteeringSchema } from './steering.ts'
import { UdpSchema } from './udp.ts'
import { OverloadSchema } from '../../../shared/src/config/overload-schema.ts'

export { LogSchema, UplinkSchema }

export const ENV_PREFIX = 'HYBRID_CPE_'

export const ConfigSchema = Type.Object({
  /** Logging. */
  log: LogSchema,
  /** Management API; default 127.0.0.1:9091, no token. */
  management: managementSchema(9091),
  /** Behaviour without kernel MPTCP; default `fail`. */
  mptcp: MptcpSchema,
  /** Crash journal directory; default /run/hybrid-cpe. */
  stateDir: stateDirSchema('cpe'),
  /**
   * Relay data plane: splice, stream or auto (docs/data-plane.md). Start only. Default auto (splice
   * when the probe passes), as in the concentrator.
   */
  dataPlane: dataPlaneSchema('auto'),
  /** WAN accesses bonded with MPTCP (one MPTCP endpoint each). Required, 1–8 entries. */
  uplinks: Type.Array(UplinkSchema, { minItems: 1, maxItems: 8, description: 'WAN accesses bonded with MPTCP (one endpoint each)' }),
  /** Concentrator address (IP literal) and port of its listener for `mode`. Required. */
  concentrator: ConcentratorSchema,
  /** SOCKS5 towards the concentrator (mode `socks5`): credentials, pipelining, coalescing. */
  socks5: Socks5Schema,
  /** RFC 8803 Convert towards the Transport Converter (mode `convert`): port, fallback, deadlines. */
  convert: ConvertClientSchema,
  /** Signalling to the concentrator: `socks5`, `convert` (RFC 8803) or `transparent`. Default `socks5`. */
  mode: stringEnum(['socks5', 'convert', 'transparent'], 'signalling towards the concentrator: socks5, convert (RFC 8803) or transparent', 'socks5'),
  /** Limits and timeouts. */
  limits: CpeLimitsSchema,
  /** LAN interception (nftables TPROXY); docs/cpe-control-plane.md. */
  intercept: InterceptSchema,
  /** Source routing, MPTCP endpoints and limits of the uplinks; docs/cpe-control-plane.md. */
  multipath: MultipathSchema,
  /** Per-access path-health probing (off by default); docs/path-health.md. */
  health: HealthSchema,
  /** Failover and failback actions on path-health transitions (off by default); docs/failover.md. */
  failover: FailoverSchema,
  /** Steering modes (3GPP ATSSS names) and destination classes; docs/steering.md. */
  steering: SteeringSchema,
  /** Overload manager: resources, thresholds, hysteresis; see docs/overload.md. */
  overload: OverloadSchema,
  /** LAN UDP over the hybrid line (CONNECT-UDP to the concentrator); off by default; docs/udp.md. */
  udp: UdpSchema
}, { additionalProperties: false })

export type Config = Static<typeof ConfigSchema>
/** The loaded (deep-frozen) configuration as runDaemonCli hands it over. */
export type CpeConfig = DeepReadonly<Config>
