/**
 * UDP flows by 5-tuple, with idle timeouts and caps (issue 14; docs/udp-wire.md). Generic over the
 * per-flow state, so the CPE (flows from LAN hosts) and the concentrator (flows per subscriber) keep
 * one implementation. Pure: time is passed in, nothing is scheduled here; the owner calls `sweep`
 * from one timer.
 *
 * Idle timeouts come in classes (a few distinct values: for example 30 s generic and 120 s for QUIC
 * on port 443). Each class is a Map kept in last-activity order (a touch moves the flow to the end),
 * so a sweep looks only at flows that are due, oldest first, and stops at the first one that is not.
 */

export interface FlowKey {
  readonly family: 4 | 6
  readonly src: string
  readonly srcPort: number
  readonly dst: string
  readonly dstPort: number
}

/** `4|192.0.2.1|5000|198.51.100.7|443`: stable, readable in logs and the sessions API. */
export function flowKeyString (k: FlowKey): string {
  return `${k.family}|${k.src}|${k.srcPort}|${k.dst}|${k.dstPort}`
}

export interface FlowTableOptions {
  /** Flows at once, all sources together. */
  readonly maxFlows: number
  /** Flows at once per source (a LAN host, or a subscriber). */
  readonly maxFlowsPerSource: number
  /** Idle timeout of a new flow, by its key (e.g. longer for QUIC on 443). */
  readonly idleTimeoutMs: (key: FlowKey) => number
}

export type FlowRefusal = 'global_cap' | 'source_cap'

interface Entry<F> {
  readonly key: FlowKey
  readonly id: string
  readonly source: string
  readonly timeoutMs: number
  readonly flow: F
  lastSeen: number
}

export interface ExpiredFlow<F> {
  readonly key: FlowKey
  readonly flow: F
  readonly idleMs: number
}

export class FlowTable<F> {
  readonly #o: FlowTableOptions
  readonly #byId = new Map<string, Entry<F>>()
  /** timeout class → flows of that class in last-activity order. */
  readonly #classes = new Map<number, Map<string, Entry<F>>>()
  readonly #perSource = new Map<string, number>()

  constructor (o: FlowTableOptions) {
    if (!Number.isInteger(o.maxFlows) || o.maxFlows < 1) throw new RangeError('maxFlows must be ≥ 1')
    if (!Number.isInteger(o.maxFlowsPerSource) || o.maxFlowsPerSource < 1) throw new RangeError('maxFlowsPerSource must be ≥ 1')
    this.#o = o
  }

  get size (): number { return this.#byId.size }

  flowsOf (source: string): number { return this.#perSource.get(source) ?? 0 }

  /** The flow of `key`, and marks it active at `now`; `undefined` for an unknown flow. */
  touch (key: FlowKey, now: number): F | undefined {
    const e = this.#byId.get(flowKeyString(key))
    if (e === undefined) return undefined
    this.#refresh(e, now)
    return e.flow
  }

  /** Looks up without touching. */
  get (key: FlowKey): F | undefined {
    return this.#byId.get(flowKeyString(key))?.flow
  }

  /**
   * The existing flow of `key` (touched), or a new one from `create()` if the caps allow. `source`
   * is what the per-source cap counts (the LAN host address, a subscriber name).
   */
  admit (key: FlowKey, source: string, now: number, create: () => F): { flow: F, created: boolean } | { refused: FlowRefusal } {
    const existing = this.touch(key, now)
    if (existing !== undefined) return { flow: existing, created: false }
    if (this.#byId.size >= this.#o.maxFlows) return { refused: 'global_cap' }
    if (this.flowsOf(source) >= this.#o.maxFlowsPerSource) return { refused: 'source_cap' }
    const timeoutMs = this.#o.idleTimeoutMs(key)
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new RangeError(`idle timeout must be > 0: ${timeoutMs}`)
    const e: Entry<F> = { key, id: flowKeyString(key), source, timeoutMs, flow: create(), lastSeen: now }
    this.#byId.set(e.id, e)
    this.#classOf(timeoutMs).set(e.id, e)
    this.#perSource.set(source, this.flowsOf(source) + 1)
    return { flow: e.flow, created: true }
  }

  /** Removes a flow (ended by its owner); returns it, or `undefined` if it was not there. */
  delete (key: FlowKey): F | undefined {
    const e = this.#byId.get(flowKeyString(key))
    if (e === undefined) return undefined
    this.#remove(e)
    return e.flow
  }

  /** Removes and returns every flow idle for at least its timeout at `now`. */
  sweep (now: number): Array<ExpiredFlow<F>> {
    const out: Array<ExpiredFlow<F>> = []
    for (const [timeoutMs, flows] of this.#classes) {
      for (const e of flows.values()) {
        if (now - e.lastSeen < timeoutMs) break
        out.push({ key: e.key, flow: e.flow, idleMs: now - e.lastSeen })
      }
    }
    for (const x of out) this.#remove(this.#byId.get(flowKeyString(x.key)) as Entry<F>)
    return out
  }

  * entries (): IterableIterator<{ key: FlowKey, flow: F, lastSeen: number }> {
    for (const e of this.#byId.values()) yield { key: e.key, flow: e.flow, lastSeen: e.lastSeen }
  }

  #refresh (e: Entry<F>, now: number): void {
    e.lastSeen = Math.max(e.lastSeen, now)
    const cls = this.#classOf(e.timeoutMs)
    cls.delete(e.id)
    cls.set(e.id, e)
  }

  #classOf (timeoutMs: number): Map<string, Entry<F>> {
    let cls = this.#classes.get(timeoutMs)
    if (cls === undefined) {
      cls = new Map()
      this.#classes.set(timeoutMs, cls)
    }
    return cls
  }

  #remove (e: Entry<F>): void {
    this.#byId.delete(e.id)
    const cls = this.#classes.get(e.timeoutMs)
    cls?.delete(e.id)
    if (cls?.size === 0) this.#classes.delete(e.timeoutMs)
    const n = this.flowsOf(e.source) - 1
    if (n <= 0) this.#perSource.delete(e.source)
    else this.#perSource.set(e.source, n)
  }
}

/** Default idle timeouts (docs/udp-wire.md): QUIC on 443 gets longer, as its own idle timeout is. */
export const DefaultUdpIdleTimeoutMs = 30_000
export const DefaultQuicIdleTimeoutMs = 120_000

export function defaultIdleTimeout (generic = DefaultUdpIdleTimeoutMs, quic = DefaultQuicIdleTimeoutMs): (k: FlowKey) => number {
  return (k) => (k.dstPort === 443 ? quic : generic)
}
