/**
 * The live CONNECT-UDP flows and their caps: `udp.maxFlows` in total and
 * `udp.perSubscriberMaxFlows` per subscriber. A slot is taken before the policy check (so a
 * burst of requests cannot exceed the caps while its lookups are pending) and released exactly
 * once, by the refusal or by the flow's end.
 */
import type { UdpFlow } from './udp-flow.ts'

export interface FlowSlot {
  /** The flow that holds the slot (shutdown ends it). */
  attach: (flow: UdpFlow) => void
  /** Idempotent. */
  release: () => void
}

export type FlowAdmission = { readonly ok: true, readonly slot: FlowSlot } | { readonly ok: false, readonly reason: 'max_flows' | 'subscriber_max_flows' }

export class UdpFlowTable {
  readonly #max: number
  readonly #perSubscriber: number
  readonly #bySubscriber = new Map<string, number>()
  readonly #flows = new Set<UdpFlow>()
  #slots = 0

  constructor (limits: { maxFlows: number, perSubscriberMaxFlows: number }) {
    this.#max = limits.maxFlows
    this.#perSubscriber = limits.perSubscriberMaxFlows
  }

  /** Slots taken (flows and requests between admission and answer). */
  get size (): number { return this.#slots }
  get flows (): ReadonlySet<UdpFlow> { return this.#flows }

  admit (subscriber: string): FlowAdmission {
    if (this.#slots >= this.#max) return { ok: false, reason: 'max_flows' }
    const held = this.#bySubscriber.get(subscriber) ?? 0
    if (held >= this.#perSubscriber) return { ok: false, reason: 'subscriber_max_flows' }
    this.#slots++
    this.#bySubscriber.set(subscriber, held + 1)
    let flow: UdpFlow | undefined
    let released = false
    return {
      ok: true,
      slot: {
        attach: (f) => { flow = f; if (!released) this.#flows.add(f) },
        release: () => {
          if (released) return
          released = true
          if (flow !== undefined) this.#flows.delete(flow)
          this.#slots--
          const n = (this.#bySubscriber.get(subscriber) ?? 1) - 1
          if (n <= 0) this.#bySubscriber.delete(subscriber)
          else this.#bySubscriber.set(subscriber, n)
        }
      }
    }
  }
}
