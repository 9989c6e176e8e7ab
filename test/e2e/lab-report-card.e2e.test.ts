/**
 * `npm run lab` with no options (issue 12): the report card through the CLI's code path
 * (`runTour`) on one lab (prefix hat-ld-m-): direct TCP's TTFB, kernel MPTCP alone, then socks5,
 * convert and transparent through the concentrator in hag and the CPE agent in cpe from dist/, a
 * download and an upload by the flow client in lan (plain TCP, intercepted by the CPE) to the flow
 * server on inet, and the TTFB of a LAN fetch through the agent. Asserts per mode the summary's
 * fields, goodput ≥ 80 % of the sum of the access rates both ways (the ≥ 90 % target is measured in
 * quiet runs: docs/lab.md), two subflows (one per access), that the mode was really used
 * (concentrator counters by mode, no MPTCP fallback), TTFB less than one DSL round trip above
 * direct TCP; on the card every mode at ≥ 85 % of kernel MPTCP; per mode a 5 s DSL blackhole
 * (no reset, ≥ 90 % of new connections ok, both accesses back); and that no log folder is left.
 * Needs `npx tsc -b` first.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { e2eSkipReason } from '../../lab/netns.ts'
import { DAEMON_MODES, type DaemonMode } from '../../lab/lab-daemons-config.ts'
import { getProfile } from '../../lab/link-profile.ts'
import { formatReportCard } from '../../lab/report-card.ts'
import type { LabSummary } from '../../lab/summary.ts'
import { buildLab, type Lab } from '../../lab/topology.ts'
import { runTour, TOUR_MODES, type TourResult } from '../../lab/tour.ts'

const PREFIX = 'hat-ld-m-'
const SECONDS = 5
const MIN_RATIO = 0.8
const MIN_OF_KERNEL = 0.85
const skip = e2eSkipReason()
const profiles = { dsl: getProfile('vdsl'), lte: getProfile('lte') }
const DSL_RTT_MS = profiles.dsl.down.delayMs + profiles.dsl.up.delayMs

function checkSummary (s: LabSummary, mode: DaemonMode): string[] {
  const report: string[] = []
  assert.equal(s.mode, mode)
  assert.deepEqual(s.transfers.map((t) => t.direction), ['download', 'upload'])
  for (const t of s.transfers) {
    const where = `${mode} ${t.direction}`
    assert.equal(t.mode, mode)
    assert.ok(t.seconds >= SECONDS * 0.9 && t.seconds < SECONDS * 3, `${where}: seconds ${t.seconds}`)
    assert.equal(t.sumOfAccessRatesMbps, t.direction === 'download' ? 90 : 25)
    assert.deepEqual(t.accesses.map((a) => [a.name, a.rateMbps]),
      t.direction === 'download' ? [['dsl', 50], ['lte', 40]] : [['dsl', 10], ['lte', 15]])
    for (const a of t.accesses) {
      assert.ok(a.measuredMbps > a.rateMbps * 0.3 && a.measuredMbps <= a.rateMbps * 1.1,
        `${where} ${a.name}: measured ${a.measuredMbps} of ${a.rateMbps}`)
      assert.ok(a.rttMs !== null && a.rttMs > 5 && a.rttMs < 1000, `${where} ${a.name}: rtt ${String(a.rttMs)}`)
    }
    assert.equal(t.subflows, 2, `${where}: subflows`)
    assert.deepEqual(t.subflowAccesses, ['dsl', 'lte'])
    assert.ok(t.ratio !== null && t.goodputMbps > 0)
    report.push(`${where}: ${t.goodputMbps} Mbit/s = ${(t.ratio * 100).toFixed(1)} % of ${t.sumOfAccessRatesMbps} (steady ${t.steadyMbps} = ${((t.steadyRatio ?? 0) * 100).toFixed(1)} %), ` +
      `measured dsl ${t.accesses[0]!.measuredMbps} lte ${t.accesses[1]!.measuredMbps}, rtt ${t.accesses[0]!.rttMs}/${t.accesses[1]!.rttMs} ms`)
    assert.ok(t.ratio >= MIN_RATIO, `${where}: goodput ${t.goodputMbps} Mbit/s = ${(t.ratio * 100).toFixed(1)} % < ${MIN_RATIO * 100} %`)
  }
  return report
}

describe('npm run lab: the report card over every mode', { skip: skip ?? false, concurrency: false, timeout: 600_000 }, () => {
  const holder: { lab?: Lab, tour?: TourResult } = {}
  const used: Array<{ mode: string, accepted: number, fallbacks: number, log: string }> = []
  before(async () => {
    holder.lab = await buildLab({ prefix: PREFIX, profiles })
    const live: string[] = []
    holder.tour = await runTour(holder.lab, {
      seconds: SECONDS,
      live: (l) => { live.push(l) },
      log: () => {},
      onModeDone: async (session) => {
        used.push({
          mode: session.mode,
          accepted: await session.concentrator.metric('hybrid_connections_accepted_total', { mode: session.mode }),
          fallbacks: await session.cpe.metric('hybrid_mptcp_fallbacks_total'),
          log: session.logTail('cpe')
        })
      }
    })
    assert.ok(live.some((l) => /^download +\d/.test(l)) && live.some((l) => /^upload +\d/.test(l)), live.join('\n'))
  })
  after(async () => { await holder.lab?.teardown() })
  const tour = (): TourResult => { assert.ok(holder.tour); return holder.tour }

  test('the card has kernel MPTCP and the three modes, in order', (t) => {
    for (const line of formatReportCard(tour().card).trimEnd().split('\n')) t.diagnostic(line)
    assert.deepEqual(tour().card.rows.map((r) => r.mode), [...TOUR_MODES])
    assert.equal(tour().card.rows.find((r) => r.mode === 'mptcp')?.failover, null)
    assert.equal(tour().session, undefined)
    const d = tour().card.directTtfbMs
    assert.ok(d !== null && d > DSL_RTT_MS && d < DSL_RTT_MS * 4, `direct TTFB ${String(d)} ms`)
  })

  for (const mode of DAEMON_MODES) {
    test(`${mode}: summary fields, ≥ ${MIN_RATIO * 100} % of the access rates and ≥ ${MIN_OF_KERNEL * 100} % of kernel MPTCP both ways, two subflows, TTFB within one DSL RTT of direct`, (t) => {
      const result = tour().results.find((r) => r.mode === mode)
      assert.ok(result)
      const parsed = JSON.parse(JSON.stringify(result.summary)) as LabSummary
      const report = (() => {
        try {
          return checkSummary(parsed,
            mode)
        } finally {
          t.diagnostic(JSON.stringify(parsed.transfers.map((x) => [x.direction, x.goodputMbps, x.ratio, x.steadyRatio,
            x.subflows])))
        }
      })()
      for (const r of report) t.diagnostic(r)
      const row = tour().card.rows.find((r) => r.mode === mode)
      assert.ok(row?.download && row.upload)
      t.diagnostic(`${mode}: ${(row.download.ofKernel ?? 0) * 100} % / ${(row.upload.ofKernel ?? 0) * 100} % of kernel MPTCP, TTFB ${String(row.ttfbMs)} ms (${String(row.ttfbVsDirectMs)} vs direct)`)
      assert.ok((row.download.ofKernel ?? 0) >= MIN_OF_KERNEL && (row.upload.ofKernel ?? 0) >= MIN_OF_KERNEL, `${mode} of kernel`)
      assert.equal(row.ttfbSamples, 11)
      assert.ok(row.ttfbVsDirectMs !== null && row.ttfbVsDirectMs < DSL_RTT_MS,
        `${mode}: TTFB ${String(row.ttfbMs)} ms vs direct ${String(tour().card.directTtfbMs)} ms`)
      // The mode really carried it: the concentrator accepted connections in this mode, nothing fell back.
      const u = used.find((x) => x.mode === mode)
      assert.ok(u !== undefined && u.accepted >= 1, `${mode} accepted`)
      assert.equal(u.fallbacks, 0, u.log)
      // The 5 s DSL blackhole: the running download survives, new connections go over LTE.
      const f = row.failover
      assert.ok(f !== null, `${mode}: no failover figures`)
      t.diagnostic(`${mode} DSL blackhole: ${JSON.stringify(f)}`)
      assert.equal(f.reset, false, `${mode}: download reset by the blackhole`)
      assert.ok(f.stallMs !== null && f.stallMs < 2000, `${mode}: stall ${String(f.stallMs)} ms`)
      assert.ok(f.newCount > 0 && f.newOk >= 0.9 * f.newCount, `${mode}: new connections during the blackhole ${f.newOk}/${f.newCount}`)
      assert.ok(f.subflowsBackMs !== null, `${mode}: both accesses never carried subflows again`)
    })
  }

  test('a successful run leaves no log folder behind', () => {
    const left = readdirSync(tmpdir()).filter((n) => n.startsWith(PREFIX))
    assert.deepEqual(left, [])
  })
})
