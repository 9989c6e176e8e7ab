/**
 * CPE limits and timeouts (defaults and why: docs/design/limits.md; the CPE uses
 * 16 KiB buffers, half the concentrator's, as it runs on small routers).
 */
import { Type, type Static } from 'typebox'
import { Limits } from '../../../shared/src/codec/limits.ts'
import { integerOption, msOption } from '../../../shared/src/config/schema-helpers.ts'
import { keepaliveLimitProperties, relayLimitProperties } from '../../../shared/src/config/common-schema.ts'

export const CpeLimitsSchema = Type.Object({
  // No handshakeTimeoutMs / convertTimeoutMs: LAN clients are intercepted (no SOCKS5 handshake on the
  // LAN side), and the upstream reply deadlines are socks5.replyTimeoutMs and convert.replyTimeoutMs.
  /** Deadline for the MPTCP connect to the concentrator. Unit ms. Default 10000. */
  connectTimeoutMs: msOption(10_000, 'deadline for the MPTCP connect to the concentrator', 100, 600_000),
  ...relayLimitProperties,
  /** Concurrent connections from one LAN source address. Default 1024. */
  perSourceMaxConnections: integerOption({
    default: 1024,
    minimum: 1,
    maximum: 1_048_576,
    unit: 'connections',
    description: 'concurrent connections from one LAN source address'
  }),
  /** LAN bytes buffered before the concentrator leg is up. Unit bytes. Default 16384 (hard cap). */
  earlyDataMaxBytes: integerOption({
    default: Limits.earlyDataMaxBytes,
    minimum: 0,
    maximum: Limits.earlyDataMaxBytes,
    unit: 'bytes',
    description: 'LAN bytes held before the concentrator leg is up (pipelining, TFO data)'
  }),
  /** Stream buffer high-water mark per socket. Unit bytes. Default 16384. */
  highWaterMark: integerOption({
    default: 16_384,
    minimum: 1024,
    maximum: 1_048_576,
    unit: 'bytes',
    description: 'socket stream high-water mark (backpressure threshold)'
  }),
  /** Drain deadline on SIGTERM before remaining connections are destroyed. Unit ms. Default 25000. */
  drainTimeoutMs: msOption(25_000, 'on SIGTERM: drain deadline before the remaining connections are destroyed', 0, 300_000),
  ...keepaliveLimitProperties
}, { additionalProperties: false, default: {}, description: 'limits and timeouts' })

export type CpeLimits = Static<typeof CpeLimitsSchema>
