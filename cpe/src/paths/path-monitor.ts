/**
 * Path metrics of the CPE: uplink state (up, role, endpoint, failovers) from the uplink manager, and
 * per-path bytes, subflows and RTTs of the relayed connections from MPTCP_FULL_INFO, sampled every
 * `sampleMs` and once more when a connection ends (`untrack`). Fallen-back connections are sampled
 * through TCP_INFO as a single subflow. Sampling errors (a socket closing under us) are ignored.
 */
import type net from 'node:net'
import { MptcpFullInfoReader } from '../../../shared/src/net/mptcp-full-info-reader.ts'
import { socketFd, tcpInfo } from '../../../shared/src/net/sockopt.ts'
import type { CpeMetrics, PathRole } from '../metrics.ts'
import type { UplinkState } from '../uplink/uplink-manager.ts'
import { addressMap, normaliseAddress, PathAccounting } from './path-accounting.ts'
import type { PathTotals, SubflowSample } from './path-accounting.ts'

export interface PathMonitorOptions {
  metrics: CpeMetrics
  /** Uplink names in configuration order. */
  paths: readonly string[]
  /** The uplink carrying the initial subflow (first dsl, else first). */
  primary: string
  sampleMs?: number
  /** Count hybrid_path_failovers_total from link state (default true; false when path health feeds it). */
  countFailovers?: boolean
}

export interface PathView {
  name: string
  up: boolean
  role: PathRole
  admin: 'up' | 'down'
  endpointConfigured: boolean
  subflows: number
  bytesUp: number
  bytesDown: number
}

export class PathMonitor {
  readonly #opts: PathMonitorOptions
  readonly #accounting = new PathAccounting()
  readonly #live = new Map<number, net.Socket>()
  readonly #totals = new Map<string, { up: number, down: number }>()
  #subflows = new Map<string, number>()
  #pathOf = new Map<string, string>()
  #states = new Map<string, UplinkState & { admin?: 'up' | 'down' }>()
  #reader: MptcpFullInfoReader | undefined
  #timer: NodeJS.Timeout | undefined

  constructor (opts: PathMonitorOptions) {
    this.#opts = opts
    for (const p of opts.paths) this.#totals.set(p, { up: 0, down: 0 })
  }

  start (): void {
    this.#reader ??= new MptcpFullInfoReader()
    this.#timer ??= setInterval(() => { this.sampleAll() }, this.#opts.sampleMs ?? 1000).unref()
  }

  stop (): void {
    clearInterval(this.#timer)
    this.#timer = undefined
    for (const id of [...this.#live.keys()]) this.untrack(id)
    this.#reader?.close()
    this.#reader = undefined
  }

  /** Uplink states changed (addresses, carrier, endpoints, mode, admin). */
  updateUplinks (states: ReadonlyArray<UplinkState & { admin?: 'up' | 'down' }>): void {
    const m = this.#opts.metrics
    const before = this.#states
    this.#states = new Map(states.map((s) => [s.name, s]))
    this.#pathOf = addressMap(states)
    for (const s of states) {
      const up = s.up && s.addresses.length > 0
      m.pathUp.set({ path: s.name }, up ? 1 : 0)
      const role = roleOf(s)
      m.pathRole.set({ path: s.name, role }, 1)
      m.pathRole.set({ path: s.name, role: role === 'primary' ? 'backup' : 'primary' }, 0)
      m.endpointConfigured.set({ path: s.name }, this.#endpointConfigured(s) ? 1 : 0)
      const was = before.get(s.name)
      if (this.#opts.countFailovers !== false && was !== undefined && was.up && was.addresses.length > 0 && !up) this.#failover(s.name, states)
    }
  }

  #endpointConfigured (s: UplinkState & { admin?: 'up' | 'down' }): boolean {
    if (s.admin === 'down') return false
    return s.name === this.#opts.primary ? s.addresses.length > 0 : s.endpointIds.length > 0
  }

  #failover (from: string, states: ReadonlyArray<UplinkState>): void {
    const to = states.find((o) => o.name !== from && o.up && o.addresses.length > 0)
    if (to !== undefined) this.#opts.metrics.pathFailovers.inc({ from_path: from, to_path: to.name })
  }

  /** Path of a local address (undefined: no uplink owns it). */
  pathOf (address: string | undefined): string | undefined {
    return address === undefined ? undefined : this.#pathOf.get(normaliseAddress(address))
  }

  track (id: number, upstream: net.Socket): void {
    this.#live.set(id, upstream)
  }

  /** Final sample (while the fd is still open), then forget the connection. */
  untrack (id: number): void {
    const socket = this.#live.get(id)
    if (socket === undefined) return
    this.#sample(id, socket)
    this.#live.delete(id)
    this.#accounting.forget(id)
  }

  /** Sample one connection now (e.g. on FIN) without forgetting it. */
  sampleOne (id: number): void {
    const socket = this.#live.get(id)
    if (socket !== undefined) this.#sample(id, socket)
  }

  sampleAll (): void {
    const counts = new Map<string, number>()
    for (const [id, socket] of this.#live) {
      for (const [path, t] of this.#sample(id, socket)) {
        counts.set(path, (counts.get(path) ?? 0) + t.subflows)
        for (const rtt of t.rttUs) this.#opts.metrics.pathRtt.observe({ path }, rtt / 1e6)
      }
    }
    this.#subflows = counts
    for (const p of this.#opts.paths) this.#opts.metrics.mptcpSubflowsActive.set({ path: p }, counts.get(p) ?? 0)
  }

  #sample (id: number, socket: net.Socket): Map<string, PathTotals> {
    const subflows = this.#read(socket)
    if (subflows === undefined) return new Map()
    const result = this.#accounting.sample(id, subflows, (a) => this.#pathOf.get(normaliseAddress(a)))
    const m = this.#opts.metrics
    for (const [path, t] of result) {
      if (t.up > 0) m.pathBytes.inc({ path, direction: 'up' }, t.up)
      if (t.down > 0) m.pathBytes.inc({ path, direction: 'down' }, t.down)
      const total = this.#totals.get(path)
      if (total !== undefined) { total.up += t.up; total.down += t.down }
    }
    return result
  }

  #read (socket: net.Socket): SubflowSample[] | undefined {
    if (socket.destroyed) return undefined
    try {
      const fd = socketFd(socket)
      const full = (this.#reader ??= new MptcpFullInfoReader()).read(fd)
      if (full !== undefined) {
        return full.subflows.map((s) => subflowSample(s.localAddress, s.localPort, s.remoteAddress, s.remotePort, s))
      }
      const t = tcpInfo(fd)
      return [subflowSample(socket.localAddress ?? '', socket.localPort ?? 0, socket.remoteAddress ?? '', socket.remotePort ?? 0, t)]
    } catch {
      return undefined
    }
  }

  /** Per-path state for the management API. */
  view (): PathView[] {
    return this.#opts.paths.map((name) => {
      const s = this.#states.get(name)
      const totals = this.#totals.get(name) ?? { up: 0, down: 0 }
      return {
        name,
        up: s !== undefined && s.up && s.addresses.length > 0,
        role: s === undefined ? 'primary' : roleOf(s),
        admin: s?.admin ?? 'up',
        endpointConfigured: s !== undefined && this.#endpointConfigured(s),
        subflows: this.#subflows.get(name) ?? 0,
        bytesUp: totals.up,
        bytesDown: totals.down
      }
    })
  }
}

function subflowSample (localAddress: string, localPort: number, remoteAddress: string, remotePort: number,
  c: { bytesAcked: number | undefined, bytesReceived: number | undefined, rttUs: number }): SubflowSample {
  return { localAddress, localPort, remoteAddress, remotePort, bytesAcked: c.bytesAcked, bytesReceived: c.bytesReceived, rttUs: c.rttUs }
}

function roleOf (s: UplinkState): PathRole {
  return s.mode === 'backup' && s.role === 'lte' ? 'backup' : 'primary'
}
