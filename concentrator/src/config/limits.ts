/**
 * Concentrator limits and timeouts (defaults and why: docs/design/limits.md).
 */
import { Type, type Static } from 'typebox'
import { Limits } from '../../../shared/src/codec/limits.ts'
import { integerOption, msOption } from '../../../shared/src/config/schema-helpers.ts'
import { keepaliveLimitProperties, relayLimitProperties } from '../../../shared/src/config/common-schema.ts'
import { DEFAULT_SOURCE_IPV6_PREFIX_LENGTH } from '../../../shared/src/net/source-prefix.ts'

export const ConcentratorLimitsSchema = Type.Object({
  /** SOCKS5 greeting → request deadline, then the socket is destroyed. Unit ms. Default 10000. */
  handshakeTimeoutMs: msOption(10_000, 'SOCKS5 handshake deadline (greeting to request), then destroy', 100, 600_000),
  /** Convert (RFC 8803) message deadline counted from accept. Unit ms. Default 2000. */
  convertTimeoutMs: msOption(2_000, 'deadline for the complete Convert message, counted from accept', 100, 600_000),
  /** Deadline for the upstream (Internet-side) TCP connect. Unit ms. Default 10000. */
  connectTimeoutMs: msOption(10_000, 'deadline for the upstream TCP connect', 100, 600_000),
  ...relayLimitProperties,
  /** Concurrent connections from one source (an IPv4 address, or an IPv6 prefix of perSourceIpv6PrefixLength). Default 1024. */
  perSourceMaxConnections: integerOption({
    default: 1024,
    minimum: 1,
    maximum: 1_048_576,
    unit: 'connections',
    description: 'concurrent connections from one source: an IPv4 address (IPv4-mapped IPv6 counts as IPv4), or an IPv6 prefix of perSourceIpv6PrefixLength'
  }),
  /** IPv6 sources are aggregated by this prefix length for perSourceMaxConnections (one host usually holds a whole /64). Default 64. */
  perSourceIpv6PrefixLength: integerOption({
    default: DEFAULT_SOURCE_IPV6_PREFIX_LENGTH,
    minimum: 1,
    maximum: 128,
    unit: 'bits',
    description: 'IPv6 prefix length that makes one source for perSourceMaxConnections (IPv4 is always /32)'
  }),
  /** Of maxConnections, slots that connections not yet authenticated may hold together; 0 = a quarter of maxConnections (at least 1). Default 0. */
  unauthenticatedMaxConnections: integerOption({
    default: 0,
    minimum: 0,
    maximum: 1_048_576,
    unit: 'connections',
    description: 'concurrent connections not yet authenticated (SOCKS5 before its request is accepted, Convert before its TLVs are accepted); 0: a quarter of maxConnections, at least 1'
  }),
  /** Client bytes buffered before the upstream connects (SOCKS pipelining, TFO payload). Unit bytes. Default 16384 (hard cap). */
  earlyDataMaxBytes: integerOption({
    default: Limits.earlyDataMaxBytes,
    minimum: 0,
    maximum: Limits.earlyDataMaxBytes,
    unit: 'bytes',
    description: 'client bytes held before the upstream connects (pipelining, TFO data)'
  }),
  /** Stream buffer high-water mark per socket. Unit bytes. Default 32768. */
  highWaterMark: integerOption({
    default: 32_768,
    minimum: 1024,
    maximum: 1_048_576,
    unit: 'bytes',
    description: 'socket stream high-water mark (backpressure threshold)'
  }),
  /** Drain deadline on SIGTERM before remaining connections are destroyed. Unit ms. Default 25000. */
  drainTimeoutMs: msOption(25_000, 'on SIGTERM: drain deadline before the remaining connections are destroyed', 0, 300_000),
  ...keepaliveLimitProperties
}, { additionalProperties: false, default: {}, description: 'limits and timeouts' })

export type ConcentratorLimits = Static<typeof ConcentratorLimitsSchema>
