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
import { ConfigError } from '../../../shared/src/errors.ts'
import type { FailoverConfig } from '../config-failover.ts'

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
  return ['ip', r.family === 4 ? '-4' : '-6', 'rule', op, 'lookup', String(r.table), ...(r.suppressDefault ? ['suppress_prefixlength', '0'] : []), 'priority', String(r.priority)]
}

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

export interface SysctlSetting { key: string, value: string }

/** The kernel settings failover owns, in the order they are set (restored in reverse). Throws ConfigError. */
export function kernelSettings (k: FailoverConfig['kernel']): SysctlSetting[] {
  if (k.rtoMaxMs !== undefined && k.rtoMaxMs < 120_000 && k.tcpRetries2 === undefined) {
    // Measured: rto_max 1000 ms with the default tcp_retries2 (15) times a dead subflow out for good.
    throw new ConfigError('HYBRID_ERR_CONFIG_INVALID', 'failover.kernel.tcpRetries2: required with failover.kernel.rtoMaxMs below 120000 (a small RTO cap with 15 retries gives up a dead subflow within seconds)', { detail: { key: 'failover.kernel.tcpRetries2' } })
  }
  const out: SysctlSetting[] = []
  if (k.blackholeTimeout >= 0) out.push({ key: 'net.mptcp.blackhole_timeout', value: String(k.blackholeTimeout) })
  if (k.staleLossCnt !== undefined) out.push({ key: 'net.mptcp.stale_loss_cnt', value: String(k.staleLossCnt) })
  if (k.tcpRetries2 !== undefined) out.push({ key: 'net.ipv4.tcp_retries2', value: String(k.tcpRetries2) })
  if (k.rtoMaxMs !== undefined) out.push({ key: 'net.ipv4.tcp_rto_max_ms', value: String(k.rtoMaxMs) })
  return out
}

/** What to write back at stop: the saved values of the settings that were changed, in reverse order. */
export function restoreList (saved: ReadonlyArray<{ key: string, before: string, after: string }>): SysctlSetting[] {
  return saved.filter((s) => s.before !== s.after).map((s) => ({ key: s.key, value: s.before })).reverse()
}

export const sysctlWriteArgv = (s: SysctlSetting): string[] => ['sysctl', '-qw', `${s.key}=${s.value}`]
export const sysctlReadArgv = (key: string): string[] => ['sysctl', '-n', key]

/** `ip mptcp endpoint delete id 0 <address>`: closes subflows whose local address is `address` where it is the initial one (address id 0). */
export const dropIdZeroArgv = (address: string): string[] => ['ip', 'mptcp', 'endpoint', 'delete', 'id', '0', address]
