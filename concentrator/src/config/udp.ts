/**
 * `udp` section of the concentrator config: the CONNECT-UDP proxy (RFC 9298) over HTTP/2 extended
 * CONNECT (RFC 8441), the fallback path of UDP over the hybrid line (docs/udp-wire.md, "Concentrator
 * CONNECT-UDP proxy"). Absent: off. Authorisation is `auth` (shared with SOCKS5), the destination
 * policy is `policy`. Read at start only.
 */
import { Type, type Static } from 'typebox'
import { MaxUdpPayloadBytes } from '../../../shared/src/codec/capsule.ts'
import { endpointProperties } from '../../../shared/src/config/common-schema.ts'
import { integerOption, msOption, stringEnum } from '../../../shared/src/config/schema-helpers.ts'
import type { DeepReadonly } from '../../../shared/src/config/freeze.ts'

export const UdpListenSchema = Type.Object(endpointProperties('CONNECT-UDP listener'),
  { additionalProperties: false, description: 'where the CONNECT-UDP proxy listens (HTTP/2 without TLS, prior knowledge)' })

export const UdpSchema = Type.Object({
  listen: UdpListenSchema,
  /** Socket protocol of the listener: `mptcp` (production; plain-TCP clients are accepted too) or `tcp`. Default `mptcp`. */
  protocol: stringEnum(['mptcp', 'tcp'], 'socket protocol of the CONNECT-UDP listener: mptcp (also accepts plain-TCP clients), or tcp', 'mptcp'),
  /** A flow with no datagram either way for this long ends. Unit ms. Default 30000 (Linux conntrack's UDP default; docs/udp-wire.md). */
  idleTimeoutMs: msOption(30_000, 'a flow with no datagram either way for this long ends (its socket is closed, the stream ended)', 1000, 3_600_000),
  /**
   * Idle timeout of flows to a port in `quicPorts`. Unit ms. Default 120000: Linux conntrack's
   * default for a two-way UDP stream, and the upper end of common QUIC idle timeouts; a shorter
   * timer would cut quiet HTTP/3 connections a browser keeps for reuse (docs/udp-wire.md).
   */
  quicIdleTimeoutMs: msOption(120_000, 'idle timeout of flows to a port in quicPorts (quiet QUIC connections; Linux conntrack\'s two-way UDP default)', 1000, 3_600_000),
  /** Target ports treated as QUIC for the idle timeout. Default [443]. */
  quicPorts: Type.Array(Type.Integer({ minimum: 1, maximum: 65535 }),
    { default: [443], maxItems: 64, uniqueItems: true, description: 'target ports whose flows get quicIdleTimeoutMs (HTTP/3, QUIC)' }),
  /** Concurrent flows over all clients; beyond, 503 with Proxy-Status connection_limit_reached. Default 4096. */
  maxFlows: integerOption({ default: 4096, minimum: 1, maximum: 1_048_576, unit: 'flows', description: 'concurrent UDP flows in total; beyond, 503 (Proxy-Status connection_limit_reached)' }),
  /** Concurrent flows of one subscriber (user name, or source without one); beyond, 429. Default 256. */
  perSubscriberMaxFlows: integerOption({
    default: 256,
    minimum: 1,
    maximum: 1_048_576,
    unit: 'flows',
    description: 'concurrent UDP flows of one subscriber (its user name, or its source address/prefix when trusted by address); beyond, 429'
  }),
  /** HTTP/2 connections on the listener; beyond, a new connection is closed at accept. Default 1024. */
  maxConnections: integerOption({ default: 1024, minimum: 1, maximum: 1_048_576, unit: 'connections', description: 'concurrent HTTP/2 connections on the CONNECT-UDP listener; beyond, closed at accept' }),
  /** SETTINGS_MAX_CONCURRENT_STREAMS of every connection (flows plus refused requests in flight). Default 256. */
  maxStreamsPerConnection: integerOption({ default: 256, minimum: 1, maximum: 65_535, unit: 'streams', description: 'HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS of each connection' }),
  /** Largest UDP payload relayed either way; larger ones are dropped and counted. Unit bytes. Default 65527 (RFC 9298 maximum). */
  maxDatagramBytes: integerOption({
    default: MaxUdpPayloadBytes,
    minimum: 64,
    maximum: MaxUdpPayloadBytes,
    unit: 'bytes',
    description: 'largest UDP payload relayed either way; larger datagrams are dropped (hybrid_udp_datagrams_dropped_total{reason="oversized"})'
  }),
  /** Target → client: above this many bytes queued on the HTTP/2 stream, datagrams are dropped. Unit bytes. Default 262144. */
  streamBufferMaxBytes: integerOption({
    default: 262_144,
    minimum: 1024,
    maximum: 16_777_216,
    unit: 'bytes',
    description: 'datagrams from the target are dropped (reason backpressure) while the flow\'s HTTP/2 stream holds more than this unsent'
  }),
  /** Client → target: above this many datagrams queued on the flow's UDP socket, datagrams are dropped. Default 64. */
  socketQueueMaxDatagrams: integerOption({
    default: 64,
    minimum: 1,
    maximum: 65_536,
    unit: 'datagrams',
    description: 'datagrams from the client are dropped (reason backpressure) while the flow\'s UDP socket has this many unsent'
  })
}, { additionalProperties: false, description: 'CONNECT-UDP proxy (RFC 9298 over HTTP/2, RFC 8441); absent: off; start only (docs/udp-wire.md)' })

export type UdpConfig = DeepReadonly<Static<typeof UdpSchema>>
