/**
 * `convert` section of the concentrator config: the RFC 8803 Transport Converter behind listeners
 * with `mode: convert` (docs/convert.md, "Converter"). Source authorisation is `auth.trustedPrefixes`
 * (shared with SOCKS5); the destination policy is `policy`; deadlines and caps are in `limits`.
 */
import { Type, type Static } from 'typebox'
import { integerOption } from '../../../shared/src/config/schema-helpers.ts'
import type { DeepReadonly } from '../../../shared/src/config/freeze.ts'

export const ConvertCookieSchema = Type.Object({
  /** Require the Cookie TLV: a Connect without it gets Error 3 carrying the cookie to echo. Default false. */
  required: Type.Boolean({
    default: false,
    description: 'require the Convert Cookie TLV (anti-spoofing): a Connect without it is answered with Error 3 and the cookie to retry with'
  }),
  /** Cookie key lifetime; cookies of the current and the previous key are accepted. Unit s. Default 3600. */
  keyRotationSeconds: integerOption({
    default: 3600,
    minimum: 10,
    maximum: 604_800,
    unit: 's',
    description: 'cookie key lifetime; cookies made with the current or the previous key are accepted'
  }),
  /** Cookie length (truncated HMAC-SHA-256), a multiple of 4. Unit bytes. Default 8. */
  lengthBytes: Type.Integer({
    default: 8,
    minimum: 4,
    maximum: 32,
    multipleOf: 4,
    unit: 'bytes',
    description: 'cookie length (truncated HMAC-SHA-256 over the client address); multiple of 4'
  })
}, { additionalProperties: false, default: {}, description: 'Convert Cookie TLV (RFC 8803)' })

export const ConvertErrorRateSchema = Type.Object({
  /** Error TLVs per second per source; above it the converter closes without an Error. Default 10. */
  perSecond: integerOption({
    default: 10,
    minimum: 1,
    maximum: 100_000,
    unit: 'replies',
    description: 'Error replies per second per source address (token bucket refill); over it: plain close'
  }),
  /** Bucket size (burst). Default 20. */
  burst: integerOption({ default: 20, minimum: 1, maximum: 100_000, unit: 'replies', description: 'Error replies a source may receive in a burst' })
}, { additionalProperties: false, default: {}, description: 'rate limit of Convert Error replies per source' })

export const ConvertSchema = Type.Object({
  cookie: ConvertCookieSchema,
  errorRateLimit: ConvertErrorRateSchema,
  /** Private-use TLV types (192–255) accepted in client messages (ignored); others get Error 2. Default none. */
  privateTypes: Type.Array(Type.Integer({ minimum: 192, maximum: 255 }), {
    default: [],
    maxItems: 64,
    uniqueItems: true,
    description: 'private-use Convert TLV types (192-255) accepted and ignored; any other private type is answered with Error 2'
  }),
  /** Honour the MPTCP option (30) of a Connect by dialling the destination with MPTCP (falls back to TCP). Default false. */
  downstreamMptcp: Type.Boolean({
    default: false,
    description: 'a Connect asking for the MPTCP option (30) is dialled with MPTCP (plain TCP when the server lacks it); false: always plain TCP'
  })
}, { additionalProperties: false, default: {}, description: 'RFC 8803 Transport Converter (listeners with mode convert)' })

export type ConvertConfig = DeepReadonly<Static<typeof ConvertSchema>>
