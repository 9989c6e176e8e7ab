/**
 * One LAN UDP flow (5-tuple) on the CPE: its CONNECT-UDP tunnel, its counters and exactly one end.
 * Datagrams up go into the tunnel; datagrams down come back as IP packets whose source is the
 * flow's original destination (written into the TUN device by the agent).
 *
 * A refused flow (a cap at the concentrator, policy, authorisation, concentrator unreachable) stays
 * in the table for a hold time and drops its datagrams without a new request each time; the next
 * datagram after the hold starts a new flow (udp-agent.ts).
 */
import type { FlowKey } from '../../../shared/src/udp/flow-table.ts'
import type { UdpDrop, UdpEndReason, UdpMetrics, UdpRefusal } from '../../../shared/src/metrics/udp-metrics.ts'
import type { TunnelEnd, UdpTunnel } from './connect-udp-client.ts'

/** Hold of a refused flow: short when the concentrator was unreachable, longer for a verdict. */
export function refusalHoldMs (reason: UdpRefusal): number {
  return reason === 'unavailable' ? 1000 : 10_000
}

export interface FlowDeps {
  readonly metrics: UdpMetrics
  readonly now: () => number
  /** Writes a datagram back to the LAN host (IP packet into the TUN device). */
  readonly deliver: (key: FlowKey, payload: Uint8Array) => void
  /** The flow ended by itself (stream closed): remove it from the table. */
  readonly removed: (key: FlowKey) => void
}

export type FlowState = 'opening' | 'open' | 'refused' | 'ended'

export class UdpFlow {
  readonly key: FlowKey
  readonly createdAt: number
  readonly #d: FlowDeps
  #tunnel: UdpTunnel | undefined
  #state: FlowState = 'opening'
  #refusedUntil = 0
  #refusal: UdpRefusal | undefined
  readonly counters = { up: 0, down: 0, bytesUp: 0, bytesDown: 0, dropped: 0 }

  constructor (key: FlowKey, deps: FlowDeps) {
    this.key = key
    this.#d = deps
    this.createdAt = deps.now()
  }

  get state (): FlowState { return this.#state }
  get refusal (): UdpRefusal | undefined { return this.#refusal }

  /** Attaches the tunnel (opened by the agent with this flow's handlers). */
  attach (t: UdpTunnel): void { this.#tunnel = t }

  /** A refused flow whose hold has run out: the agent replaces it. */
  holdOver (now: number): boolean { return this.#state === 'refused' && now >= this.#refusedUntil }

  up (payload: Uint8Array): void {
    if (this.#state === 'refused' || this.#state === 'ended' || this.#tunnel === undefined) { this.drop('flow_refused'); return }
    const r = this.#tunnel.send(payload)
    if (r === 'sent' || r === 'queued') {
      this.counters.up++
      this.counters.bytesUp += payload.length
      this.#d.metrics.udpDatagrams.inc({ direction: 'up' })
      this.#d.metrics.udpBytes.inc({ direction: 'up' }, payload.length)
      return
    }
    this.drop(r)
  }

  drop (reason: UdpDrop): void {
    this.counters.dropped++
    this.#d.metrics.udpDropped.inc({ reason })
  }

  readonly handlers = {
    onOpen: (): void => { if (this.#state === 'opening') this.#state = 'open' },
    onDatagram: (payload: Uint8Array): void => {
      if (this.#state === 'ended') return
      this.counters.down++
      this.counters.bytesDown += payload.length
      this.#d.metrics.udpDatagrams.inc({ direction: 'down' })
      this.#d.metrics.udpBytes.inc({ direction: 'down' }, payload.length)
      this.#d.deliver(this.key, payload)
    },
    onDrop: (reason: UdpDrop): void => { this.drop(reason) },
    onEnd: (e: TunnelEnd): void => { this.#tunnelEnded(e) }
  }

  /** Ends the flow (idle, stopped, replaced after a refusal): counted once, its stream closed. */
  finish (reason: UdpEndReason): void {
    if (this.#state === 'ended') return
    const counted = this.#state === 'refused' ? 'refused' : reason
    this.#state = 'ended'
    this.#d.metrics.udpFlowsEnded.inc({ reason: counted })
    this.#tunnel?.close()
  }

  #tunnelEnded (e: TunnelEnd): void {
    if (this.#state === 'ended') return
    if (e.kind === 'refused' && this.#state === 'opening') {
      this.#state = 'refused'
      this.#refusal = e.reason
      this.#refusedUntil = this.#d.now() + refusalHoldMs(e.reason)
      this.#d.metrics.udpFlowsRefused.inc({ reason: e.reason })
      return
    }
    this.finish(e.kind === 'refused' ? 'refused' : 'closed')
    this.#d.removed(this.key)
  }
}
