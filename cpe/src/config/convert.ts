/**
 * `convert` section of the CPE config: RFC 8803 Convert towards the concentrator's Transport
 * Converter (mode `convert`, docs/convert.md "CPE Convert mode"). In this mode `concentrator` stays
 * the SOCKS5 listener (used by `fallback: socks5`); the converter is `convert.host` (default
 * `concentrator.host`) and `convert.port` (required in mode convert: RFC 8803 assigns no port).
 */
import { Type, type Static } from 'typebox'
import { integerOption, msOption, portOption, stringEnum } from '../../../shared/src/config/schema-helpers.ts'
import type { DeepReadonly } from '../../../shared/src/config/freeze.ts'

export const ConvertClientSchema = Type.Object({
  /** Converter address (IP literal); default `concentrator.host`. */
  host: Type.Optional(Type.String({ format: 'ip', description: 'Transport Converter address (IP literal); default concentrator.host' })),
  /** Converter port; required in mode convert. */
  port: Type.Optional(portOption('Transport Converter port (the concentrator listener with mode convert); required in mode convert')),
  /**
   * What to do while the converter is unreachable or backed off: `socks5` (the concentrator's SOCKS5
   * listener), `direct` (dial the destination without MPTCP), `none` (reset the LAN client). Default
   * `socks5`.
   */
  fallback: stringEnum(['socks5', 'direct', 'none'],
    'while the converter is unreachable or backed off: socks5 (concentrator SOCKS5 listener), direct (dial the destination directly, no bonding), none (reset the LAN client)', 'socks5'),
  /** Wait this long for the LAN client's first bytes so they travel in the SYN with the Convert message. Unit ms. Default 2. */
  coalesceMs: integerOption({
    default: 2,
    minimum: 0,
    maximum: 200,
    unit: 'ms',
    description: 'wait this long for the LAN client\'s first bytes so they travel in the SYN with the Convert message (0: do not wait)'
  }),
  /** Deadline from the first write to the converter's reply header. Unit ms. Default 6000. */
  replyTimeoutMs: msOption(6_000,
    'deadline from the first write to the converter\'s reply; without any reply byte the converter counts as unreachable', 100, 600_000),
  /** After Error 64/65, the converter is not used for this long (RFC 8803: ≥ 30 s). Unit ms. Default 30000. */
  backoffMs: msOption(30_000,
    'after Error 64 (Resource Exceeded) or 65 (Network Failure) the converter is not used for this long (fallback meanwhile)', 30_000, 3_600_000)
}, { additionalProperties: false, default: {}, description: 'RFC 8803 Convert towards the Transport Converter (mode convert)' })

export type ConvertClientConfig = DeepReadonly<Static<typeof ConvertClientSchema>>
