/**
 * Overload manager (Envoy's model, docs/overload.md), one per daemon. Every `intervalMs` it reads
 * four resources — event-loop delay, V8 heap in use, open fds, bytes queued in user space for slow
 * legs — and turns each into a pressure (value ÷ the resource's limit). The highest pressure drives
 * three actions in steps:
 *
 *   stop_accept_busiest  new connections from the busiest sources are refused
 *   refuse_new           every new connection is refused (the mode gives its wire answer)
 *   shed_idle            relayed connections idle for shedIdleAfterMs are closed (reason overload)
 *
 * The event loop is the one spiky input (a GC pause, the host scheduling other processes): its
 * pressure is the lowest of the last EVENT_LOOP_SUSTAIN_TICKS readings, so only a delay that lasts
 * counts. Heap, fds and buffered bytes are levels and count at once.
 *
 * An action starts the tick its threshold is reached and is released only after the pressure has
 * stayed under `threshold − hysteresis` for `releaseAfterMs`, so it does not flap at the edge.
 * The decision is pure (`OverloadActions.update`); the manager adds the clock, the resource
 * monitors (injectable, see ./resource-monitors.ts), the metrics and the log.
 *
 * The busiest sources: sorted by connections held, the fewest sources that together hold at least
 * half of all connections; a new connection is refused when its source already holds as many as
 * the least busy of those (recomputed every tick, checked against the live count at accept).
 */
import type { OverloadConfig } from '../config/overload-schema.ts'
import type { Logger } from '../log.ts'
import { OverloadAction } from '../metrics/labels.ts'
import type { OverloadResource, Side } from '../metrics/labels.ts'
import type { RelayEndReason } from '../net/relay.ts'
import { createResourceMonitors } from './resource-monitors.ts'
import type { ResourceMonitors, ResourceReading } from './resource-monitors.ts'

/** Pressure per resource: value ÷ limit (1 = the limit; may exceed 1). */
export type Pressures = Record<OverloadResource, number>

export interface ActionThresholds {
  /** Pressures (0.8 = 80 %) at which each action starts. */
  start: Record<OverloadAction, number>
  /** Pressures under which an active action may be released (after releaseAfterMs). */
  release: Record<OverloadAction, number>
  releaseAfterMs: number
}

export function thresholdsOf (c: OverloadConfig): ActionThresholds {
  const percent: Record<OverloadAction, number> = {
    stop_accept_busiest: c.thresholds.stopAcceptBusiest,
    refuse_new: c.thresholds.refuseNew,
    shed_idle: c.thresholds.shedIdle
  }
  const of = (f: (p: number) => number): Record<OverloadAction, number> =>
    Object.fromEntries(OverloadAction.map((a) => [a, f(percent[a])])) as Record<OverloadAction, number>
  return {
    start: of((p) => p / 100),
    release: of((p) => Math.max(0, p - c.hysteresisPercent) / 100),
    releaseAfterMs: c.releaseAfterMs
  }
}

export interface ActionChange { action: OverloadAction, active: boolean }

/** The hysteresis state machine: pressure and time in, the actions that started or ended out. Pure. */
export class OverloadActions {
  #t: ActionThresholds
  readonly #active = new Set<OverloadAction>()
  /** Since when each active action has been under its release point (absent: not under it). */
  readonly #calmSince = new Map<OverloadAction, number>()

  constructor (t: ActionThresholds) { this.#t = t }

  setThresholds (t: ActionThresholds): void { this.#t = t }

  get active (): ReadonlySet<OverloadAction> { return this.#active }

  update (pressure: number, now: number): ActionChange[] {
    const changes: ActionChange[] = []
    for (const action of OverloadAction) {
      const start = this.#t.start[action]
      if (!this.#active.has(action)) {
        if (pressure >= start) {
          this.#active.add(action)
          this.#calmSince.delete(action)
          changes.push({ action, active: true })
        }
        continue
      }
      if (pressure >= this.#t.release[action]) { this.#calmSince.delete(action); continue }
      const since = this.#calmSince.get(action) ?? now
      this.#calmSince.set(action, since)
      if (now - since >= this.#t.releaseAfterMs) {
        this.#active.delete(action)
        this.#calmSince.delete(action)
        changes.push({ action, active: false })
      }
    }
    return changes
  }

  /** Drop every action at once (protection switched off by a reload); the ended ones are returned. */
  clear (): ActionChange[] {
    const ended = [...this.#active].map((action) => ({ action, active: false }))
    this.#active.clear()
    this.#calmSince.clear()
    return ended
  }
}

/**
 * Connections held per source → the count from which a source is one of the busiest: the fewest
 * sources that together hold at least half of all connections, and the smallest count among them.
 * Infinity when nobody holds anything. Pure.
 */
export function busyThreshold (counts: Iterable<number>): number {
  const sorted = [...counts].filter((n) => n > 0).sort((a, b) => b - a)
  const total = sorted.reduce((s, n) => s + n, 0)
  if (total === 0) return Infinity
  let held = 0
  for (const n of sorted) {
    held += n
    if (held * 2 >= total) return n
  }
  return sorted[sorted.length - 1] as number
}

/** A relayed connection as the manager sees it (the daemons' session tables list them). */
export interface OverloadRelay {
  readonly id: number
  progress: () => { up: number, down: number }
  buffered: () => Record<Side, number>
  abort: (reason: RelayEndReason) => void
}

export interface OverloadMetrics {
  overloadActive: { set: (labels: { action: OverloadAction }, v: number) => void }
  overloadActivations: { inc: (labels: { action: OverloadAction }) => void }
  overloadPressure: { set: (labels: { resource: OverloadResource }, v: number) => void }
  bufferedBytes: { set: (labels: { side: Side }, v: number) => void }
}

export interface OverloadDeps {
  log: Logger
  metrics: OverloadMetrics
  /** The relayed connections now (buffered bytes, idle shedding). */
  relays: () => Iterable<OverloadRelay>
  /** Connections held per source now (the caps' view). */
  sourceCounts: () => Iterable<number>
  /** Idle relays were closed by shed_idle: how many. */
  onShed?: (n: number) => void
  monitors?: ResourceMonitors
  now?: () => number
}

export interface OverloadStatus {
  enabled: boolean
  active: OverloadAction[]
  pressure: Pressures
  readings: ResourceReading
  limits: ResourceReading
}

interface Activity { total: number, since: number }

/**
 * Event-loop readings the delay must hold for to count (the lowest of them is the pressure). Set
 * after a 1-hour soak on a starved 2-core host read 490–740 ms in single ticks and, with the first
 * design (one tick, 500 ms = 100 %), refused every new connection now and then.
 */
export const EVENT_LOOP_SUSTAIN_TICKS = 3

export class OverloadManager {
  #config: OverloadConfig
  readonly #deps: OverloadDeps
  readonly #now: () => number
  readonly #monitors: ResourceMonitors
  readonly #actions: OverloadActions
  readonly #activity = new Map<number, Activity>()
  /** The last EVENT_LOOP_SUSTAIN_TICKS event-loop readings (ms), newest last. */
  readonly #loopDelays: number[] = []
  #timer: NodeJS.Timeout | undefined
  #busy = Infinity
  #pressure: Pressures = { event_loop: 0, heap: 0, fds: 0, buffered: 0 }
  #readings: ResourceReading = { eventLoopDelayMs: 0, heapBytes: 0, openFiles: 0, bufferedBytes: 0 }

  constructor (config: OverloadConfig, deps: OverloadDeps) {
    this.#config = config
    this.#deps = deps
    this.#now = deps.now ?? Date.now
    this.#monitors = deps.monitors ?? createResourceMonitors()
    this.#actions = new OverloadActions(thresholdsOf(config))
    for (const action of OverloadAction) deps.metrics.overloadActive.set({ action }, 0)
  }

  start (): void {
    if (this.#timer !== undefined) return
    this.#monitors.start(this.#config.intervalMs)
    this.#timer = setInterval(() => { this.tick() }, this.#config.intervalMs)
    this.#timer.unref()
    // A first reading of heap and open files now (no action changes): until the first interval the
    // status said 0 open files, which a client (or a test taking its baseline) takes for the truth.
    const r = this.#monitors.read()
    this.#readings = { ...this.#readings, heapBytes: r.heapBytes, openFiles: r.openFiles }
    this.#pressure = pressuresOf(this.#readings, 0, this.#limits())
  }

  stop (): void {
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#monitors.stop()
  }

  /** A reload: new limits, thresholds and interval from the next tick. */
  update (config: OverloadConfig): void {
    const restart = this.#timer !== undefined && config.intervalMs !== this.#config.intervalMs
    this.#config = config
    if (restart) { this.stop(); this.start() }
    this.#actions.setThresholds(thresholdsOf(config))
    if (!config.enabled) this.#apply(this.#actions.clear())
  }

  /** Whether a new connection from a source that holds `held` connections may go ahead. */
  admit (held: number): boolean {
    const active = this.#actions.active
    if (active.has('refuse_new')) return false
    return !(active.has('stop_accept_busiest') && held >= this.#busy)
  }

  get active (): ReadonlySet<OverloadAction> { return this.#actions.active }

  status (): OverloadStatus {
    return {
      enabled: this.#config.enabled,
      active: [...this.#actions.active],
      pressure: { ...this.#pressure },
      readings: { ...this.#readings },
      limits: this.#limits()
    }
  }

  /** One sampling round (the timer's; public for tests). */
  tick (): void {
    const now = this.#now()
    const relays = [...this.#deps.relays()]
    const buffered = this.#measureRelays(relays, now)
    const limits = this.#limits()
    const r = this.#monitors.read()
    this.#readings = {
      eventLoopDelayMs: r.eventLoopDelayMs,
      heapBytes: r.heapBytes,
      openFiles: r.openFiles,
      bufferedBytes: buffered.client + buffered.server
    }
    this.#loopDelays.push(r.eventLoopDelayMs)
    if (this.#loopDelays.length > EVENT_LOOP_SUSTAIN_TICKS) this.#loopDelays.shift()
    this.#pressure = pressuresOf(this.#readings, Math.min(...this.#loopDelays), limits)
    const m = this.#deps.metrics
    for (const [resource, p] of Object.entries(this.#pressure) as Array<[OverloadResource, number]>) m.overloadPressure.set({ resource }, round(p))
    m.bufferedBytes.set({ side: 'client' }, buffered.client)
    m.bufferedBytes.set({ side: 'server' }, buffered.server)
    if (!this.#config.enabled) return
    this.#apply(this.#actions.update(Math.max(...Object.values(this.#pressure)), now))
    const active = this.#actions.active
    this.#busy = active.has('stop_accept_busiest') ? busyThreshold(this.#deps.sourceCounts()) : Infinity
    if (active.has('shed_idle')) this.#shed(relays, now)
  }

  #limits (): ResourceReading {
    const r = this.#config.resources
    return {
      eventLoopDelayMs: r.eventLoopDelayMs,
      heapBytes: r.heapBytes > 0 ? r.heapBytes : this.#monitors.heapLimit(),
      openFiles: r.openFiles > 0 ? r.openFiles : this.#monitors.openFilesLimit(),
      bufferedBytes: r.bufferedBytes
    }
  }

  /** Buffered bytes by side, and when each relay last moved a byte (forgotten once it is gone). */
  #measureRelays (relays: OverloadRelay[], now: number): Record<Side, number> {
    const sum = { client: 0, server: 0 }
    const seen = new Set<number>()
    for (const relay of relays) {
      seen.add(relay.id)
      const b = relay.buffered()
      sum.client += b.client
      sum.server += b.server
      const { up, down } = relay.progress()
      const total = up + down
      const a = this.#activity.get(relay.id)
      if (a === undefined || a.total !== total) this.#activity.set(relay.id, { total, since: now })
    }
    for (const id of this.#activity.keys()) if (!seen.has(id)) this.#activity.delete(id)
    return sum
  }

  #shed (relays: OverloadRelay[], now: number): void {
    const after = this.#config.shedIdleAfterMs
    let n = 0
    for (const relay of relays) {
      const a = this.#activity.get(relay.id)
      if (a === undefined || now - a.since < after) continue
      relay.abort('overload')
      this.#activity.delete(relay.id)
      n++
    }
    if (n === 0) return
    this.#deps.onShed?.(n)
    this.#deps.log.warn({ shed: n, idleMs: after }, 'overload: closed idle connections')
  }

  #apply (changes: ActionChange[]): void {
    const m = this.#deps.metrics
    for (const { action, active } of changes) {
      m.overloadActive.set({ action }, active ? 1 : 0)
      if (active) m.overloadActivations.inc({ action })
      const fields = { action, pressure: mapValues(this.#pressure, round), readings: this.#readings }
      if (active) this.#deps.log.warn(fields, `overload: ${action} started`)
      else this.#deps.log.info(fields, `overload: ${action} released`)
    }
  }
}

function round (v: number): number { return Math.round(v * 1000) / 1000 }

function mapValues<K extends string> (o: Record<K, number>, f: (v: number) => number): Record<K, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v as number)])) as Record<K, number>
}

/** Pressure per resource: reading ÷ limit (the event loop's: the sustained delay ÷ its limit). */
function pressuresOf (r: ResourceReading, eventLoopDelayMs: number, limits: ResourceReading): Pressures {
  return {
    event_loop: eventLoopDelayMs / limits.eventLoopDelayMs,
    heap: r.heapBytes / limits.heapBytes,
    fds: r.openFiles / limits.openFiles,
    buffered: r.bufferedBytes / limits.bufferedBytes
  }
}
