/**
 * One access's probe socket: a UDP socket bound to the access's own source address (port 0), so the
 * source policy routing (`ip rule from <address> lookup <table>`) sends every probe over that access.
 * It numbers the probes, remembers the outstanding ones and reports each as answered (with its RTT)
 * or lost (no reply within its timeout, the send failed, or a later probe was answered first).
 * Each probe has its own deadline timer (the timeout is read per probe: it may adapt), and the
 * verdict at the deadline is taken in `setImmediate`, after the event loop has read the sockets:
 * when the agent's own event loop was blocked (a busy CPE), replies waiting in the socket buffer
 * are counted as answers, not as losses. A reply that arrives after its probe was declared lost is
 * reported as a late RTT (the timeout adapts to it) and re-arms the outstanding probes' deadlines
 * with the new timeout. Replies from any other address, with an
 * unknown sequence number, or malformed, are ignored. Errors never escape a handler.
 */
import dgram from 'node:dgram'
import { isIP } from 'node:net'
import { decodeProbe, encodeProbe, ProbeType } from '../../../shared/src/codec/path-probe.ts'
import { normaliseAddress } from '../paths/path-accounting.ts'

export interface ProbeTarget { host: string, port: number }

export interface ProbeSocketOptions {
  source: string
  target: ProbeTarget
  /** Timeout of the probe being sent now (ms). */
  timeoutMs: () => number
  /** Monotonic clock in ms. */
  now: () => number
  /** rttMs undefined: lost. */
  onOutcome: (rttMs: number | undefined) => void
  /** A reply to a probe already declared lost (its RTT, ms). */
  onLateReply?: (rttMs: number) => void
}

interface Outstanding { readonly sentAt: number, timer: NodeJS.Timeout }

/** Probes declared lost whose late reply still counts as an RTT sample. */
const LATE_MEMORY = 64

export class ProbeSocket {
  readonly source: string
  readonly #opts: ProbeSocketOptions
  readonly #socket: dgram.Socket
  readonly #outstanding = new Map<number, Outstanding>()
  /** Send times of the last probes declared lost (for late replies). */
  readonly #expired = new Map<number, number>()
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

  /** Send the next probe (each outstanding one is judged at its own deadline). */
  tick (): void {
    if (this.#closed) return
    if (!this.#bound) { this.#opts.onOutcome(undefined); return }
    this.#send(this.#opts.now())
  }

  close (): void {
    if (this.#closed) return
    this.#closed = true
    for (const o of this.#outstanding.values()) clearTimeout(o.timer)
    this.#outstanding.clear()
    try { this.#socket.close() } catch { /* not bound yet */ }
  }

  #send (now: number): void {
    const seq = this.#seq
    this.#seq = (this.#seq + 1) >>> 0
    const datagram = encodeProbe({ type: ProbeType.Request, sequence: seq, timestampUs: Math.round(now * 1000), paddingBytes: 0 })
    this.#outstanding.set(seq, { sentAt: now, timer: this.#deadline(seq, this.#opts.timeoutMs()) })
    this.#socket.send(datagram, this.#opts.target.port, this.#opts.target.host, (err) => {
      if (err !== null) this.#lost(seq) // no route, address gone: lost now rather than at the timeout
    })
  }

  /**
   * After a late reply the path is slow, not dead: the outstanding probes get the (now larger)
   * timeout from their send time, so a sudden RTT rise costs one lost probe, not downAfter of them.
   */
  #rearm (): void {
    const now = this.#opts.now()
    const timeout = this.#opts.timeoutMs()
    for (const [seq, o] of this.#outstanding) {
      clearTimeout(o.timer)
      o.timer = this.#deadline(seq, Math.max(0, o.sentAt + timeout - now))
    }
  }

  /** The probe's deadline timer; the verdict is taken after the poll phase (setImmediate), so replies already received count. */
  #deadline (seq: number, ms: number): NodeJS.Timeout {
    return setTimeout(() => { setImmediate(() => { this.#lost(seq) }) }, ms).unref()
  }

  #lost (seq: number): void {
    const o = this.#outstanding.get(seq)
    if (this.#closed || o === undefined) return
    clearTimeout(o.timer)
    this.#outstanding.delete(seq)
    this.#expired.set(seq, o.sentAt)
    if (this.#expired.size > LATE_MEMORY) this.#expired.delete(this.#expired.keys().next().value!)
    this.#opts.onOutcome(undefined)
  }

  #onMessage (msg: Buffer, from: string): void {
    if (normaliseAddress(from) !== normaliseAddress(this.#opts.target.host)) return
    const r = decodeProbe(msg)
    if (!r.ok || r.value.type !== ProbeType.Reply) return
    const seq = r.value.sequence
    const o = this.#outstanding.get(seq)
    if (o === undefined) {
      const sentAt = this.#expired.get(seq)
      if (sentAt !== undefined && this.#expired.delete(seq)) {
        this.#opts.onLateReply?.(Math.max(0, this.#opts.now() - sentAt))
        this.#rearm()
      }
      return
    }
    // Probes sent before this one and still unanswered are lost now, not at their timeout: otherwise
    // their late verdicts would break the run of answers after a path recovers (recovery + timeout).
    for (const [s, earlier] of this.#outstanding) if (earlier.sentAt <= o.sentAt && s !== seq) this.#lost(s)
    clearTimeout(o.timer)
    this.#outstanding.delete(seq)
    this.#opts.onOutcome(Math.max(0, this.#opts.now() - o.sentAt))
  }
}

/** The access's address to probe from: the first of the target's family (no IPv6 link-local). */
export function probeSource (addresses: readonly string[], target: string): string | undefined {
  const family = isIP(target)
  return addresses.find((a) => isIP(a) === family && !a.toLowerCase().startsWith('fe80:'))
}
