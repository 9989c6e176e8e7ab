/**
 * The part of the concentrator that a reload swaps as a whole: limits, destination policy,
 * credentials, trusted prefixes and the back-off table. Connections read the current `Runtime`
 * when they need it (limits at accept, policy at request time), so a reload never touches an
 * established relay.
 */
import type { ConcentratorConfig as Config } from './config/config.ts'
import type { ConcentratorLimits } from './config/limits.ts'
import type { DestinationPolicy } from './policy/destination-policy.ts'
import type { AuthBackoff } from './auth/auth-backoff.ts'
import type { CredentialVerifier } from './auth/credentials.ts'
import type { SourcePrefixes } from './accept/source-address.ts'

export interface Runtime {
  /** Limits with `maxConnections` and `unauthenticatedMaxConnections` already resolved (0 → derived). */
  readonly limits: ConcentratorLimits
  readonly policy: DestinationPolicy
  /** Undefined: RFC 1929 authentication is off (no credentials file). */
  readonly verifier: CredentialVerifier | undefined
  readonly trusted: SourcePrefixes
  readonly backoff: AuthBackoff
  readonly config: Config
}
