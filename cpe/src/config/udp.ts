/**
 * `udp` section of the CPE config: LAN UDP carried to the concentrator's CONNECT-UDP proxy
 * (RFC 9298) over the bonded MPTCP connection (docs/udp.md). Off by default.
 */
import { Type, type Static } from 'typebox'
import { integerOption, msOption, portOption } from '../../../shared/src/config/schema-helpers.ts'
import { INTERFACE_NAME_PATTERN } from './intercept.ts'

export const UdpSchema = Type.Object({
  /** Intercept LAN UDP (IPv4, and IPv6 with intercept.ipv6) and carry it over the hybrid line. Default false. */
  enabled: Type.Boolean({ default: false, description: 'intercept LAN UDP and carry it to the concentrator\'s CONNECT-UDP proxy over MPTCP' }),
  /** Port of the concentrator's CONNECT-UDP listener (its `udp.listen.port`) on `concentrator.host`. Required with enabled. */
  port: Type.Optional(portOption('port of the concentrator\'s CONNECT-UDP (RFC 9298) listener on concentrator.host; required with enabled')),
  /** TUN device LAN UDP is routed into (created by the agent, gone with it: fail-open). Default hyb-udp0. */
  device: Type.String({ pattern: INTERFACE_NAME_PATTERN, default: 'hyb-udp0', description: 'TUN device the marked LAN UDP is routed into (exists only while the agent runs)' }),
  /** fwmark of intercepted LAN UDP; `ip rule fwmark <mark> lookup <routeTable>` routes it into the device. Default 3. */
  mark: integerOption({ default: 3, minimum: 1, maximum: 0x7fffffff, description: 'fwmark of intercepted LAN UDP (routed into the TUN device)' }),
  /** Routing table holding `default dev <device>` (v4 and v6). Default 301. */
  routeTable: integerOption({ default: 301, minimum: 1, maximum: 0x7ffffffe, description: 'routing table id of the route into the TUN device (v4 and v6)' }),
  /** Priority of the `ip rule fwmark … lookup <routeTable>` rule. Default 51. */
  rulePriority: integerOption({ default: 51, minimum: 1, maximum: 32765, description: 'priority of the UDP fwmark ip rule (v4 and v6)' }),
  /** Destination UDP ports never intercepted (besides DHCP and traffic to the CPE itself). Default []. */
  bypassPorts: Type.Array(portOption('destination UDP port'), { maxItems: 1024, default: [], description: 'destination UDP ports never intercepted' }),
  /** A flow ends after this long without a datagram either way. Default 30000. */
  idleTimeoutMs: msOption(30_000, 'idle timeout of a UDP flow', 1000, 3_600_000),
  /** Idle timeout of flows to port 443 (QUIC). Default 120000. */
  quicIdleTimeoutMs: msOption(120_000, 'idle timeout of a UDP flow to port 443 (QUIC)', 1000, 3_600_000),
  /** UDP flows at once. Default 4096. */
  maxFlows: integerOption({ default: 4096, minimum: 1, maximum: 1_000_000, unit: 'flows', description: 'UDP flows at once' }),
  /** UDP flows at once per LAN host. Default 512. */
  maxFlowsPerHost: integerOption({ default: 512, minimum: 1, maximum: 1_000_000, unit: 'flows', description: 'UDP flows at once per LAN source address' }),
  /** Datagrams held per flow until its CONNECT-UDP stream exists (the session being set up); more are dropped and counted. Default 32. */
  openQueue: integerOption({ default: 32, minimum: 0, maximum: 4096, unit: 'datagrams', description: 'datagrams held per flow until its stream exists (session set-up)' }),
  /** Bytes a flow's stream may hold unsent before datagrams are dropped (UDP semantics, no unbounded buffering). Default 262144. */
  maxBufferedBytes: integerOption({
    default: 262_144, minimum: 1500, maximum: 67_108_864, unit: 'bytes', description: 'bytes a flow may hold unsent towards the concentrator before datagrams are dropped'
  })
}, { additionalProperties: false, default: {}, description: 'LAN UDP over the hybrid line (CONNECT-UDP, RFC 9298); off by default' })

export type UdpConfig = Static<typeof UdpSchema>
