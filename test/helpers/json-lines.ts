/**
 * The JSON lines a test peer prints on stdout (one object per line, a `type` field naming it), for
 * e2e tests that drive peers in lab namespaces. `next(type)` takes the next unread line of that
 * type, waiting at most `timeoutMs`; the error names the peer and carries its stderr. With
 * `stamp`, each line gets `at`: `performance.now()` when it arrived (for timing a peer's events).
 */
import type { ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'

export interface Line { type: string, [k: string]: unknown }

export interface JsonLines {
  next: (type: string, timeoutMs?: number) => Promise<Line>
  /** Lines of `type` seen so far (read or not). */
  count: (type: string) => number
}

export function jsonLines (child: ChildProcess, label = 'peer', opts: { stamp?: boolean } = {}): JsonLines {
  const unread: Line[] = []
  const counts = new Map<string, number>()
  const waiters = new Set<() => void>()
  let stderr = ''
  child.stderr?.on('data', (b: Buffer) => { stderr += b.toString() })
  if (child.stdout === null) throw new Error(`${label}: spawned without a stdout pipe`)
  createInterface({ input: child.stdout }).on('line', (l) => {
    let line: Line
    try { line = JSON.parse(l) as Line } catch { return }
    if (opts.stamp === true) line = { ...line, at: performance.now() }
    unread.push(line)
    counts.set(line.type, (counts.get(line.type) ?? 0) + 1)
    for (const w of waiters) w()
  })
  const next = async (type: string, timeoutMs = 15_000): Promise<Line> => new Promise((resolve, reject) => {
    const check = (): void => {
      const i = unread.findIndex((l) => l.type === type)
      if (i < 0) return
      const [line] = unread.splice(i, 1)
      done()
      resolve(line as Line)
    }
    const timer = setTimeout(() => { done(); reject(new Error(`${label}: no ${type} line within ${timeoutMs} ms: ${stderr}`)) }, timeoutMs)
    const done = (): void => { clearTimeout(timer); waiters.delete(check) }
    waiters.add(check)
    check()
  })
  return { next, count: (type) => counts.get(type) ?? 0 }
}
