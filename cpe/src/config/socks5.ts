/**
 * `socks5` and `concentrator` sections of the CPE config: how the agent reaches the concentrator in
 * mode `socks5` (docs/cpe.md). The handshake is pipelined into the TFO SYN when the concentrator
 * accepts it (`pipelining`), with the LAN client's first bytes coalesced for `coalesceMs`.
 */
import { Type, type Static } from 'typebox'
import { endpointProperties } from '../../../shared/src/config/common-schema.ts'
import { integerOption, msOption, stringEnum } from '../../../shared/src/config/schema-helpers.ts'

export const ConcentratorSchema = Type.Object({
  ...endpointProperties('concentrator'),
  /**
   * TCP Fast Open towards the concentrator (TCP_FASTOPEN_CONNECT; needs sysctl net.ipv4.tcp_fastopen
   * bit 0x1). Default false: on Linux 6.18 bulk transfers on MPTCP connections opened with SYN data
   * can stall mid-stream (docs/mptcp-socket-layer.md, "Kernel issues"), and because an MPTCP server
   * cannot answer before the third ACK there, TFO saves no round trip over the pipelined handshake.
   */
  fastOpen: Type.Boolean({
    default: false,
    description: 'TCP Fast Open towards the concentrator: the handshake and first bytes travel in the SYN (sysctl net.ipv4.tcp_fastopen bit 0x1); off by default, see docs/mptcp-socket-layer.md "Kernel issues"'
  }),
  /**
   * TCP_FASTOPEN_NO_COOKIE: SYN data without a cookie (the concentrator must accept it: tcp_fastopen 0x200 or
   * its listener's fastOpenNoCookie). Default false.
   */
  fastOpenNoCookie: Type.Boolean({
    default: false,
    description: 'send SYN data without a TFO cookie (only when the concentrator accepts cookie-less TFO; otherwise the connection silently falls back to plain TCP)'
  })
}, { additionalProperties: false, description: 'the concentrator listener matching mode' })

export const Socks5Schema = Type.Object({
  /** RFC 1929 user name; unset: no authentication (the concentrator trusts the CPE's prefix). */
  username: Type.Optional(Type.String({
    minLength: 1,
    maxLength: 255,
    description: 'RFC 1929 user name towards the concentrator; unset: method 00 (no authentication)'
  })),
  /** RFC 1929 password. Secret. */
  password: Type.Optional(Type.String({ minLength: 1, maxLength: 255, secret: true, description: 'RFC 1929 password (required with username)' })),
  /**
   * `auto`: pipeline greeting + auth + CONNECT + first bytes in one write (the TFO SYN) and fall back to
   * the stepwise handshake for a concentrator seen not to accept it; `always`; `never`. Default `auto`.
   */
  pipelining: stringEnum(['auto', 'always', 'never'],
    'auto: pipeline the handshake into the first write, go stepwise for a concentrator seen not to accept it; always; never', 'auto'),
  /** How long to wait for the LAN client's first bytes before sending the handshake. Unit ms. Default 2. */
  coalesceMs: integerOption({
    default: 2,
    minimum: 0,
    maximum: 200,
    unit: 'ms',
    description: 'wait this long for the LAN client\'s first bytes so they travel with the handshake (0: do not wait)'
  }),
  /** With credentials: a concentrator that answered only the greeting after this long did not read ahead. Unit ms. Default 1000. */
  probeMs: msOption(1_000,
    'pipelining probe: a concentrator that has answered only the greeting after this long (with credentials) did not read ahead', 10, 60_000),
  /** How long a concentrator found not to accept pipelining is handled stepwise. Unit ms. Default 600000 (10 min). */
  stepwiseMemoryMs: msOption(600_000, 'how long a concentrator found not to accept pipelining is handled stepwise before pipelining is tried again',
    1_000),
  /** Deadline from the first write to the concentrator's CONNECT reply. Unit ms. Default 6000. */
  replyTimeoutMs: msOption(6_000, 'deadline from the first write to the concentrator\'s CONNECT reply; then the LAN connection is reset', 100,
    600_000)
}, { additionalProperties: false, default: {}, description: 'SOCKS5 towards the concentrator (mode socks5)' })

export type ConcentratorEndpointConfig = Static<typeof ConcentratorSchema>
export type Socks5Config = Static<typeof Socks5Schema>
