/**
 * Builds a `Runtime` from a validated configuration: resolved limits, destination policy (with a
 * resolver that feeds `hybrid_dns_lookup_duration_seconds`), credentials, trusted prefixes and the
 * back-off table (kept across reloads unless its settings changed). Throws ConfigError on a bad
 * prefix or an unreadable/invalid credentials file, so a reload can keep the old runtime.
 */
import { isIP } from 'node:net'
import type { ConcentratorConfig as Config } from './config/config.ts'
import type { ConcentratorMetrics, DnsResultLabel } from './metrics.ts'
import { effectiveMaxConnections } from '../../shared/src/net/connection-caps.ts'
import { SourcePrefixes } from './accept/source-address.ts'
import { createDestinationPolicy } from './policy/destination-policy.ts'
import type { DestinationPolicyInput } from './policy/destination-policy.ts'
import { createCaresBackend, createHostResolver } from './policy/resolver.ts'
import type { HostResolver, ResolveResult } from './policy/resolver.ts'
import { AuthBackoff } from './auth/auth-backoff.ts'
import { CredentialVerifier, loadCredentialsFile } from './auth/credentials.ts'
import type { Runtime } from './runtime.ts'
import { ConfigError } from '../../shared/src/errors.ts'
import type { AddressMembership } from '../../shared/src/net/host-addresses.ts'

export interface BuildRuntimeDeps {
  metrics: ConcentratorMetrics
  /** Injected resolver (tests); default c-ares with `policy.dns`. */
  resolver?: HostResolver
  /** The open-file limit (tests); default /proc/self/limits. */
  openFilesLimit?: () => number
  /** fds the data plane budgets apart from the sockets (its splice pipes): they come off the derived cap. */
  reservedFds?: () => number
  now?: () => number
  /** The host's addresses, kept current by the daemon (refused unless `policy.hostAddresses.refuse: false`). */
  hostAddresses?: AddressMembership
}

function dnsLabel (r: ResolveResult): DnsResultLabel {
  if (r.ok) return 'ok'
  if (r.reason === 'dns_timeout') return 'timeout'
  return /ENOTFOUND|ENODATA/.test(r.detail) ? 'nxdomain' : 'error'
}

/** Times the lookups that reached DNS (not cache hits, not "no slot"). */
export function timedResolver (inner: HostResolver, metrics: ConcentratorMetrics): HostResolver {
  return {
    resolve: async (name, source) => {
      const started = performance.now()
      const r = await inner.resolve(name, source)
      if (!r.cached && (r.ok || r.reason !== 'dns_busy')) {
        metrics.dnsLookupDuration.observe({ result: dnsLabel(r) }, (performance.now() - started) / 1000)
      }
      return r
    },
    close: () => { inner.close?.() }
  }
}

function defaultResolver (config: Config): HostResolver {
  const dns = config.policy.dns
  try {
    const backend = createCaresBackend({ servers: dns.servers, timeoutMs: dns.timeoutMs, tries: dns.tries })
    return createHostResolver({ backend, limits: dns })
  } catch (cause) {
    throw new ConfigError('HYBRID_ERR_CONFIG_INVALID', 'policy.dns.servers: invalid server', { cause })
  }
}

function sameBackoff (a: Config['auth'], b: Config['auth']): boolean {
  return a.maxFailures === b.maxFailures && a.failureWindowMs === b.failureWindowMs &&
    a.backoffInitialMs === b.backoffInitialMs && a.backoffMaxMs === b.backoffMaxMs
}

export async function buildRuntime (config: Config, deps: BuildRuntimeDeps, previous?: Runtime): Promise<Runtime> {
  const trusted = new SourcePrefixes('auth.trustedPrefixes', config.auth.trustedPrefixes)
  const file = config.auth.credentialsFile
  const verifier = file === undefined ? undefined : new CredentialVerifier(await loadCredentialsFile(file))
  // Explicit listen addresses are always refused; a wildcard's real addresses come from hostAddresses.
  const hosts = [...config.listeners.map((l) => l.host), config.management.listen.host, ...(config.udp === undefined ? [] : [config.udp.listen.host])]
  const listenAddresses = hosts.filter((h) => isIP(h) !== 0 && h !== '0.0.0.0' && h !== '::')
  const resolver = timedResolver(deps.resolver ?? defaultResolver(config), deps.metrics)
  const policy = createDestinationPolicy({
    config: config.policy as DestinationPolicyInput,
    ownAddresses: listenAddresses,
    resolver,
    ...(deps.hostAddresses === undefined ? {} : { hostAddresses: deps.hostAddresses })
  })
  const a = config.auth
  const backoff = previous !== undefined && sameBackoff(previous.config.auth, a)
    ? previous.backoff
    : new AuthBackoff({
      maxFailures: a.maxFailures,
      windowMs: a.failureWindowMs,
      initialMs: a.backoffInitialMs,
      maxMs: a.backoffMaxMs,
      ...(deps.now === undefined ? {} : { now: deps.now })
    })
  const maxConnections = effectiveMaxConnections(config.limits.maxConnections, deps.openFilesLimit, deps.reservedFds?.() ?? 0)
  const unauthenticatedMaxConnections = config.limits.unauthenticatedMaxConnections > 0
    ? Math.min(config.limits.unauthenticatedMaxConnections, maxConnections)
    : Math.max(1, Math.floor(maxConnections / 4))
  return { limits: { ...config.limits, maxConnections, unauthenticatedMaxConnections }, policy, verifier, trusted, backoff, config }
}
