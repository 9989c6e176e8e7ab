/**
 * De-duplication window for the redundant UDP mode (docs/udp-wire.md): each datagram of a
 * redundant flow is sent over both accesses with the same 32-bit sequence number, and the far end
 * delivers the first copy and drops the second. The window is a ring of `size` bits below the
 * highest sequence seen, with serial-number arithmetic (RFC 1982) so the sequence may wrap, as in
 * IPsec's anti-replay window (RFC 4303 §3.4.3, RFC 6479).
 *
 * A sequence more than `size` below the highest is `too_old` and dropped: its twin may or may not
 * have arrived, and a late copy of a real-time datagram is useless anyway. A sender that restarts
 * its numbering far below the window would see everything dropped; after `resyncAfter` `too_old`
 * datagrams in a row the window restarts from the next one (the fast path is authenticated, so
 * this cannot be forced by a third party).
 */

export type DedupVerdict = 'new' | 'duplicate' | 'too_old'

export interface DedupStats {
  readonly delivered: number
  readonly duplicates: number
  readonly tooOld: number
  readonly resyncs: number
}

export class DedupWindow {
  readonly #size: number
  readonly #bits: Uint32Array
  readonly #resyncAfter: number
  #top = 0
  #started = false
  #oldInARow = 0
  #delivered = 0
  #duplicates = 0
  #tooOld = 0
  #resyncs = 0

  /** `size`: a power of two, 32 … 65536 (default 1024). */
  constructor (size = 1024, resyncAfter = 64) {
    if (!Number.isInteger(size) || size < 32 || size > 65536 || (size & (size - 1)) !== 0) throw new RangeError('window size must be a power of two, 32 … 65536')
    if (!Number.isInteger(resyncAfter) || resyncAfter < 1) throw new RangeError('resyncAfter must be ≥ 1')
    this.#size = size
    this.#bits = new Uint32Array(size / 32)
    this.#resyncAfter = resyncAfter
  }

  get stats (): DedupStats {
    return { delivered: this.#delivered, duplicates: this.#duplicates, tooOld: this.#tooOld, resyncs: this.#resyncs }
  }

  /** Classifies sequence `seq` (uint32) and records it. */
  accept (seq: number): DedupVerdict {
    if (!Number.isInteger(seq) || seq < 0 || seq > 0xffffffff) throw new RangeError('sequence out of range')
    if (!this.#started) return this.#restart(seq)
    const d = ((seq - this.#top) | 0)
    if (d > 0) {
      this.#advance(seq, d)
      return this.#deliver()
    }
    if (-d >= this.#size) return this.#old(seq)
    this.#oldInARow = 0
    if (this.#test(seq)) {
      this.#duplicates++
      return 'duplicate'
    }
    this.#set(seq)
    return this.#deliver()
  }

  #restart (seq: number): DedupVerdict {
    this.#bits.fill(0)
    this.#top = seq
    this.#started = true
    this.#set(seq)
    return this.#deliver()
  }

  #old (seq: number): DedupVerdict {
    if (++this.#oldInARow < this.#resyncAfter) {
      this.#tooOld++
      return 'too_old'
    }
    this.#resyncs++
    return this.#restart(seq)
  }

  #deliver (): DedupVerdict {
    this.#oldInARow = 0
    this.#delivered++
    return 'new'
  }

  /** Moves the top to `seq` (`d` ahead), clearing the bits of the sequences skipped. */
  #advance (seq: number, d: number): void {
    if (d >= this.#size) {
      this.#bits.fill(0)
    } else {
      for (let i = 1; i <= d; i++) this.#clear((this.#top + i) >>> 0)
    }
    this.#top = seq
    this.#set(seq)
  }

  #index (seq: number): [number, number] {
    const bit = seq & (this.#size - 1)
    return [bit >>> 5, 1 << (bit & 31)]
  }

  #test (seq: number): boolean {
    const [w, m] = this.#index(seq)
    return ((this.#bits[w] as number) & m) !== 0
  }

  #set (seq: number): void {
    const [w, m] = this.#index(seq)
    this.#bits[w] = (this.#bits[w] as number) | m
  }

  #clear (seq: number): void {
    const [w, m] = this.#index(seq)
    this.#bits[w] = (this.#bits[w] as number) & ~m
  }
}
