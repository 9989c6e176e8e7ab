import { test } from 'node:test'
import assert from 'node:assert/strict'
import { latencyRows, quantile, renderLatencyMarkdown, type LatencyBenchResult } from '../../../bench/latency-report.ts'

test('quantile: median of odd and even counts, nearest-rank p90, NaN for none', () => {
  assert.equal(quantile([3, 1, 2], 0.5), 2)
  assert.equal(quantile([4, 1, 3, 2], 0.5), 2.5)
  assert.equal(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9), 9)
  assert.equal(quantile([5], 0.9), 5)
  assert.ok(Number.isNaN(quantile([], 0.5)))
})

test('latencyRows: deltas over the reference series, the first fetch against its median', () => {
  const rows = latencyRows([
    { name: 'direct', firstMs: [41], samplesMs: [40, 41, 42] },
    { name: 'socks5', firstMs: [50, 44, 46], samplesMs: [42, 43, 44.006] }
  ])
  assert.deepEqual(rows[0], { name: 'direct', medianMs: 41, p90Ms: 42, firstMedianMs: 41, deltaMedianMs: 0, deltaP90Ms: 0, deltaFirstMs: 0 })
  assert.deepEqual(rows[1], { name: 'socks5', medianMs: 43, p90Ms: 44.01, firstMedianMs: 46, deltaMedianMs: 2, deltaP90Ms: 2.01, deltaFirstMs: 5 })
})

test('latencyRows: without the reference every delta is NaN', () => {
  const [row] = latencyRows([{ name: 'socks5', firstMs: [1], samplesMs: [1] }])
  assert.ok(row !== undefined && Number.isNaN(row.deltaMedianMs) && Number.isNaN(row.deltaFirstMs))
})

test('renderLatencyMarkdown: the command, one table row per series with signed deltas, the samples and notes', () => {
  const series = [
    { name: 'direct', firstMs: [41, 42], samplesMs: [40, 41, 42] },
    { name: 'transparent', firstMs: [40, 41], samplesMs: [40.5, 40.6, 40.7] }
  ]
  const r: LatencyBenchResult = {
    date: '2026-12-08',
    command: 'npm run bench -- latency --samples 3',
    host: { kernel: '6.18.0', cpus: 2, loadavg: [1, 0.5, 0.25] },
    profiles: { dsl: 'vdsl', lte: 'lte' },
    url: 'http://203.0.113.10/1k',
    series,
    rows: latencyRows(series),
    notes: ['a note']
  }
  const md = renderLatencyMarkdown(r)
  assert.match(md, /^# Setup latency, 2026-12-08\n/)
  assert.match(md, /Command: `npm run bench -- latency --samples 3`/)
  assert.match(md, /3 samples per data plane, and the first fetch after each of 2 daemon start\(s\)/)
  assert.match(md, /\| direct \| 41\.0 \| 42\.0 \| 41\.5 \| \+0\.0 \| \+0\.0 \| \+0\.5 \|/)
  assert.match(md, /\| transparent \| 40\.6 \| 40\.7 \| 40\.5 \| -0\.4 \| -1\.3 \| -0\.5 \|/)
  assert.match(md, /- transparent: first 40, 41; samples 40\.5, 40\.6, 40\.7/)
  assert.match(md, /## Notes\n\n- a note\n/)
})
