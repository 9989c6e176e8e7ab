/**
 * User-space delay line: the lab's stand-in for netem (absent from the test kernel). Packets read
 * from a TUN device are held for delay ± jitter, dropped with the loss probability, and written
 * back into the same device in arrival order.
 *
 * Model (see docs/link-emulation.md):
 * - Per direction FIFO: a packet never leaves before the one read before it, so there is no
 *   reordering, and a plain array queue replaces a sorted heap.
 * - Jitter is a smooth random curve, not an independent draw per packet: every `4 × jitter` ms a
 *   new target offset is drawn uniformly from [-jitter, +jitter] and the offset moves linearly
 *   towards it. Its slope never exceeds 0.5, so `arrival + delay + offset(arrival)` increases with
 *   arrival: FIFO holds without clamping and the mean delay stays at `delayMs` even at high packet
 *   rates (independent draws plus FIFO would push every packet towards delay + jitter). A probe
 *   every ≥ 20 ms still sees the whole ±jitter spread.
 * - Loss: independent per packet (Bernoulli, lossPct / 100). Blackhole drops everything.
 * - One timer, armed for the earliest head-of-line packet; when it fires every due packet of both
 *   directions is written. Randomness comes from a seeded PRNG, so runs are reproducible.
 */
import { mulberry32, type Rng } from './prng.ts'

export { mulberry32, type Rng }

export interface LineParams {
  delayMs: number
  jitterMs: number
  lossPct: number
}

export interface DirectionStats {
  /** Packets read from the device. */
  packets: number
  /** Packets dropped (loss or blackhole). */
  dropped: number
  /** Packets written back. */
  forwarded: number
  bytes: number
  /** Packets held right now. */
  queued: number
  /** Release error (write time − due time) in ms over forwarded packets: signed sum, largest |error|. */
  errorSumMs: number
  errorMaxMs: number
}

/** Smooth jitter offset in [-jitter, +jitter] with |slope| ≤ 0.5 (see the module comment). */
export class JitterCurve {
  readonly #rng: Rng
  #jitterMs = 0
  #t0 = 0
  #v0 = 0
  #t1 = 0
  #v1 = 0

  constructor (rng: Rng, jitterMs: number) {
    this.#rng = rng
    this.setJitter(jitterMs, 0)
  }

  /** Change the amplitude; the curve restarts from its current value towards new targets. */
  setJitter (jitterMs: number, nowMs: number): void {
    const here = this.#jitterMs > 0 ? this.offsetAt(nowMs) : 0
    this.#jitterMs = jitterMs
    this.#t0 = nowMs
    this.#v0 = Math.max(-jitterMs, Math.min(jitterMs, here))
    this.#t1 = nowMs
    this.#v1 = this.#v0
  }

  /** Offset at time t; t must not go backwards by more than one segment. */
  offsetAt (tMs: number): number {
    const j = this.#jitterMs
    if (j <= 0) return 0
    const step = 4 * j
    if (tMs >= this.#t1 + step) {
      // idle gap: start a fresh segment at t from the value the curve would have had
      this.#t0 = tMs
      this.#v0 = this.#v1
      this.#t1 = tMs + step
      this.#v1 = (2 * this.#rng() - 1) * j
    }
    while (tMs >= this.#t1) {
      this.#t0 = this.#t1
      this.#v0 = this.#v1
      this.#t1 += step
      this.#v1 = (2 * this.#rng() - 1) * j
    }
    if (tMs <= this.#t0) return this.#v0
    return this.#v0 + (this.#v1 - this.#v0) * (tMs - this.#t0) / (this.#t1 - this.#t0)
  }
}

interface Held { due: number, packet: Buffer }

/**
 * Release quantum: the timer is armed for the head-of-line packet's due time, and that wake also
 * releases every packet due within the next quantum/2 ms. A lone packet leaves on time; packets in
 * a batch leave up to quantum/2 early. At 50 Mbit/s (≈ 4000 packets/s) 1 ms batches about five
 * packets per wake; the wake, not the packet, dominates the delay line's CPU cost
 * (docs/link-emulation.md).
 */
export const DEFAULT_QUANTUM_MS = 1
const EARLY_MS = DEFAULT_QUANTUM_MS / 2

/** One direction: admission (loss, due time) and a FIFO of held packets. */
export class DirectionLine {
  readonly name: string
  readonly #rng: Rng
  readonly #jitter: JitterCurve
  readonly #write: (packet: Buffer) => void
  #params: LineParams
  #blackhole = false
  #queue: Held[] = []
  #head = 0
  #lastDue = -Infinity
  readonly stats: DirectionStats = { packets: 0, dropped: 0, forwarded: 0, bytes: 0, queued: 0, errorSumMs: 0, errorMaxMs: 0 }

  constructor (name: string, params: LineParams, rng: Rng, write: (packet: Buffer) => void) {
    this.name = name
    this.#rng = rng
    this.#params = { ...params }
    this.#jitter = new JitterCurve(rng, params.jitterMs)
    this.#write = write
  }

  get params (): Readonly<LineParams> { return this.#params }
  get blackhole (): boolean { return this.#blackhole }

  setParams (p: LineParams, nowMs: number): void {
    if (p.jitterMs !== this.#params.jitterMs) this.#jitter.setJitter(p.jitterMs, nowMs)
    this.#params = { ...p }
  }

  setBlackhole (on: boolean): void { this.#blackhole = on }

  /** Due time for a packet read at `nowMs`, or undefined when it is dropped. */
  schedule (nowMs: number): number | undefined {
    const p = this.#params
    if (this.#blackhole || (p.lossPct > 0 && this.#rng() * 100 < p.lossPct)) return undefined
    const due = Math.max(nowMs + p.delayMs + this.#jitter.offsetAt(nowMs), this.#lastDue, nowMs)
    this.#lastDue = due
    return due
  }

  /** Take a packet read at `nowMs`: drop it, write it at once (due now, nothing held) or hold it. */
  admit (packet: Buffer, nowMs: number, earlyMs = EARLY_MS): void {
    this.stats.packets++
    this.stats.bytes += packet.length
    const due = this.schedule(nowMs)
    if (due === undefined) { this.stats.dropped++; return }
    if (due <= nowMs + earlyMs && this.stats.queued === 0) { this.#emit(packet, due, nowMs); return }
    this.#queue.push({ due, packet })
    this.stats.queued++
  }

  /** Write every held packet due by `nowMs + earlyMs`; returns how many were written. */
  release (nowMs: number, earlyMs = EARLY_MS): number {
    let n = 0
    while (this.#head < this.#queue.length) {
      const h = this.#queue[this.#head] as Held
      if (h.due > nowMs + earlyMs) break
      this.#head++
      this.stats.queued--
      this.#emit(h.packet, h.due, nowMs)
      n++
    }
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head)
      this.#head = 0
    }
    return n
  }

  nextDue (): number | undefined {
    return this.#queue[this.#head]?.due
  }

  #emit (packet: Buffer, due: number, nowMs: number): void {
    const err = nowMs - due
    this.stats.errorSumMs += err
    if (Math.abs(err) > this.stats.errorMaxMs) this.stats.errorMaxMs = Math.abs(err)
    this.stats.forwarded++
    this.#write(packet)
  }
}

/** Time source and one one-shot timer (precise-timer.ts in the process, a fake in unit tests). */
export interface Clock {
  now: () => number
  /** Call fn once at `atMs` (a now() value), replacing any armed call. */
  arm: (atMs: number, fn: () => void) => void
  cancel: () => void
}

export interface DelayLineOptions {
  /** Packets due within quantum/2 after a wake leave with it (default DEFAULT_QUANTUM_MS); 0 = one wake per due time. */
  quantumMs?: number
  /** First guess of the timer's wake-up lateness in ms (then learnt, EWMA). Default 0.1. */
  latenessMs?: number
}

/**
 * Both directions plus the single release timer. The timer is armed `lateness` before the
 * wanted wake-up, where `lateness` is a moving average of how late past wakes were, so the
 * release error stays centred on zero on a busy host instead of always being late.
 */
export class DelayLine {
  readonly up: DirectionLine
  readonly down: DirectionLine
  readonly #clock: Clock
  readonly #half: number
  #lateness: number
  #armedFor = Infinity
  #armedAt = 0
  #armedWhen = 0
  /** Timer wakes so far (each releases one batch). */
  wakes = 0

  constructor (up: DirectionLine, down: DirectionLine, clock: Clock, opts: DelayLineOptions = {}) {
    this.up = up
    this.down = down
    this.#clock = clock
    this.#half = (opts.quantumMs ?? DEFAULT_QUANTUM_MS) / 2
    this.#lateness = opts.latenessMs ?? 0.1
  }

  /** Current estimate of the timer's wake-up lateness, ms. */
  get latenessMs (): number { return this.#lateness }

  onPacket (dir: DirectionLine, packet: Buffer): void {
    dir.admit(packet, this.#clock.now(), this.#half)
    const due = dir.nextDue()
    if (due !== undefined && due < this.#armedFor) this.#arm()
  }

  /** Release what is due (or due within quantum/2) and re-arm for the next head of line. */
  flush (): void {
    const now = this.#clock.now()
    this.up.release(now, this.#half)
    this.down.release(now, this.#half)
    this.#arm()
  }

  stop (): void {
    this.#clock.cancel()
    this.#armedFor = Infinity
  }

  #arm (): void {
    const next = Math.min(this.up.nextDue() ?? Infinity, this.down.nextDue() ?? Infinity)
    if (next === this.#armedFor) return
    if (next === Infinity) { this.stop(); return }
    this.#armedFor = next
    this.#armedWhen = this.#clock.now()
    this.#armedAt = next - this.#lateness
    this.#clock.arm(this.#armedAt, () => { this.#onWake() })
  }

  #onWake (): void {
    this.wakes++
    // learn only from timers that were armed for the future (an overdue arm fires at once)
    if (this.#armedAt > this.#armedWhen) {
      const late = this.#clock.now() - this.#armedAt
      this.#lateness = Math.max(0, Math.min(2, 0.9 * this.#lateness + 0.1 * late))
    }
    this.#armedFor = Infinity
    this.flush()
  }
}
