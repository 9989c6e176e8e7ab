import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mulberry32 } from '../../../lab/prng.ts'
import {
  analyseSoak, bucketFloors, leastSquaresSlope, SOAK_THRESHOLDS, trendSamples,
  type DaemonSeries, type SoakLoadTotals, type SoakSample
} from '../../../lab/soak-analysis.ts'

const MIB = 1024 * 1024

const LOAD: SoakLoadTotals = {
  planned: 15_000,
  started: 15_000,
  done: 15_000,
  ok: 12_000,
  aborted: 1200,
  halfClosed: 1795,
  errors: 5,
  skipped: 0,
  bytesDown: 4e9,
  bytesUp: 1e8,
  errorsByReason: { 'http-1k:timeout': 5 }
}

interface Shape {
  /** RSS / heap in MiB at second t of the load (t ≥ 0). */
  rss: (t: number) => number
  heap: (t: number) => number
  fds?: (t: number) => number
  final?: Partial<SoakSample>
}

/** A 10-minute soak sampled every 10 s, as soak-run.ts records it. */
function series (shape: Shape, seconds = 600): DaemonSeries {
  const at = (t: number, extra: Partial<SoakSample> = {}): SoakSample => ({
    atS: t,
    rssBytes: shape.rss(Math.max(0, t)) * MIB,
    heapUsedBytes: shape.heap(Math.max(0, t)) * MIB,
    openFds: shape.fds?.(t) ?? 30,
    connectionsActive: t < 0 ? 0 : 40,
    sessions: t < 0 ? 0 : 40,
    ...extra
  })
  const load: SoakSample[] = []
  for (let t = 10; t <= seconds; t += 10) load.push(at(t))
  return { baseline: at(-3, { openFds: 28 }), load, final: at(seconds + 20, { openFds: 29, connectionsActive: 0, sessions: 0, ...shape.final }) }
}

/**
 * A flat but noisy daemon on a shared host: RSS climbs in the first third (warm-up, excluded),
 * then wanders ±6 MiB with one allocator step of +8 MiB; the V8 heap saw-tooths between 20 and
 * 50 MiB (scavenges at a period unrelated to the 10 s sampling), plus jitter.
 */
function noisyFlat (seed: number): Shape {
  const r = mulberry32(seed)
  const phase = r() * 100
  return {
    rss: (t) => 100 + Math.min(t, 200) * 0.25 + (t > 400 ? 8 : 0) + (r() - 0.5) * 12,
    heap: (t) => 20 + (((t + phase) % 37) / 37) * 30 + (r() - 0.5) * 4
  }
}

test('least-squares slope: exact on a line, 0 on degenerate input', () => {
  assert.equal(leastSquaresSlope([0, 1, 2, 3], [1, 3, 5, 7]), 2)
  assert.equal(leastSquaresSlope([1], [5]), 0)
  assert.equal(leastSquaresSlope([2, 2], [1, 9]), 0)
})

test('trend window: the last 2/3 of the load; floors: the minimum per 60 s bucket', () => {
  const s = series({ rss: (t) => t, heap: () => 10 })
  const w = trendSamples(s.load, 2 / 3)
  assert.equal(w[0]!.atS, 210)
  assert.equal(w[w.length - 1]!.atS, 600)
  const floors = bucketFloors(w, 60, (x) => x.rssBytes)
  assert.equal(floors.length, 7)
  assert.deepEqual(floors.slice(0, 2).map((f) => f.mib), [210, 270])
})

test('noisy flat series pass (20 seeds): saw-tooth heap, RSS warm-up and an allocator step', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const v = analyseSoak({ cpe: series(noisyFlat(seed)), concentrator: series(noisyFlat(seed + 100)) }, LOAD)
    assert.ok(v.pass, `seed ${seed}: ${JSON.stringify(v.failed)}`)
    assert.deepEqual(v.trendWindowS, [210, 600])
  }
})

test('a synthetic leak is detected by the slope: 5 MiB/min (≈ 3.4 KiB per connection at 25/s) under the same noise', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const flat = noisyFlat(seed)
    const leaky: Shape = { rss: (t) => flat.rss(t) + (t / 60) * 5, heap: (t) => flat.heap(t) + (t / 60) * 5 }
    const v = analyseSoak({ cpe: series(flat), concentrator: series(leaky) }, LOAD)
    assert.equal(v.pass, false, `seed ${seed}`)
    const names = v.failed.map((c) => `${c.subject} ${c.name}`)
    assert.ok(names.includes('concentrator heap slope') && names.includes('concentrator RSS slope'), names.join(', '))
    assert.ok(names.every((n) => n.startsWith('concentrator')), names.join(', '))
  }
})

test('a slow leak over a long run is caught by the growth bound although its slope is below the slope bound', () => {
  const hours = 3
  const slow: Shape = { rss: (t) => 100 + (t / 60) * 0.5, heap: (t) => 30 + (t / 60) * 0.2 }
  const v = analyseSoak({ cpe: series(slow, hours * 3600), concentrator: series(noisyFlat(7), hours * 3600) }, LOAD)
  assert.deepEqual(v.failed.map((c) => `${c.subject} ${c.name}`), ['cpe RSS growth', 'cpe heap growth'])
  assert.ok(v.daemons.cpe.heap.slopeMiBPerMin < SOAK_THRESHOLDS.heapSlopeMiBPerMin)
  assert.ok(v.daemons.cpe.rss.slopeMiBPerMin < SOAK_THRESHOLDS.rssSlopeMiBPerMin)
})

test('leaks at the end: fds, connections and sessions not back to the baseline', () => {
  const v = analyseSoak({
    cpe: series({ ...noisyFlat(3), final: { openFds: 67, connectionsActive: 19, sessions: 19 } }),
    concentrator: series({ ...noisyFlat(4), final: { openFds: 28 + SOAK_THRESHOLDS.fdMargin } })
  }, LOAD)
  assert.deepEqual(v.failed.map((c) => `${c.subject} ${c.name} ${c.value}`),
    ['cpe fds back to baseline 39', 'cpe connections back to baseline 19', 'cpe sessions back to baseline 19'])
  assert.deepEqual(v.daemons.cpe.fds, { baseline: 28, peak: 67, final: 67 })
})

test('the load must have run and mostly succeeded; a run too short for a trend fails', () => {
  const ok = { cpe: series(noisyFlat(1)), concentrator: series(noisyFlat(2)) }
  const failedOf = (load: SoakLoadTotals): string[] => analyseSoak(ok, load).failed.map((c) => c.name)
  assert.deepEqual(failedOf({ ...LOAD, done: 1000, ok: 1000, aborted: 0, halfClosed: 0, errors: 0 }), ['connections done'])
  assert.deepEqual(failedOf({ ...LOAD, errors: 300 }), ['connection errors'])
  assert.deepEqual(failedOf({ ...LOAD, done: 0, ok: 0, aborted: 0, halfClosed: 0, errors: 0 }), ['connections done', 'connection errors'])
  const short = analyseSoak({ cpe: series(noisyFlat(1), 120), concentrator: series(noisyFlat(2), 120) }, LOAD)
  assert.ok(short.failed.some((c) => c.name === 'trend buckets'))
})
