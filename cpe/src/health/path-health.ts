/**
 * Per-access path health (docs/path-health.md): one ProbeSocket per uplink, one timer for all,
 * one HealthState per uplink fed with probe outcomes and the carrier. The carrier is the interface's
 * operstate read from sysfs on every tick (so a carrier change is seen within one interval, not one
 * multipath.pollIntervalMs), with an address from the uplink source; the source's link flags where
 * sysfs cannot tell.
 *
 * Owns `hybrid_path_up` while enabled: carrier AND probe health. Emits `change(path, state, transition)` on
 * every transition (failover work subscribes
 * here) and logs it at info: `path dsl down: 3 probes lost`.
 * Detection only: it changes no route, endpoint or flag.
 */
import { EventEmitter } from 'node:events'
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import type { Logger } from '../../../shared/src/log.ts'
import type { HealthConfig } from '../config/health.ts'
import type { CpeMetrics } from '../metrics.ts'
import type { UplinkState } from '../uplink/uplink-manager.ts'
import { HealthState, type HealthStateName, type Transition } from './health-state.ts'
import { ProbeSocket, probeSource, type ProbeTarget } from './probe-socket.ts'

export interface PathHealthView {
  state: HealthStateName
  lossRatio: number
  /** Probe RTT (EWMA), null before the first answer. */
  rttMs: number | null
  /** Timeout of the next probe (ms): fixed `timeoutMs`, or adaptive with `minTimeoutMs`. */
  timeoutMs: number
  /** ISO time of the last transition (or of the start). */
  since: string
}

export interface PathHealthOptions {
  config: HealthConfig
  target: ProbeTarget
  metrics: CpeMetrics
  log: Logger
  /** Monotonic ms; default performance.now. */
  now?: () => number
  wallNow?: () => number
  /** Interface operstate; default /sys/class/net/<if>/operstate (undefined: unreadable). */
  operstate?: (iface: string) => string | undefined
}

interface PathEntry {
  state: HealthState
  sinceWall: number
  uplink: UplinkState | undefined
  socket: ProbeSocket | undefined
}

const sysfsOperstate = (iface: string): string | undefined => {
  try { return readFileSync(`/sys/class/net/${iface}/operstate`, 'utf8').trim() } catch { return undefined }
}

/**
 * Carrier of an uplink: an address, and operstate `up` (RFC 2863: UP and LOWER_UP) read now; where
 * sysfs has no answer or says `unknown` (drivers without operstate: tun), the uplink source's flags.
 */
function carrierOf (u: UplinkState | undefined, operstate: (iface: string) => string | undefined): boolean {
  if (u === undefined || u.addresses.length === 0) return false
  const oper = operstate(u.interface)
  return oper === undefined || oper === 'unknown' ? u.up : oper === 'up'
}

export class PathHealth extends EventEmitter<{ change: [path: string, state: HealthStateName, transition: Transition] }> {
  readonly #o: PathHealthOptions
  readonly #now: () => number
  readonly #wallNow: () => number
  readonly #operstate: (iface: string) => string | undefined
  readonly #paths = new Map<string, PathEntry>()
  #timer: NodeJS.Timeout | undefined

  constructor (paths: readonly string[], opts: PathHealthOptions) {
    super()
    this.#o = opts
    this.#now = opts.now ?? (() => performance.now())
    this.#wallNow = opts.wallNow ?? Date.now
    this.#operstate = opts.operstate ?? sysfsOperstate
    const c = opts.config
    for (const p of paths) {
      this.#paths.set(p, {
        state: new HealthState({ downAfter: c.downAfter, upAfter: c.upAfter, holdDownMs: c.holdDownMs, window: c.window }, this.#now(), true),
        sinceWall: this.#wallNow(),
        uplink: undefined,
        socket: undefined
      })
    }
  }

  start (): void {
    this.#timer ??= setInterval(() => { this.tick() }, this.#o.config.intervalMs).unref()
  }

  stop (): void {
    clearInterval(this.#timer)
    this.#timer = undefined
    for (const e of this.#paths.values()) { e.socket?.close(); e.socket = undefined }
  }

  /** New uplink states: (re)bind probe sockets to the current addresses, publish hybrid_path_up. */
  updateUplinks (states: readonly UplinkState[]): void {
    for (const s of states) {
      const e = this.#paths.get(s.name)
      if (e === undefined) continue
      e.uplink = s
      const source = probeSource(s.addresses, this.#o.target.host)
      if (e.socket?.source !== source) {
        e.socket?.close()
        e.socket = source === undefined ? undefined : this.#socket(s.name, source)
      }
      this.#carrier(s.name, e)
      this.#publish(s.name, e)
    }
  }

  /** One probe round (the timer calls it every intervalMs). */
  tick (): void {
    for (const [name, e] of this.#paths) {
      this.#carrier(name, e)
      if (e.state.snapshot().carrier) e.socket?.tick()
      this.#publish(name, e)
    }
  }

  /** Whether the path is usable: carrier and probes (what hybrid_path_up says). */
  isUp (path: string): boolean {
    const s = this.#paths.get(path)?.state.snapshot()
    return s !== undefined && s.carrier && s.state === 'up'
  }

  view (path: string): PathHealthView | undefined {
    const e = this.#paths.get(path)
    if (e === undefined) return undefined
    const s = e.state.snapshot()
    return {
      state: s.state,
      lossRatio: round(s.lossRatio, 3),
      rttMs: s.rttMs === undefined ? null : round(s.rttMs, 2),
      timeoutMs: this.#timeoutFor(path),
      since: new Date(e.sinceWall).toISOString()
    }
  }

  #socket (name: string, source: string): ProbeSocket {
    return new ProbeSocket({
      source,
      target: this.#o.target,
      timeoutMs: () => this.#timeoutFor(name),
      now: this.#now,
      onOutcome: (rtt) => { this.#outcome(name, rtt) },
      onLateReply: (rtt) => { this.#paths.get(name)?.state.rttSample(rtt) }
    })
  }

  /**
   * The next probe's timeout: adaptive (minTimeoutMs set) while another path is up; the fixed
   * `timeoutMs` for the last path standing. Taking the last live path down gains nothing (there
   * is nowhere to steer to) and right after a failover its queue fills with the whole load, which
   * a short timeout would read as a second outage (measured: LTE reported down 35 ms after a DSL
   * carrier loss, new connections then had no route).
   */
  #timeoutFor (name: string): number {
    const c = this.#o.config
    const e = this.#paths.get(name)
    if (e === undefined || c.minTimeoutMs === undefined) return c.timeoutMs
    const otherUp = [...this.#paths.keys()].some((n) => n !== name && this.isUp(n))
    return otherUp ? e.state.probeTimeoutMs(c.minTimeoutMs, c.timeoutMs) : c.timeoutMs
  }

  #outcome (name: string, rttMs: number | undefined): void {
    const e = this.#paths.get(name)
    if (e === undefined) return
    this.#apply(name, e, e.state.probe(rttMs, this.#now()))
  }

  #carrier (name: string, e: PathEntry): void {
    this.#apply(name, e, e.state.carrier(carrierOf(e.uplink, this.#operstate), this.#now()))
  }

  #apply (name: string, e: PathEntry, t: Transition | undefined): void {
    if (t === undefined) return
    e.sinceWall = this.#wallNow()
    const m = this.#o.metrics
    m.pathStateChanges.inc({ path: name, to: t.to })
    this.#publish(name, e)
    this.#o.log.info({ path: name, from: t.from, to: t.to, reason: t.reason, lossRatio: round(e.state.snapshot().lossRatio, 3) },
      `path ${name} ${t.to}: ${t.detail}`)
    this.emit('change', name, t.to, t)
  }

  #publish (name: string, e: PathEntry): void {
    const s = e.state.snapshot()
    const m = this.#o.metrics
    m.pathUp.set({ path: name }, s.carrier && s.state === 'up' ? 1 : 0)
    m.pathLossRatio.set({ path: name }, s.lossRatio)
    m.pathProbeRtt.set({ path: name }, s.rttMs === undefined ? 0 : s.rttMs / 1000)
  }
}

const round = (v: number, digits: number): number => Math.round(v * 10 ** digits) / 10 ** digits

/** The component for a config, or undefined when `health.enabled` is off. Target: health.host ?? concentrator.host. */
export function createPathHealth (config: { health: HealthConfig, concentrator: { host: string }, uplinks: ReadonlyArray<{ name: string }> },
  metrics: CpeMetrics, log: Logger): PathHealth | undefined {
  if (!config.health.enabled) return undefined
  const target = { host: config.health.host ?? config.concentrator.host, port: config.health.port }
  return new PathHealth(config.uplinks.map((u) => u.name), { config: config.health, target, metrics, log })
}

/** Fields merged into an uplink of GET /api/v1/uplinks: `up` becomes link AND health, plus `health`. */
export function healthFields (health: PathHealth | undefined, name: string, linkUp: boolean): { up: boolean, health?: PathHealthView } {
  const view = health?.view(name)
  return health === undefined || view === undefined ? { up: linkUp } : { up: health.isUp(name), health: view }
}
