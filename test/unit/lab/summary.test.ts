import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ADDRESS_PLAN } from '../../../lab/addresses.ts'
import type { AccessProfile } from '../../../lab/link-profile.ts'
import { formatAccessGuide, formatSummary, labDownCommand, median, summarizeTransfer } from '../../../lab/summary.ts'
import { formatLiveHeader, formatLiveLine, ratesBetween } from '../../../lab/live-view.ts'

const dir = (rateMbit: number): AccessProfile['up'] => ({ rateMbit, delayMs: 10, jitterMs: 0, lossPct: 0 })
const vdsl: AccessProfile = { name: 'vdsl', down: dir(50), up: dir(10) }
const lte: AccessProfile = { name: 'lte', down: dir(40), up: dir(15) }

test('summary uses the profile rate of the transfer direction and the median RTT', () => {
  const s = summarizeTransfer({
    mode: 'mptcp',
    direction: 'upload',
    result: { seconds: 8, goodputMbps: 23, steadyMbps: 24, subflows: 2, accesses: ['dsl', 'lte'] },
    measuredMs: 8000,
    accesses: [
      { name: 'dsl', profile: vdsl, bytes: 10_000_000, rttSamplesMs: [30, 50, 40] },
      { name: 'lte', profile: lte, bytes: 15_000_000, rttSamplesMs: [] }
    ]
  })
  assert.equal(s.sumOfAccessRatesMbps, 25)
  assert.equal(s.ratio, 0.92)
  assert.equal(s.steadyRatio, 0.96)
  assert.deepEqual(s.accesses.map((a) => [a.name, a.profile, a.rateMbps, a.measuredMbps, a.rttMs]),
    [['dsl', 'vdsl', 10, 10, 40], ['lte', 'lte', 15, 15, null]])
  const text = formatSummary({ prefix: 'ha-', mode: 'mptcp', transfers: [s] })
  assert.match(text, /upload: 23\.0 Mbit\/s goodput over 8\.0 s = 92\.0 % of 25\.0 Mbit\/s/)
  assert.match(text, /2 subflows \[dsl, lte\]/)
})

test('an unshaped access has no ratio', () => {
  const ideal: AccessProfile = { name: 'ideal', down: dir(0), up: dir(0) }
  const s = summarizeTransfer({
    mode: 'mptcp',
    direction: 'download',
    result: { seconds: 1, goodputMbps: 900, steadyMbps: 900, subflows: 1, accesses: ['dsl'] },
    measuredMs: 1000,
    accesses: [{ name: 'dsl', profile: ideal, bytes: 1, rttSamplesMs: [] }, { name: 'lte', profile: lte, bytes: 1, rttSamplesMs: [] }]
  })
  assert.equal(s.ratio, null)
  assert.match(formatSummary({ prefix: 'ha-', mode: 'mptcp', transfers: [s] }), /= n\/a of/)
})

test('median', () => {
  assert.equal(median([]), null)
  assert.equal(median([3, 1, 2]), 2)
  assert.equal(median([4, 1, 2, 3]), 2.5)
})

test('live view: rates from counter snapshots, aligned columns', () => {
  const a = { dsl: { up: 0, down: 0 }, lte: { up: 0, down: 0 } }
  const b = { dsl: { up: 1_250_000, down: 6_250_000 }, lte: { up: 0, down: 5_000_000 } }
  const r = ratesBetween(a, b, 1000)
  assert.deepEqual(r, { dsl: { upMbps: 10, downMbps: 50 }, lte: { upMbps: 0, downMbps: 40 } })
  assert.deepEqual(ratesBetween(a, b, 0).dsl, { upMbps: 0, downMbps: 0 })
  const line = formatLiveLine({ direction: 'download', t: 3, goodputMbps: 85.04, subflows: 2, rates: r, rttMs: { dsl: 21.6, lte: null } })
  assert.equal(line, 'download    3     85.0 |     50.0   10.0   21.6 |     40.0    0.0      - | 2')
  const header = formatLiveHeader().split('\n')[0]!
  assert.equal(header.indexOf('|'), line.indexOf('|'))
})

test('access guide names every namespace, the servers and lab:down', () => {
  const g = formatAccessGuide('ha-', ADDRESS_PLAN)
  for (const ns of ['ha-lan', 'ha-cpe', 'ha-dsl', 'ha-lte', 'ha-hag', 'ha-inet']) assert.ok(g.includes(ns), ns)
  assert.ok(g.includes('ip netns exec ha-lan curl -o /dev/null http://203.0.113.10/10M'))
  assert.ok(g.includes('[2001:db8:ee::10]'))
  assert.ok(g.includes('npm run lab:down'))
})

test('the guide\'s lab:down command carries a non-default --prefix (it printed the bare command, which removes ha-… only)', () => {
  assert.equal(labDownCommand('ha-'), 'npm run lab:down')
  assert.equal(labDownCommand('hat-me-'), 'npm run lab:down -- --prefix hat-me-')
  assert.ok(formatAccessGuide('hat-me-', ADDRESS_PLAN).includes('Remove everything: npm run lab:down -- --prefix hat-me-'))
})
