/**
 * Pure part of steering (no I/O; docs/steering.md): the decisions of the steering modes and the
 * MPTCP backup flag every non-primary uplink should carry, given the mode, path health and a
 * failback pulse; and the routing rules of destination classes pinned to one access.
 *
 * One owner of the flags: the steering controller applies `desiredBackup()`; failover does not set
 * flags itself, it asks for a pulse (LTE backup for failover.failbackBackupMs after DSL returns, so
 * long-lived flows move back to DSL: kernel MPTCP issue #581). Precedence, highest first:
 *   1. the primary is unhealthy            → no backup flag (nothing may keep traffic off LTE);
 *   2. a failback pulse is running         → backup;
 *   3. the steering mode's decision        → active-standby: backup; load-balancing: none;
 *      priority-based: backup unless DSL is loaded (hysteresis); smallest-delay: backup unless
 *      this uplink has the lower probe RTT (hysteresis);
 *   4. no mode configured                  → undefined: leave the flag as it was before the agent
 *      touched it (multipath.mode decides, as without steering).
 */
import net from 'node:net'
import { ConfigError } from '../../../shared/src/errors.ts'
import { unmapV4 } from '../../../shared/src/net/endpoint.ts'
import type { SteeringClass, SteeringConfig, SteeringMode } from '../config/steering.ts'

// --- priority-based: DSL load with hysteresis --------------------------------------------------

export interface CounterSample { atMs: number, rxBytes: number, txBytes: number }

export interface PriorityState {
  /** LTE added (backup flag cleared) because DSL is loaded. */
  lteActive: boolean
  /** Since when the load has been past the threshold that would flip `lteActive`. */
  pendingSince: number | undefined
  last: CounterSample | undefined
  /** Highest rates seen (bytes/s), the capacity when none is configured. */
  peakDownBps: number
  peakUpBps: number
  /** Smoothed load (EWMA over the samples, α LOAD_ALPHA), for the decision, the API and hybrid_steering_dsl_load_ratio. */
  load: number
  /** Intervals measured so far (the first one sets the average). */
  samples: number
}

/** Weight of the newest interval in the smoothed load: one 250 ms sample cannot flip or reset a decision alone. */
export const LOAD_ALPHA = 0.5

export const initialPriorityState = (): PriorityState => ({
  lteActive: false,
  pendingSince: undefined,
  last: undefined,
  peakDownBps: 0,
  peakUpBps: 0,
  load: 0,
  samples: 0
})

/** A learned capacity below this (1 Mbit/s) is not trusted: an idle line would look loaded. */
export const MIN_LEARNED_BPS = 125_000

/** DSL load of one interval: the higher of receive rate / down capacity and send rate / up capacity. */
export function dslLoad (downBps: number, upBps: number, capDownBps: number, capUpBps: number): number {
  return Math.max(downBps / Math.max(capDownBps, 1), upBps / Math.max(capUpBps, 1))
}

/** Next state after one counter sample. A counter going backwards (interface re-created) restarts the measurement. */
export function priorityStep (s: PriorityState, sample: CounterSample, cfg: SteeringConfig['priority']): PriorityState {
  const last = s.last
  if (last === undefined || sample.atMs <= last.atMs || sample.rxBytes < last.rxBytes || sample.txBytes < last.txBytes) return { ...s, last: sample }
  const seconds = (sample.atMs - last.atMs) / 1000
  const downBps = (sample.rxBytes - last.rxBytes) / seconds
  const upBps = (sample.txBytes - last.txBytes) / seconds
  const peakDownBps = Math.max(s.peakDownBps, downBps)
  const peakUpBps = Math.max(s.peakUpBps, upBps)
  const capDown = cfg.dslDownKbps !== undefined ? cfg.dslDownKbps * 125 : Math.max(peakDownBps, MIN_LEARNED_BPS)
  const capUp = cfg.dslUpKbps !== undefined ? cfg.dslUpKbps * 125 : Math.max(peakUpBps, MIN_LEARNED_BPS)
  const instant = dslLoad(downBps, upBps, capDown, capUp)
  const load = s.samples === 0 ? instant : LOAD_ALPHA * instant + (1 - LOAD_ALPHA) * s.load
  const next = { ...s, last: sample, peakDownBps, peakUpBps, load, samples: s.samples + 1 }
  const crossing = s.lteActive ? load * 100 <= cfg.lowPercent : load * 100 >= cfg.highPercent
  if (!crossing) return { ...next, pendingSince: undefined }
  const since = s.pendingSince ?? last.atMs
  const hold = s.lteActive ? cfg.holdDownMs : cfg.holdUpMs
  if (sample.atMs - since < hold) return { ...next, pendingSince: since }
  return { ...next, lteActive: !s.lteActive, pendingSince: undefined }
}

// --- smallest-delay: probe RTT with hysteresis -------------------------------------------------

export interface DelayState { preferred: string, pendingSince: number | undefined }

/**
 * Next preference: `rtts` are the probe RTTs (ms) of healthy uplinks (undefined: no answer yet).
 * The preference moves to another uplink only when it is faster by `marginMs` for `holdMs`.
 */
export function delayStep (s: DelayState, rtts: ReadonlyMap<string, number | undefined>, cfg: SteeringConfig['smallestDelay'],
  now: number): DelayState {
  const current = rtts.get(s.preferred)
  let best: string | undefined
  let bestRtt = Infinity
  for (const [name, rtt] of rtts) if (rtt !== undefined && rtt < bestRtt) { best = name; bestRtt = rtt }
  if (best === undefined || best === s.preferred) return { ...s, pendingSince: undefined }
  if (current !== undefined && current - bestRtt < cfg.marginMs) return { ...s, pendingSince: undefined }
  const since = s.pendingSince ?? now
  if (current !== undefined && now - since < cfg.holdMs) return { ...s, pendingSince: since }
  return { preferred: best, pendingSince: undefined }
}

// --- the backup flag each non-primary uplink should carry --------------------------------------

export type FlagReason = 'steering' | 'failover' | 'failback'

export interface FlagInputs {
  mode: SteeringMode | undefined
  primaryHealthy: boolean
  /** A failback pulse runs until this time (ms, same clock as `now`). */
  pulseUntil: number | undefined
  now: number
  /** priority-based: DSL loaded. */
  lteActive: boolean
  /** smallest-delay: the preferred uplink. */
  preferred: string | undefined
}

/** The backup flag of a non-primary uplink and why; `backup: undefined` leaves it as it was before the agent. */
export function desiredBackup (name: string, i: FlagInputs): { backup: boolean | undefined, reason: FlagReason } {
  if (!i.primaryHealthy) return { backup: false, reason: 'failover' }
  if (i.pulseUntil !== undefined && i.now < i.pulseUntil) return { backup: true, reason: 'failback' }
  return { backup: modeBackup(name, i), reason: 'steering' }
}

function modeBackup (name: string, i: FlagInputs): boolean | undefined {
  switch (i.mode) {
    case undefined: return undefined
    case 'active-standby': return true
    case 'load-balancing': return false
    case 'priority-based': return !i.lteActive
    case 'smallest-delay': return i.preferred !== undefined && i.preferred !== name
  }
}

// --- destination classes pinned to one access ---------------------------------------------------

export interface ClassRule { family: 4 | 6, priority: number, to: string, port: number | undefined, table: number, klass: string }

/** One rule per class destination, priorities counting up from `base`. Throws ConfigError for an unknown access. */
export function classRules (classes: readonly SteeringClass[], tables: ReadonlyMap<string, number>, base: number): ClassRule[] {
  const out: ClassRule[] = []
  for (const c of classes) {
    const table = tables.get(c.access)
    if (table === undefined) {
      throw new ConfigError('HYBRID_ERR_CONFIG_INVALID', `steering.classes[${c.name}].access: no uplink named ${c.access}`,
        { detail: { key: 'steering.classes' } })
    }
    for (const to of c.destinations) {
      out.push({
        family: to.includes(':') ? 6 : 4,
        priority: base + out.length,
        to,
        port: c.port,
        table,
        klass: c.name
      })
    }
  }
  return out
}

/** The class rules wanted now: those of classes whose access is healthy (otherwise failover's steering decides). */
export function activeClassRules (rules: readonly ClassRule[], classes: readonly SteeringClass[], healthy: (name: string) => boolean): ClassRule[] {
  const pinned = new Map(classes.map((c) => [c.name, c.access]))
  return rules.filter((r) => healthy(pinned.get(r.klass) ?? ''))
}

/**
 * The class of a destination (first class in configuration order whose prefixes contain the
 * address and whose port, if set, matches), for the proxied modes: their upstream goes to the
 * concentrator, so a routing rule on the destination cannot see the class (steering-controller.ts
 * binds the upstream's source address instead). IPv4-mapped IPv6 addresses match IPv4 prefixes.
 */
export function classMatcher (classes: readonly SteeringClass[]): (address: string, port: number) => SteeringClass | undefined {
  const lists = classes.map((c) => {
    const list = new net.BlockList()
    for (const d of c.destinations) {
      const [addr = '', len] = d.split('/')
      const type = addr.includes(':') ? 'ipv6' : 'ipv4'
      if (len === undefined) list.addAddress(addr, type)
      else list.addSubnet(addr, Number(len), type)
    }
    return { c, list }
  })
  return (address, port) => {
    const a = unmapV4(address)
    const type = net.isIPv4(a) ? 'ipv4' : net.isIPv6(a) ? 'ipv6' : undefined
    if (type === undefined) return undefined
    return lists.find(({ c, list }) => (c.port === undefined || c.port === port) && list.check(a, type))?.c
  }
}

/** The address of `family` an uplink's upstream binds to: the first one, never an IPv6 link-local. */
export function sourceAddressOf (addresses: readonly string[], family: 4 | 6): string | undefined {
  return addresses.find((a) => family === 4 ? net.isIPv4(a) : net.isIPv6(a) && !/^fe[89ab]/i.test(a))
}

export const classRuleKey = (r: ClassRule): string => `${r.family}|${r.priority}|${r.to}|${r.port ?? ''}|${r.table}`

export function classRuleArgv (op: 'add' | 'del', r: ClassRule): string[] {
  return ['ip', r.family === 4 ? '-4' : '-6', 'rule', op, 'to', r.to, ...(r.port === undefined ? [] : ['ipproto', 'tcp', 'dport', String(r.port)]),
    'lookup', String(r.table), 'priority', String(r.priority)]
}

// --- what a mode needs ---------------------------------------------------------------------------

export interface SteeringCapabilities { healthEnabled: boolean, primaryIsDsl: boolean, others: number }

/** Why `mode` cannot run here (undefined: it can). */
export function unsupportedReason (mode: SteeringMode, c: SteeringCapabilities): string | undefined {
  if (c.others === 0) return `steering mode ${mode} needs a second uplink whose endpoint can be flagged backup`
  if (mode === 'smallest-delay' && !c.healthEnabled) return 'steering mode smallest-delay needs health.enabled (it compares the probe RTTs)'
  if (mode === 'priority-based' && !c.primaryIsDsl) return 'steering mode priority-based needs a dsl uplink (its interface counters measure the load)'
  return undefined
}
