/**
 * `--heap <n>` of the relay benchmark: which JS objects an idle relayed connection keeps. A fresh
 * concentrator with `--heapsnapshot-signal=SIGUSR2` (a snapshot starts with a full GC) gets a
 * snapshot after a warm-up and another with n idle relays; self sizes are summed by constructor
 * and the difference divided by n. Snapshots go to a temp directory and are deleted after parsing.
 */
import { copyFileSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import type { Bench } from './relay.ts'
import { aggregateHeapSnapshot, diffHeap, type HeapAggregate, type HeapRow, type HeapSnapshot } from './relay-report.ts'

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

async function snapshot (pid: number, dir: string): Promise<HeapAggregate> {
  const seen = new Set(readdirSync(dir))
  process.kill(pid, 'SIGUSR2')
  let file: string | undefined
  let size = -1
  for (let i = 0; i < 120; i++) {
    await sleep(500)
    file ??= readdirSync(dir).find((f) => !seen.has(f) && f.endsWith('.heapsnapshot'))
    if (file === undefined) continue
    const now = statSync(join(dir, file)).size
    if (now > 0 && now === size) break
    size = now
  }
  if (file === undefined) throw new Error('no heap snapshot written')
  const path = join(dir, file)
  // BENCH_KEEP_HEAP=<dir>: keep a copy of each snapshot (to open in DevTools: retainers, closures by location).
  const keep = process.env['BENCH_KEEP_HEAP']
  if (keep !== undefined && keep !== '') copyFileSync(path, join(keep, file))
  try {
    return aggregateHeapSnapshot(JSON.parse(readFileSync(path, 'utf8')) as HeapSnapshot)
  } finally {
    unlinkSync(path)
  }
}

export async function heapBreakdown (bench: Bench, count: number, dir: string, plane: 'stream' | 'splice' = 'stream',
  port?: number): Promise<{ rows: HeapRow[], totalPerConnection: number }> {
  const conc = await bench.concentrator(['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`], plane)
  try {
    const warm = bench.openIdle(200, port)
    await warm.next('ready', 30_000)
    await warm.stop()
    await sleep(1000)
    const before = await snapshot(conc.pid, dir)
    const client = bench.openIdle(count, port)
    await client.next('ready', 120_000)
    const after = await snapshot(conc.pid, dir)
    await client.stop(30_000)
    return diffHeap(before, after, count)
  } finally {
    await conc.stop()
  }
}
