/** What a fuzz target module exports (test/fuzz/targets/*.ts), and the contract helpers they share. */

export interface FuzzTarget {
  /** Inputs are cut to this many bytes (≤ 64 KiB: bounded work per execution). */
  readonly maxLen: number
  /** Throws (any error) when the parser breaks its contract; may be async. */
  readonly fuzz: (data: Buffer) => void | Promise<void>
  /** Tokens for the mutator, besides the instrumented modules' literals. */
  readonly dictionary?: readonly string[]
}

/** A broken contract, as opposed to an error the parser is documented to throw. */
export class ContractViolation extends Error {
  override name = 'ContractViolation'
}

export function check (ok: boolean, what: string): asserts ok {
  if (!ok) throw new ContractViolation(what)
}

/** Deterministic split of `data` into chunks, steered by `seed` (the fuzzer mutates both). */
export function split (data: Uint8Array, seed: number): Buffer[] {
  const chunks: Buffer[] = []
  let s = seed | 0
  let at = 0
  while (at < data.length) {
    s = (Math.imul(s, 1103515245) + 12345) | 0
    const n = seed === 0 ? data.length : 1 + ((s >>> 16) % Math.max(1, Math.min(64, data.length)))
    chunks.push(Buffer.from(data.subarray(at, at + n)))
    at += n
  }
  return chunks
}

/** JSON text of a value with Buffers as hex, for comparing verdicts. */
export function canonical (v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (x !== null && typeof x === 'object' && (x as { type?: unknown }).type === 'Buffer' && Array.isArray((x as { data?: unknown }).data)) {
      return `hex:${Buffer.from((x as { data: number[] }).data).toString('hex')}`
    }
    if (x instanceof Uint8Array) return `hex:${Buffer.from(x).toString('hex')}`
    return x
  })
}

/**
 * The end of a SOCKS5 parser transcript: at most one failure, last, with a SOCKS5 code, and state
 * `failed` exactly then; state `final` exactly when an `event` was emitted.
 */
export function checkEnding (t: { events: Array<Record<string, unknown>>, state: string }, final: string, event: string): void {
  const failures = t.events.filter((e) => e['type'] === 'failure')
  check(failures.length <= 1, 'more than one failure')
  if (failures.length === 1) {
    check(t.events.at(-1)?.['type'] === 'failure', 'events after a failure')
    check(String(failures[0]?.['code']).startsWith('HYBRID_ERR_SOCKS5_'), `failure code ${String(failures[0]?.['code'])}`)
  }
  check((t.state === 'failed') === (failures.length === 1), `state ${t.state} with ${failures.length} failures`)
  const seen = t.events.some((e) => e['type'] === event)
  check((t.state === final) === seen, `state ${t.state}, ${event} ${seen ? 'present' : 'absent'}`)
}
