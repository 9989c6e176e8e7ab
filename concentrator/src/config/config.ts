/**
 * Configuration schema of the concentrator (TypeBox). The config helper (shared/src/config) loads it:
 * defaults < YAML file < environment (`HYBRID_CONC_*`) < command line, validated, then deep-frozen.
 * Reference: docs/configuration.md (generated from this schema by scripts/config-reference.ts).
 */
import { Type, type Static } from 'typebox'
import { endpointProperties, LogSchema, managementSchema, MptcpSchema, stateDirSchema, dataPlaneSchema } from '../../../shared/src/config/common-schema.ts'
import { integerOption, stringEnum } from '../../../shared/src/config/schema-helpers.ts'
import type { DeepReadonly } from '../../../shared/src/config/freeze.ts'
import { ConcentratorLimitsSchema } from './limits.ts'
import { TransparentSchema } from './transparent.ts'
import { JoinSchema } from './join.ts'
import { ConvertSchema } from './convert.ts'
import { ProbeSchema } from './probe.ts'
import { OverloadSchema } from '../../../shared/src/config/overload-schema.ts'
import { KernelSchema } from './kernel.ts'
import { DestinationPolicySchema } from '../policy/destination-policy-schema.ts'
import { WorkersSchema } from './workers.ts'
import { UdpSchema } from './udp.ts'

export { LogSchema }

export const ENV_PREFIX = 'HYBRID_CONC_'

export const ListenerSchema = Type.Object({
  ...endpointProperties('listen'),
  /** Signalling spoken on this listener: `socks5` (RFC 1928) or `convert` (RFC 8803). Required. */
  mode: stringEnum(['socks5', 'convert'], 'signalling on this listener: socks5 (RFC 1928) or convert (RFC 8803)'),
  /** Socket protocol: `mptcp` (production) or `tcp` (plain TCP, e.g. tests without MPTCP). Default `mptcp`. */
  protocol: stringEnum(['mptcp', 'tcp'], 'socket protocol of the listener: mptcp, or tcp (plain TCP; no bonding)', 'mptcp'),
  /** TCP Fast Open queue (pending TFO requests) of the listener; 0 = TFO off. Default 256. */
  fastOpenQueue: integerOption({
    default: 256,
    minimum: 0,
    maximum: 65_535,
    unit: 'connections',
    description: 'TCP Fast Open queue of the listener (server TFO also needs sysctl net.ipv4.tcp_fastopen bit 0x2); 0: off'
  }),
  /**
   * Accept TFO data without a cookie (TCP_FASTOPEN_NO_COOKIE on the listener) from EVERY client of
   * this listener. Only for listeners bound to an access network whose sources are all trusted
   * (BCP 38 filtering upstream). Per source prefix: see docs/concentrator.md (route attribute
   * `fastopen_no_cookie`). Default false.
   */
  fastOpenNoCookie: Type.Boolean({
    default: false,
    description: 'accept TFO SYN data without a cookie from every client of this listener (trusted access networks only; see docs/concentrator.md)'
  }),
  /** IPv6 listeners: IPV6_V6ONLY. Default true (bind v4 and v6 listeners separately). */
  v6Only: Type.Boolean({ default: true, description: 'IPv6 listeners only: accept IPv6 only (IPV6_V6ONLY); false: dual-stack' })
}, { additionalProperties: false })

export const AuthSchema = Type.Object({
  /**
   * Source prefixes allowed to use SOCKS5 without authentication (METHOD 00), e.g. the CPEs'
   * access prefixes. Everyone else must authenticate with username/password. Default: none.
   */
  trustedPrefixes: Type.Array(Type.String({ minLength: 1, maxLength: 64 }),
    { default: [], maxItems: 4096, description: 'source prefixes allowed to use SOCKS5 without authentication (a.b.c.d/n, x::/n or an address)' }),
  /**
   * RFC 1929 credentials: a text file of `username:password` lines (`#` comments). Read at start
   * and on every reload. Unset: username/password authentication is off. Default: unset.
   */
  credentialsFile: Type.Optional(Type.String({
    minLength: 1,
    maxLength: 4096,
    description: 'file of username:password lines for SOCKS5 RFC 1929 authentication (read at start and on reload); unset: off'
  })),
  /** Failed authentications per source within `failureWindowMs` before back-off starts. Default 5. */
  maxFailures: integerOption({
    default: 5,
    minimum: 1,
    maximum: 1000,
    unit: 'attempts',
    description: 'failed authentications per source within failureWindowMs before back-off starts'
  }),
  /** Window counting failures. Unit ms. Default 60000. */
  failureWindowMs: integerOption({
    default: 60_000,
    minimum: 1000,
    maximum: 3_600_000,
    unit: 'ms',
    description: 'window in which failed authentications are counted'
  }),
  /** First back-off; doubles with every further failure. Unit ms. Default 1000. */
  backoffInitialMs: integerOption({
    default: 1000,
    minimum: 10,
    maximum: 3_600_000,
    unit: 'ms',
    description: 'first back-off period (doubles with every further failure)'
  }),
  /** Longest back-off. Unit ms. Default 60000. */
  backoffMaxMs: integerOption({ default: 60_000, minimum: 10, maximum: 3_600_000, unit: 'ms', description: 'longest back-off period' })
}, { additionalProperties: false, default: {}, description: 'SOCKS5 client authorisation' })

export const ConfigSchema = Type.Object({
  /** Logging. */
  log: LogSchema,
  /** Management API; default 127.0.0.1:9090, no token. */
  management: managementSchema(9090),
  /** Crash journal directory; default /run/hybrid-concentrator. */
  stateDir: stateDirSchema('concentrator'),
  /** Relay data plane: splice, stream or auto (docs/data-plane.md). Start only. Default auto. */
  dataPlane: dataPlaneSchema('auto'),
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
  limits: ConcentratorLimitsSchema,
  /** Who may use the proxy: trusted source prefixes, RFC 1929 credentials. */
  auth: AuthSchema,
  /** Destination policy (deny by default); see docs/destination-policy.md. */
  policy: DestinationPolicySchema,
  /** RFC 8803 Transport Converter (listeners with `mode: convert`); see docs/convert.md. */
  convert: ConvertSchema,
  /** Transparent (on-path HAG) mode, read at start only; see docs/transparent.md. */
  transparent: TransparentSchema,
  /** Scale-out: this instance's join endpoints and the C flag for the explicit modes, read at start only; see docs/scale-out.md. */
  join: JoinSchema,
  /** UDP path-health probe responder (off by default); see docs/path-health.md. */
  probe: ProbeSchema,
  /** TCP/MPTCP kernel profile owned while running (unset keys: left alone); see docs/failover.md. */
  kernel: KernelSchema,
  /** Overload manager: resources, thresholds, hysteresis; see docs/overload.md. */
  overload: OverloadSchema,
  /** Worker processes sharing the listeners (SO_REUSEPORT); 1 = one process, 0 = one per CPU; read at start only; see docs/scale-out.md. */
  workers: WorkersSchema,
  /** CONNECT-UDP proxy (RFC 9298 over HTTP/2), off when absent; read at start only; see docs/udp-wire.md. */
  udp: Type.Optional(UdpSchema)
}, { additionalProperties: false })

export type Config = Static<typeof ConfigSchema>
export type ListenerConfig = Static<typeof ListenerSchema>
export type AuthConfig = Static<typeof AuthSchema>
/** The loaded, deep-frozen configuration the daemon runs with. */
export type ConcentratorConfig = DeepReadonly<Config>
