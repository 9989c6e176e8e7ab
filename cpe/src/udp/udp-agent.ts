/**
 * LAN UDP on the CPE (docs/udp.md): the nft chain `lan_udp` marks LAN UDP, a policy rule routes
 * the marked packets into this agent's TUN device, and the agent carries each flow to the
 * concentrator's CONNECT-UDP proxy over one HTTP/2 session on the bonded MPTCP connection
 * (connect-udp-client.ts). Replies go back into the TUN device as IP packets whose source is the
 * flow's original destination, and the kernel forwards them to the LAN host.
 *
 * Fail-open: the route into the device lives as long as the device, and the device as long as the
 * agent's fd. If the agent dies, the table is empty, the rule no longer matches a route and LAN UDP
 * is routed natively (no bonding, no failover, but no outage). At stop the device is deleted,
 * which also wakes the TUN reader's blocked read.
 *
 * Start: TUN device up (loose reverse-path filter on it: replies come from Internet sources), then
 * the policy routing (journalled), then the reader; stop in reverse.
 */
import { writeFileSync } from 'node:fs'
import type { Logger } from '../../../shared/src/log.ts'
import type { CommandRunner } from '../../../shared/src/sys/command.ts'
import type { JournalRecorder } from '../../../shared/src/sys/crash-journal.ts'
import { closeTun, openTun, TunReader, writePacket, type TunDevice } from '../../../shared/src/net/tun.ts'
import { decodeIpUdp, encodeIpUdp } from '../../../shared/src/codec/ip-udp.ts'
import { FlowTable, type FlowKey } from '../../../shared/src/udp/flow-table.ts'
import type { UdpMetrics } from '../../../shared/src/metrics/udp-metrics.ts'
import type { UdpConfig } from '../config/udp.ts'
import { buildUdpRouting } from '../intercept/intercept-ruleset.ts'
import { installRoutingPlan, removeRoutingPlan } from '../intercept/routing-plan.ts'
import { ConnectUdpClient, type ConnectUdpClientOptions } from './connect-udp-client.ts'
import { UdpFlow } from './udp-flow.ts'

export interface UdpAgentOptions {
  readonly config: UdpConfig
  readonly ipv6: boolean
  readonly client: Omit<ConnectUdpClientOptions, 'openQueue' | 'maxBufferedBytes' | 'log' | 'now'>
  readonly metrics: UdpMetrics
  readonly log: Logger
  readonly run: CommandRunner
  readonly journal?: JournalRecorder
  readonly now?: () => number
  /** Sweep period of idle flows. Default 1000 ms. */
  readonly sweepMs?: number
}

/**
 * A link-local /32 on the TUN device. The kernel's reverse-path check refuses every packet that
 * arrives on a device without an IPv4 address whenever rp_filter is on (strict or loose:
 * `fib_validate_source` goes to its last resort), and the replies enter from this device; with an
 * address, the loose check passes as for any interface. Nothing is routed to it.
 */
export const UDP_DEVICE_ADDRESS = '169.254.77.1/32'

export interface UdpFlowView {
  readonly key: FlowKey
  readonly state: UdpFlow['state']
  readonly createdAt: number
  readonly lastSeen: number
  readonly counters: UdpFlow['counters']
}

export class UdpAgent {
  readonly #o: UdpAgentOptions
  readonly #now: () => number
  readonly #table: FlowTable<UdpFlow>
  readonly #client: ConnectUdpClient
  #dev: TunDevice | undefined
  #reader: TunReader | undefined
  #sweep: NodeJS.Timeout | undefined
  #routing = false
  #ipId = 0

  private constructor (o: UdpAgentOptions) {
    this.#o = o
    this.#now = o.now ?? Date.now
    const c = o.config
    this.#table = new FlowTable({
      maxFlows: c.maxFlows,
      maxFlowsPerSource: c.maxFlowsPerHost,
      idleTimeoutMs: (k) => (k.dstPort === 443 ? c.quicIdleTimeoutMs : c.idleTimeoutMs)
    })
    this.#client = new ConnectUdpClient({ ...o.client, openQueue: c.openQueue, maxBufferedBytes: c.maxBufferedBytes, log: o.log, now: this.#now })
  }

  static async start (o: UdpAgentOptions): Promise<UdpAgent> {
    const a = new UdpAgent(o)
    try {
      await a.#startDevice()
      await a.#installRouting()
      a.#startReader()
    } catch (err) {
      await a.stop()
      throw err
    }
    return a
  }

  get flows (): number { return this.#table.size }
  get sessionUp (): boolean { return this.#client.sessionUp }

  /** The flows for the management API, largest (bytes both ways) first. */
  list (): UdpFlowView[] {
    return [...this.#table.entries()].map(({ key, flow, lastSeen }) =>
      ({ key, state: flow.state, createdAt: flow.createdAt, lastSeen, counters: { ...flow.counters } }))
      .sort((a, b) => (b.counters.bytesUp + b.counters.bytesDown) - (a.counters.bytesUp + a.counters.bytesDown))
  }

  async stop (): Promise<void> {
    if (this.#sweep !== undefined) clearInterval(this.#sweep)
    this.#sweep = undefined
    this.#reader?.stop()
    this.#reader = undefined
    for (const { key, flow } of [...this.#table.entries()]) {
      this.#table.delete(key)
      flow.finish('stopped')
    }
    this.#o.metrics.udpFlowsActive.set(0)
    await this.#client.close()
    await this.#removeRouting()
    const dev = this.#dev
    this.#dev = undefined
    if (dev !== undefined) {
      // Deleting the link wakes the reader's blocked read; closing the fd alone would not.
      await this.#o.run(['ip', 'link', 'del', dev.name]).catch(() => {})
      closeTun(dev)
    }
  }

  async #startDevice (): Promise<void> {
    const c = this.#o.config
    this.#dev = openTun(c.device)
    await this.#o.run(['ip', 'addr', 'add', UDP_DEVICE_ADDRESS, 'dev', c.device, 'scope', 'link'])
    await this.#o.run(['ip', 'link', 'set', c.device, 'up'])
    // Replies enter from this device with Internet sources: strict reverse-path filtering would drop
    // them, loose lets them in (the effective value is the higher of `all` and the device's).
    writeFileSync(`/proc/sys/net/ipv4/conf/${c.device}/rp_filter`, '2')
    this.#o.log.info({ device: c.device }, 'UDP TUN device up')
  }

  async #installRouting (): Promise<void> {
    this.#routing = true
    await installRoutingPlan(buildUdpRouting(this.#o.config, this.#o.ipv6), this.#o.run, this.#o.journal)
    this.#o.log.info({ table: this.#o.config.routeTable, mark: this.#o.config.mark }, 'LAN UDP policy routing installed')
  }

  async #removeRouting (): Promise<void> {
    if (!this.#routing) return
    this.#routing = false
    await removeRoutingPlan(buildUdpRouting(this.#o.config, this.#o.ipv6), this.#o.run, this.#o.journal)
  }

  #startReader (): void {
    const dev = this.#dev as TunDevice
    this.#reader = new TunReader(dev.fd, (p) => { this.#onPacket(p) }, (err) => { this.#o.log.error({ err }, 'UDP TUN read failed') })
    this.#reader.start()
    this.#sweep = setInterval(() => { this.#expire() }, this.#o.sweepMs ?? 1000)
    this.#sweep.unref()
  }

  #onPacket (p: Buffer): void {
    const m = this.#o.metrics
    const d = decodeIpUdp(p)
    if (!d.ok) { m.udpDropped.inc({ reason: d.fault === 'fragment' ? 'fragment' : 'malformed' }); return }
    const pk = d.packet
    const key: FlowKey = { family: pk.family, src: pk.src, srcPort: pk.srcPort, dst: pk.dst, dstPort: pk.dstPort }
    const now = this.#now()
    const flow = this.#table.touch(key, now)
    if (flow !== undefined && !flow.holdOver(now)) { flow.up(pk.payload); return }
    if (flow !== undefined) {
      // A refused flow whose hold is over: a new request for the next datagram.
      this.#table.delete(key)
      flow.finish('refused')
    }
    const r = this.#table.admit(key, pk.src, now, () => this.#newFlow(key))
    if ('refused' in r) {
      m.udpFlowsRefused.inc({ reason: r.refused })
      m.udpDropped.inc({ reason: 'cap' })
      return
    }
    m.udpFlowsCreated.inc()
    m.udpFlowsActive.set(this.#table.size)
    r.flow.attach(this.#client.open({ host: key.dst, port: key.dstPort }, r.flow.handlers))
    r.flow.up(pk.payload)
  }

  #newFlow (key: FlowKey): UdpFlow {
    return new UdpFlow(key, {
      metrics: this.#o.metrics,
      now: this.#now,
      deliver: (k, payload) => { this.#deliver(k, payload) },
      removed: (k) => { this.#removed(k) }
    })
  }

  #deliver (k: FlowKey, payload: Uint8Array): void {
    const dev = this.#dev
    if (dev === undefined) return
    this.#ipId = (this.#ipId + 1) & 0xffff
    let packet: Buffer
    try {
      // No DF: a reply larger than the LAN's MTU is fragmented by the kernel rather than lost.
      packet = encodeIpUdp({ src: k.dst, dst: k.src, srcPort: k.dstPort, dstPort: k.srcPort, payload, dontFragment: false, id: this.#ipId })
    } catch {
      this.#o.metrics.udpDropped.inc({ reason: 'oversized' })
      return
    }
    try {
      writePacket(dev.fd, packet)
    } catch (err) {
      this.#o.log.debug({ err }, 'UDP reply not written into the TUN device')
    }
  }

  #removed (k: FlowKey): void {
    this.#table.delete(k)
    this.#o.metrics.udpFlowsActive.set(this.#table.size)
  }

  #expire (): void {
    const gone = this.#table.sweep(this.#now())
    for (const x of gone) x.flow.finish('idle')
    if (gone.length > 0) this.#o.metrics.udpFlowsActive.set(this.#table.size)
  }
}
