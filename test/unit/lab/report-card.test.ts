import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildReportCard, formatReportCard, type ModeResult } from '../../../lab/report-card.ts'
import type { AccessSummary, TransferSummary } from '../../../lab/summary.ts'
import type { FlowDirection } from '../../../lab/flow-protocol.ts'

const access = (name: 'dsl' | 'lte', profile: string, rateMbps: number,
  rttMs: number | null): AccessSummary => ({ name, profile, rateMbps, measuredMbps: rateMbps * 0.9, rttMs })

function transfer (mode: string, direction: FlowDirection, goodputMbps: number, subflowAccesses: string[] = ['dsl', 'lte']): TransferSummary {
  const down = direction === 'download'
  const sum = down ? 90 : 25
  return {
    mode,
    direction,
    seconds: 5,
    goodputMbps,
    steadyMbps: goodputMbps,
    sumOfAccessRatesMbps: sum,
    ratio: Math.round((goodputMbps / sum) * 1000) / 1000,
    steadyRatio: null,
    subflows: subflowAccesses.length,
    subflowAccesses,
    accesses: down ? [access('dsl', 'vdsl', 50, 20.4), access('lte', 'lte', 40, 61)] : [access('dsl', 'vdsl', 10, 22), access('lte', 'lte', 15, 58)]
  }
}

function result (mode: string, down: number, up: number, ttfbMs?: number, upAccesses?: string[]): ModeResult {
  const summary = { prefix: 'ha-', mode, transfers: [transfer(mode, 'download', down), transfer(mode, 'upload', up, upAccesses)] }
  return ttfbMs === undefined ? { mode, summary } : { mode, summary, ttfb: { samplesMs: [ttfbMs, ttfbMs + 1, ttfbMs - 1], medianMs: ttfbMs } }
}

test('report card: shares of the access sum and of kernel MPTCP, TTFB against direct, subflow accesses', () => {
  const card = buildReportCard({
    prefix: 'ha-',
    seconds: 5,
    directTtfb: { samplesMs: [41, 42, 41.8], medianMs: 41.8 },
    results: [result('mptcp', 80, 22.5), result('socks5', 79.2, 22.96, 44.8), result('convert', 84, 20, 43.3, ['dsl'])]
  })
  assert.deepEqual(card.accesses, [
    { name: 'dsl', profile: 'vdsl', downMbps: 50, upMbps: 10, rttMs: 20.4 },
    { name: 'lte', profile: 'lte', downMbps: 40, upMbps: 15, rttMs: 61 }
  ])
  const [kernel, socks5, convert] = card.rows
  assert.ok(kernel !== undefined && socks5 !== undefined && convert !== undefined)
  assert.equal(kernel.label, 'kernel MPTCP')
  assert.equal(kernel.download?.ofKernel, 1)
  assert.equal(kernel.ttfbMs, null)
  assert.equal(kernel.ttfbVsDirectMs, null)
  assert.equal(socks5.download?.ofAccessSum, 0.88)
  assert.equal(socks5.download?.ofKernel, 0.99)
  assert.equal(socks5.upload?.ofKernel, 1.02)
  assert.equal(socks5.ttfbMs, 44.8)
  assert.equal(socks5.ttfbVsDirectMs, 3)
  assert.equal(socks5.ttfbSamples, 3)
  assert.equal(convert.ttfbVsDirectMs, 1.5)
  assert.deepEqual(convert.upload?.subflowAccesses, ['dsl'])
  // JSON round trip: the card is plain data (what --json prints).
  assert.deepEqual(JSON.parse(JSON.stringify(card)), card)

  const text = formatReportCard(card)
  const lines = text.split('\n')
  assert.match(lines[0]!, /^Report card \(lab ha-\*, 5 s per transfer/)
  assert.match(lines[1]!, /dsl \(vdsl 50\/10 Mbit\/s, RTT 20 ms\) \+ lte \(lte 40\/15 Mbit\/s, RTT 61 ms\) = 90 Mbit\/s down, 25 up/)
  const row = (label: string): string => lines.find((l) => l.startsWith(label + ' ')) ?? assert.fail(`no row ${label}\n${text}`)
  assert.match(row('kernel MPTCP'), /^kernel MPTCP +80\.0 +88\.9 +100\.0 +22\.5 +90\.0 +100\.0 +- +- +2 \(dsl\+lte\)$/)
  assert.match(row('socks5'), /^socks5 +79\.2 +88\.0 +99\.0 +23\.0 +91\.8 +102\.0 +44\.8 +\+3\.0 +2 \(dsl\+lte\)$/)
  // Different subflow accesses per direction are both shown.
  assert.match(row('convert'), /2 \(dsl\+lte\) \/ 1 \(dsl\)$/)
  assert.match(text, /direct TCP over DSL, no agent: TTFB 41\.8 ms \(median of 3\)/)
  assert.doesNotMatch(text, /DSL blackhole \(5 s\) +stall/, 'no failover table without failover runs')
  // Columns line up: every row is as long as the header up to the subflow column.
  const header = lines.find((l) => l.startsWith('mode '))!
  const col = header.indexOf('subflows')
  for (const label of ['kernel MPTCP', 'socks5', 'convert']) assert.equal(row(label).indexOf(' 2 ('), col - 1, label)
})

test('report card without a kernel row or TTFB: shares of kernel are unknown, nothing throws', () => {
  const card = buildReportCard({
    prefix: 'hat-x-',
    seconds: 3,
    directTtfb: { samplesMs: [], medianMs: null },
    results: [result('transparent', 70, 20, 50)]
  })
  assert.equal(card.rows[0]!.download?.ofKernel, null)
  assert.equal(card.rows[0]!.ttfbVsDirectMs, null)
  assert.match(formatReportCard(card), /^transparent +70\.0 +77\.8 +- +20\.0 +80\.0 +- +50\.0 +- /m)
})

test('report card: the DSL blackhole row per daemon mode', () => {
  const fault = (stall: number | null, ok: number, back: number | null): NonNullable<ModeResult['failover']> => ({
    mode: 'socks5',
    fault: 'dsl-blackhole',
    faultMs: 5000,
    baselineStallMs: 20,
    stallDuringMs: stall,
    stallDuringAtMs: 10,
    stallAfterMs: 120,
    stallAfterAtMs: 300,
    reset: false,
    transferMbytes: 50,
    during: { count: 25, ok, ratio: ok / 25, medianTtfbMs: 101.6 },
    after: { count: 50, ok: 50, ratio: 1, medianTtfbMs: 45 },
    minSubflowsFaulted: 0,
    subflowsBackMs: back,
    shareBefore: 0.55,
    bulkBackMs: 900,
    observedAfterMs: 10_000,
    mptcpBlackholes: 0
  })
  const card = buildReportCard({
    prefix: 'ha-',
    seconds: 5,
    directTtfb: { samplesMs: [41], medianMs: 41 },
    results: [result('mptcp', 80, 22.5), { ...result('socks5', 79, 22, 44), failover: fault(280, 25, 410) },
      { ...result('convert', 78, 22, 45), failover: fault(null, 24, null) }]
  })
  assert.equal(card.rows[0]?.failover, null, 'kernel row: no failover run')
  assert.deepEqual(card.rows[1]?.failover,
    { stallMs: 280, backStallMs: 120, reset: false, newOk: 25, newCount: 25, newTtfbMs: 101.6, subflowsBackMs: 410, bulkBackMs: 900 })
  const text = formatReportCard(card)
  assert.match(text, /^DSL blackhole \(5 s\) +stall ms +back stall +reset +new conns ok +ttfb ms +both back ms +DSL bulk back ms$/m)
  assert.match(text, /^socks5 +280 +120 +no +25\/25 +102 +410 +900$/m)
  assert.match(text, /^convert +never +120 +no +24\/25 +102 +never +900$/m)
  assert.deepEqual(JSON.parse(JSON.stringify(card)), card)
})
