/**
 * Pure part of failover (no I/O; docs/failover.md): which uplink new connections should use, the
 * steering rules that send them there, the actions a path-health transition calls for, and the
 * kernel settings owned while the agent runs (with what to restore at stop).
 *
 * Steering: two rules per family, after the source rules and before main (32766):
 *   P    lookup main suppress_prefixlength 0   (main's specific routes: LAN, access subnets)
 *   P+1  lookup <table of the preferred uplink> (its default route: the access new connections use)
 * A socket without a bound source (upstream to the concentrator, transparent's SYN to the
 * destination, forwarded LAN traffic) finds its default route in the preferred uplink's table; a
 * socket bound to an uplink's address still matches that uplink's source rule first.
 */
import { tcpProfileSettings, type SysctlRequest } from '../../../shared/src/sys/sysctl-profile.ts'
import type { FailoverConfig } from '../config/failover.ts'

export type Family = 4 | 6

export interface FailoverUplink {
  name: string
  table: number
  /** The uplink carrying the initial subflow (first dsl, else first). */
  primary: boolean
  /** Path health says up (carrier AND probes). */
  healthy: boolean
}

/** The primary while healthy, else the first healthy uplink in configuration order; undefined when none is. */
export function preferredUplink (uplinks: readonly FailoverUplink[]): FailoverUplink | undefined {
  return uplinks.find((u) => u.primary && u.healthy) ?? uplinks.find((u) => u.healthy)
}

export interface SteeringRule { family: Family, priority: number, table: number | 'main', suppressDefault: boolean }

/** The rules that steer unbound traffic to `table` (both families). */
export function steeringRules (table: number, priority: number): SteeringRule[] {
  return ([4, 6] as const).flatMap((family): SteeringRule[] => [
    { family, priority, table: 'main', suppressDefault: true },
    { family, priority: priority + 1, table, suppressDefault: false }
  ])
}

export const steeringKey = (r: SteeringRule): string => `${r.family}|${r.priority}|${r.table}|${r.suppressDefault ? 's' : ''}`

export function steeringRuleArgv (op: 'add' | 'del', r: SteeringRule): string[] {
  return ['ip', r.family === 4 ? '-4' : '-6', 'rule', op, 'lookup', String(r.table), ...(r.suppressDefault ? ['suppress_prefixlength', '0'] : []),
    'priority', String(r.priority)]
}

/**
 * `ip -batch` lines for one family's part of a steering change: the new rules first, then the old
 * ones deleted, P+1 before P, so unbound traffic never sees P+1 alone (with P gone and P+1 still
 * pointing at the other access, the kernel's IPv6 gateway check of a route added meanwhile fails
 * with "No route to host": seen in the lab). One `ip` process per family instead of one per rule:
 * a steering change took 100–300 ms on a loaded 2-core CPE with 8 processes.
 */
export function steeringBatch (family: Family, add: readonly SteeringRule[], del: readonly SteeringRule[]): string[] {
  const line = (op: 'add' | 'del', r: SteeringRule): string => steeringRuleArgv(op, r).slice(2).join(' ')
  const mine = (r: SteeringRule): boolean => r.family === family
  return [
    ...add.filter(mine).map((r) => line('add', r)),
    ...del.filter(mine).sort((a, b) => b.priority - a.priority).map((r) => line('del', r))
  ]
}

/** `ip -batch` lines that delete whatever sits at the steering priorities (left by a killed agent), up to `max` rules each. */
export function staleSteeringBatch (priority: number, max = 4): string[] {
  return [priority + 1, priority].flatMap((p) => Array.from({ length: max }, () => `rule del priority ${p}`))
}

export const ipBatchArgv = (family: Family,
  force: boolean): string[] => ['ip', family === 4 ? '-4' : '-6', ...(force ? ['-force'] : []), '-batch', '-']

/** The rule changes that move steering from `from` rules to `to` rules (add the new before deleting the old). */
export function steeringDiff (from: readonly SteeringRule[], to: readonly SteeringRule[]): { add: SteeringRule[], del: SteeringRule[] } {
  const fromKeys = new Set(from.map(steeringKey))
  const toKeys = new Set(to.map(steeringKey))
  return { add: to.filter((r) => !fromKeys.has(steeringKey(r))), del: from.filter((r) => !toKeys.has(steeringKey(r))) }
}

export type FailoverAction =
  /** Point the steering rules at this uplink's table (undefined: remove them, main decides). */
  | { kind: 'steer', to: string | undefined, table: number | undefined }
  /** Close the subflows from the path's addresses on running connections (REMOVE_ADDR over the live subflow). */
  | { kind: 'withdraw', path: string }
  /** Re-create the path's subflows on running connections (endpoint re-added). */
  | { kind: 'restore', path: string }
  /** After a restore of the primary: the other uplinks briefly backup (failback pulse, done by the steering controller). */
  | { kind: 'pulse', path: string }

export interface TransitionInput { path: string, to: 'up' | 'down' }

/**
 * Actions for one transition, given the uplinks' health before and after it and the uplink the
 * steering rules currently point at. New connections first (steer), then running ones.
 * Idempotent: a transition that changes nothing (a path already in that state, steering already
 * right) yields no action.
 */
export function actionsFor (t: TransitionInput, after: readonly FailoverUplink[], steeredTo: string | undefined): FailoverAction[] {
  const out: FailoverAction[] = []
  const preferred = preferredUplink(after)
  if (preferred?.name !== steeredTo) out.push({ kind: 'steer', to: preferred?.name, table: preferred?.table })
  if (after.find((u) => u.name === t.path) === undefined) return out
  if (t.to === 'down' && after.some((u) => u.healthy && u.name !== t.path)) out.push({ kind: 'withdraw', path: t.path })
  if (t.to === 'up') out.push({ kind: 'restore', path: t.path })
  return out
}

/** The uplink a failover of `path` lands on (first healthy other uplink), for hybrid_path_failovers_total. */
export function failoverTarget (path: string, after: readonly FailoverUplink[]): string | undefined {
  return preferredUplink(after.filter((u) => u.name !== path))?.name
}

/** The kernel settings failover owns, in the order they are set (restored in reverse). Throws ConfigError. */
export function kernelSettings (k: FailoverConfig['kernel']): SysctlRequest[] {
  return [
    ...(k.blackholeTimeout >= 0 ? [{ key: 'net.mptcp.blackhole_timeout', value: String(k.blackholeTimeout) }] : []),
    ...tcpProfileSettings(k, 'failover.kernel')
  ]
}

/** `ip mptcp endpoint delete id 0 <address>`: closes subflows whose local address is `address` where it is the initial one (address id 0). */
export const dropIdZeroArgv = (address: string): string[] => ['ip', 'mptcp', 'endpoint', 'delete', 'id', '0', address]
