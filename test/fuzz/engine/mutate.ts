/**
 * libFuzzer-style byte mutators (EraseBytes, InsertByte, InsertRepeatedBytes, ChangeByte, ChangeBit,
 * ShuffleBytes, ChangeASCIIInteger, ChangeBinaryInteger, CopyPart, CrossOver, dictionary insert and
 * overwrite), stacked 1–8 deep per execution.
 */
import type { Rng } from '../../../lab/prng.ts'

const Interesting = [0, 1, 2, 3, 4, 5, 0x7f, 0x80, 0xfe, 0xff]

export class Mutator {
  readonly #rnd: Rng
  readonly #dict: Uint8Array[]
  readonly #maxLen: number

  constructor (rnd: Rng, dictionary: readonly Uint8Array[], maxLen: number) {
    this.#rnd = rnd
    this.#dict = dictionary.filter((d) => d.length > 0 && d.length <= maxLen)
    this.#maxLen = maxLen
  }

  #int (n: number): number { return Math.floor(this.#rnd() * n) }

  /** A mutated copy of `input`; `other` is a second corpus entry for crossover. */
  mutate (input: Uint8Array, other: Uint8Array): Uint8Array {
    let b = input
    const depth = 1 << this.#int(4)
    for (let i = 0; i < depth; i++) b = this.#one(b, other)
    return b.length > this.#maxLen ? b.subarray(0, this.#maxLen) : b
  }

  #one (b: Uint8Array, other: Uint8Array): Uint8Array {
    const len = b.length
    switch (this.#int(len === 0 ? 3 : 13)) {
      case 0: return this.#insert(b, this.#int(len + 1), Uint8Array.of(this.#int(256)))
      case 1: return this.#insert(b, this.#int(len + 1), new Uint8Array(1 + this.#int(16)).fill(this.#rnd() < 0.5 ? this.#int(256) : 0))
      case 2: return this.#dictionary(b, true)
      case 3: return this.#dictionary(b, false)
      case 4: { // EraseBytes
        const at = this.#int(len)
        const n = 1 + this.#int(Math.min(len - at, 16))
        return concat(b.subarray(0, at), b.subarray(at + n))
      }
      case 5: return this.#set(b, this.#int(len), this.#int(256))
      case 6: return this.#set(b, this.#int(len), (b[this.#int(len)] ?? 0) ^ (1 << this.#int(8)))
      case 7: return this.#set(b, this.#int(len), Interesting[this.#int(Interesting.length)] ?? 0)
      case 8: { // ShuffleBytes
        const c = Uint8Array.from(b)
        const at = this.#int(len)
        const n = Math.min(len - at, 1 + this.#int(8))
        for (let i = n - 1; i > 0; i--) {
          const j = this.#int(i + 1)
          const t = c[at + i] as number
          c[at + i] = c[at + j] as number
          c[at + j] = t
        }
        return c
      }
      case 9: return this.#binaryInteger(b)
      case 10: return this.#asciiInteger(b)
      case 11: { // CopyPart
        const from = this.#int(len)
        const n = 1 + this.#int(Math.min(len - from, 32))
        const part = b.slice(from, from + n)
        return this.#rnd() < 0.5 ? this.#insert(b, this.#int(len + 1), part) : this.#overwrite(b, this.#int(len), part)
      }
      default: { // CrossOver
        if (other.length === 0) return b
        const from = this.#int(other.length)
        const part = other.subarray(from, from + 1 + this.#int(other.length - from))
        return this.#rnd() < 0.5 ? this.#insert(b, this.#int(len + 1), part) : concat(b.subarray(0, this.#int(len + 1)), part)
      }
    }
  }

  #dictionary (b: Uint8Array, insert: boolean): Uint8Array {
    const token = this.#dict[this.#int(this.#dict.length)]
    if (token === undefined) return this.#insert(b, this.#int(b.length + 1), Uint8Array.of(this.#int(256)))
    return insert || b.length === 0 ? this.#insert(b, this.#int(b.length + 1), token) : this.#overwrite(b, this.#int(b.length), token)
  }

  #binaryInteger (b: Uint8Array): Uint8Array {
    const width = [1, 2, 4][this.#int(3)] as number
    if (b.length < width) return this.#set(b, 0, this.#int(256))
    const c = Uint8Array.from(b)
    const v = new DataView(c.buffer)
    const at = this.#int(b.length - width + 1)
    const le = this.#rnd() < 0.5
    const delta = this.#int(71) - 35
    if (width === 1) c[at] = ((c[at] as number) + delta) & 0xff
    else if (width === 2) v.setUint16(at, (v.getUint16(at, le) + delta) & 0xffff, le)
    else v.setUint32(at, (v.getUint32(at, le) + delta) >>> 0, le)
    return c
  }

  #asciiInteger (b: Uint8Array): Uint8Array {
    const start = this.#int(b.length)
    let i = start
    while (i < b.length && !isDigit(b[i] as number)) i++
    if (i === b.length) return this.#set(b, start, 0x30 + this.#int(10))
    let j = i
    while (j < b.length && isDigit(b[j] as number)) j++
    const n = Number(Buffer.from(b.subarray(i, j)).toString('latin1'))
    const choices = [n + 1, n - 1, n * 2, Math.floor(n / 2), this.#int(1000), 2 ** (8 * (1 + this.#int(4))), 0, -1]
    const text = Buffer.from(String(choices[this.#int(choices.length)]), 'latin1')
    return concat(b.subarray(0, i), text, b.subarray(j))
  }

  #set (b: Uint8Array, at: number, v: number): Uint8Array {
    const c = Uint8Array.from(b)
    c[at] = v
    return c
  }

  #insert (b: Uint8Array, at: number, part: Uint8Array): Uint8Array {
    return concat(b.subarray(0, at), part, b.subarray(at))
  }

  #overwrite (b: Uint8Array, at: number, part: Uint8Array): Uint8Array {
    const c = Uint8Array.from(b)
    c.set(part.subarray(0, c.length - at), at)
    return c
  }
}

function isDigit (c: number): boolean { return c >= 0x30 && c <= 0x39 }

function concat (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** Dictionary tokens from literals: strings as UTF-8, integers as 1, 2 and 4 bytes big-endian and as text. */
export function dictionaryFrom (literals: readonly (string | number)[], extra: readonly string[]): Uint8Array[] {
  const seen = new Set<string>()
  const out: Uint8Array[] = []
  const add = (b: Uint8Array): void => {
    const k = Buffer.from(b).toString('hex')
    if (b.length === 0 || seen.has(k)) return
    seen.add(k)
    out.push(b)
  }
  for (const l of [...literals, ...extra]) {
    if (typeof l === 'string') {
      add(Buffer.from(l, 'utf8'))
      continue
    }
    add(Buffer.from(String(l), 'latin1'))
    if (l <= 0xff) add(Uint8Array.of(l))
    if (l > 0xff && l <= 0xffff) add(Uint8Array.of(l >> 8, l & 0xff))
    if (l > 0xffff) add(Uint8Array.of(l >>> 24, (l >> 16) & 0xff, (l >> 8) & 0xff, l & 0xff))
  }
  return out
}
