/**
 * One access's probe socket: a UDP socket bound to the access's own source address (port 0), so the
 * source policy routing (`ip rule from <address> lookup <table>`) sends every probe over that access.
 * It numbers the probes, remembers the outstanding ones and reports each as answered (with its RTT)
 * or lost (no reply within `timeoutMs`, the send failed, or a later probe was answered first).
 * Replies from any other address, with an unknown or expired sequence number, or malformed, are
 * ignored. Errors never escape a handler.
 */
import dgram from 'node:dgram'
import { isIP } from 'node:net'
import { decodeProbe, encodeProbe, ProbeType } from '../../../shared/src/codec/path-probe.ts'
import { normaliseAddress } from '../paths/path-accounting.ts'

export interface ProbeTarget { host: string, port: number }

export interface ProbeSocketOptions {
  source: string
  target: ProbeTarget
  timeoutMs: number
  /** Monotonic clock in ms. */
  now: () => number
  /** rttMs undefined: lost. */
  onOutcome: (rttMs: number | undefined) => void
}

export class ProbeSocket {
  readonly source: string
  readonly #opts: ProbeSocketOptions
  readonly #socket: dgram.Socket
  readonly #outstanding = new Map<number, number>()
  #seq = 0
  #bound = false
  #closed = false

  constructor (opts: ProbeSocketOptions) {
    this.#opts = opts
    this.source = opts.source
    const v6 = isIP(opts.source) === 6
    this.#socket = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6 })
    this.#socket.on('error', () => { /* a bind failure or ICMP error: probes simply count as lost */ })
    this.#socket.on('message', (msg, rinfo) => { this.#onMessage(msg, rinfo.address) })
    this.#socket.bind(0, opts.source, () => { this.#bound = true })
  }

  /** Declare the overdue probes lost, then send the next one. */
  tick (): void {
    if (this.#closed) return
    const now = this.#opts.now()
    for (const [seq, sentAt] of this.#outstanding) {
      if (now - sentAt < this.#opts.timeoutMs) continue
      this.#outstanding.delete(seq)
      this.#opts.onOutcome(undefined)
    }
    if (!this.#bound) { this.#opts.onOutcome(undefined); return }
    this.#send(now)
  }

  close (): void {
    if (this.#closed) return
    this.#closed = true
    this.#outstanding.clear()
    try { this.#socket.close() } catch { /* not bound yet */ }
  }

  #send (now: number): void {
    const seq = this.#seq
    this.#seq = (this.#seq + 1) >>> 0
    const datagram = encodeProbe({ type: ProbeType.Request, sequence: seq, timestampUs: Math.round(now * 1000), paddingBytes: 0 })
    this.#outstanding.set(seq, now)
    this.#socket.send(datagram, this.#opts.target.port, this.#opts.target.host, (err) => {
      if (err === null || this.#closed || !this.#outstanding.delete(seq)) return
      this.#opts.onOutcome(undefined) // no route, address gone: lost now rather than at the timeout
    })
  }

  #onMessage (msg: Buffer, from: string): void {
    if (normaliseAddress(from) !== normaliseAddress(this.#opts.target.host)) return
    const r = decodeProbe(msg)
    if (!r.ok || r.value.type !== ProbeType.Reply) return
    const sentAt = this.#outstanding.get(r.value.sequence)
    if (sentAt === undefined) return
    this.#outstanding.delete(r.value.sequence)
    // Probes sent before this one and still unanswered are lost now, not at their timeout: otherwise
    // their late verdicts would break the run of answers after a path recovers (recovery + timeoutMs).
    for (const [seq, at] of this.#outstanding) {
      if (at > sentAt) continue
      this.#outstanding.delete(seq)
      this.#opts.onOutcome(undefined)
    }
    this.#opts.onOutcome(Math.max(0, this.#opts.now() - sentAt))
  }
}

/** The access's address to probe from: the first of the target's family (no IPv6 link-local). */
export function probeSource (addresses: readonly string[], target: string): string | undefined {
  const family = isIP(target)
  return addresses.find((a) => isIP(a) === family && !a.toLowerCase().startsWith('fe80:'))
}
