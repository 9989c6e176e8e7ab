/** Seeded randomness for tests, fuzzers and the lab's link emulation (reproducible runs). */

export type Rng = () => number

/** mulberry32: small, fast, seedable PRNG with uniform output in [0, 1). */
export function mulberry32 (seed: number): Rng {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
