import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  formatLiveHeader, formatLiveLine, formatPathState, readPathMetrics, readPathState, readSteering,
  type PathState
} from '../../../lab/live-view.ts'

/** The CPE's path-state metrics as prom-client prints them. */
const STATE = (dslUp: 0 | 1, steering: 'dsl' | 'lte' | 'none'): string => `# HELP hybrid_path_up x
# TYPE hybrid_path_up gauge
hybrid_path_up{path="dsl"} ${dslUp}
hybrid_path_up{path="lte"} 1
# TYPE hybrid_path_loss_ratio gauge
hybrid_path_loss_ratio{path="dsl"} ${dslUp === 1 ? 0 : 0.6}
hybrid_path_loss_ratio{path="lte"} 0.05
# TYPE hybrid_path_probe_rtt_seconds gauge
hybrid_path_probe_rtt_seconds{path="dsl"} 0.02134
hybrid_path_probe_rtt_seconds{path="lte"} 0
# TYPE hybrid_failover_steering gauge
hybrid_failover_steering{path="dsl"} ${steering === 'dsl' ? 1 : 0}
hybrid_failover_steering{path="lte"} ${steering === 'lte' ? 1 : 0}
`

test('readPathState: up/down, loss and probe RTT (ms, 1 decimal; 0 = no answer yet)', () => {
  assert.deepEqual(readPathState(STATE(1, 'dsl'), 'dsl'), { up: true, lossRatio: 0, probeRttMs: 21.3 })
  assert.deepEqual(readPathState(STATE(0, 'lte'), 'dsl'), { up: false, lossRatio: 0.6, probeRttMs: 21.3 })
  assert.deepEqual(readPathState(STATE(1, 'dsl'), 'lte'), { up: true, lossRatio: 0.05, probeRttMs: null })
})

test('readPathState: metrics missing (an older agent) read as unknown, not as down', () => {
  assert.deepEqual(readPathState('hybrid_path_bytes_total{path="dsl",direction="up"} 5\n', 'dsl'), { up: null, lossRatio: null, probeRttMs: null })
})

test('readSteering: the access marked 1; null when none is; undefined without the metric', () => {
  assert.equal(readSteering(STATE(1, 'dsl')), 'dsl')
  assert.equal(readSteering(STATE(0, 'lte')), 'lte')
  assert.equal(readSteering(STATE(0, 'none')), null)
  assert.equal(readSteering('hybrid_path_up{path="dsl"} 1\n'), undefined)
})

test('readPathMetrics carries path state and steering', () => {
  const r = readPathMetrics(STATE(0, 'lte'), 5)
  assert.equal(r.paths?.dsl.up, false)
  assert.equal(r.paths?.lte.up, true)
  assert.equal(r.steering, 'lte')
})

const UP: PathState = { up: true, lossRatio: 0, probeRttMs: 21.3 }
const DOWN: PathState = { up: false, lossRatio: 0.6, probeRttMs: 21.3 }
const NONE: PathState = { up: null, lossRatio: null, probeRttMs: null }

test('formatPathState: fixed widths, DOWN stands out, steering last', () => {
  assert.equal(formatPathState({ dsl: UP, lte: { up: true, lossRatio: 0.05, probeRttMs: null } }, 'dsl'),
    'dsl up     0%   21.3ms  lte up     5%        -  new→dsl')
  assert.equal(formatPathState({ dsl: DOWN, lte: UP }, 'lte'), 'dsl DOWN  60%   21.3ms  lte up     0%   21.3ms  new→lte')
  assert.equal(formatPathState({ dsl: DOWN, lte: DOWN }, null), 'dsl DOWN  60%   21.3ms  lte DOWN  60%   21.3ms  new→none')
  assert.equal(formatPathState({ dsl: NONE, lte: NONE }, undefined), 'dsl -       -        -  lte -       -        -')
  assert.equal(formatPathState({ dsl: UP, lte: UP }, 'dsl').length, formatPathState({ dsl: DOWN, lte: UP }, 'lte').length)
})

test('formatLiveLine: daemon modes append the path state after the subflows; mptcp mode unchanged', () => {
  const rates = { dsl: { upMbps: 10, downMbps: 50 }, lte: { upMbps: 0, downMbps: 40 } }
  const base = { direction: 'download', t: 3, goodputMbps: 85.04, subflows: 2, rates, rttMs: { dsl: 21.6, lte: null } }
  assert.equal(formatLiveLine(base), 'download    3     85.0 |     50.0   10.0   21.6 |     40.0    0.0      - | 2')
  const line = formatLiveLine({ ...base, paths: { dsl: DOWN, lte: UP }, steering: 'lte' })
  assert.equal(line,
    'download    3     85.0 |     50.0   10.0   21.6 |     40.0    0.0      - | 2        | dsl DOWN  60%   21.3ms  lte up     0%   21.3ms  new→lte')
  const header = formatLiveHeader(true).split('\n')[0]!
  assert.equal(header.lastIndexOf('|'), line.lastIndexOf('|'), 'the path-state column starts under its header')
  assert.ok(!formatLiveHeader().includes('path health'))
})
