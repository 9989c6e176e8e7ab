/**
 * Connect errors, normalised in one place for both daemons: `errnoOf()` reads the errno name off
 * whatever a failed dial produced, and `upstreamFailureReason()` is the one errno → reason table
 * behind `hybrid_upstream_connect_failures_total{reason}` (docs/metrics.md). Pure.
 */
import type { UpstreamFailureReason } from '../metrics/labels.ts'

/**
 * The errno name of an error (`ECONNREFUSED`, `ETIMEDOUT` …): Node's system errors carry it as
 * `code` (their `errno` is the negative number); older libuv paths put the name in `errno`. A
 * non-errno `code` (a `HYBRID_ERR_*` from `dial`) is returned as it is, so logs keep it and the
 * tables below treat it as "other". Undefined when the value carries no code at all.
 */
export function errnoOf (err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const { code, errno } = err as { code?: unknown, errno?: unknown }
  if (typeof code === 'string' && code.startsWith('E')) return code
  if (typeof errno === 'string') return errno
  return typeof code === 'string' ? code : undefined
}

/** Errno names by the reason they are counted under; anything else is 'other'. */
const REASONS: ReadonlyMap<string, UpstreamFailureReason> = new Map([
  ['ECONNREFUSED', 'refused'],
  ['ETIMEDOUT', 'timeout'],
  ['EHOSTUNREACH', 'unreachable'],
  ['ENETUNREACH', 'unreachable'],
  ['EHOSTDOWN', 'unreachable'],
  ['ENETDOWN', 'unreachable'],
  ['EADDRNOTAVAIL', 'unreachable'],
  ['ECONNRESET', 'reset'],
  ['EPIPE', 'reset']
])

/** The table as text for docs/metrics.md (generated, so the reference cannot drift from it). */
export function describeUpstreamFailureReasons (): string {
  const byReason = new Map<UpstreamFailureReason, string[]>()
  for (const [errno, reason] of REASONS) byReason.set(reason, [...(byReason.get(reason) ?? []), errno])
  return [...byReason].map(([reason, errnos]) => `${errnos.join(', ')} → \`${reason}\``).join('; ')
}

/** Errno of a failed connect to the next hop (destination or concentrator) → metric reason. */
export function upstreamFailureReason (errno: string | undefined): UpstreamFailureReason {
  return (errno === undefined ? undefined : REASONS.get(errno)) ?? 'other'
}
