/**
 * The lab's daemon modes end to end (issue #3 item 3), through the CLI's code path (`runDemo`):
 * one lab (prefix hat-ld-m-), and for socks5, convert and transparent in turn the concentrator in
 * hag and the CPE agent in cpe from dist/, a download and an upload by the flow client in lan
 * (plain TCP, intercepted by the CPE) to the flow server on inet, the live view from the CPE's
 * metrics API. Asserts the JSON summary's fields, goodput ≥ 80 % of the sum of the access rates in
 * both directions (the ≥ 90 % target is measured in quiet runs: docs/lab.md), two subflows (one per
 * access), and that the mode was really used (concentrator counters by mode, no MPTCP fallback).
 * Needs `npx tsc -b` first.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { e2eSkipReason } from '../../lab/netns.ts'
import { runDemo } from '../../lab/demo.ts'
import { DAEMON_MODES, type DaemonMode } from '../../lab/lab-daemons-config.ts'
import { getProfile } from '../../lab/link-profile.ts'
import { startModeSession } from '../../lab/mode-runners.ts'
import type { LabSummary } from '../../lab/summary.ts'
import { buildLab, type Lab } from '../../lab/topology.ts'

const PREFIX = 'hat-ld-m-'
const SECONDS = 5
const MIN_RATIO = 0.8
const skip = e2eSkipReason()
const profiles = { dsl: getProfile('vdsl'), lte: getProfile('lte') }

function checkSummary (s: LabSummary, mode: DaemonMode): string[] {
  const report: string[] = []
  assert.equal(s.mode, mode)
  assert.deepEqual(s.transfers.map((t) => t.direction), ['download', 'upload'])
  for (const t of s.transfers) {
    const where = `${mode} ${t.direction}`
    assert.equal(t.mode, mode)
    assert.ok(t.seconds >= SECONDS * 0.9 && t.seconds < SECONDS * 3, `${where}: seconds ${t.seconds}`)
    assert.equal(t.sumOfAccessRatesMbps, t.direction === 'download' ? 90 : 25)
    assert.deepEqual(t.accesses.map((a) => [a.name, a.rateMbps]), t.direction === 'download' ? [['dsl', 50], ['lte', 40]] : [['dsl', 10], ['lte', 15]])
    for (const a of t.accesses) {
      assert.ok(a.measuredMbps > a.rateMbps * 0.3 && a.measuredMbps <= a.rateMbps * 1.1, `${where} ${a.name}: measured ${a.measuredMbps} of ${a.rateMbps}`)
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

describe('lab daemon modes (npm run lab -- --mode …)', { skip: skip ?? false, concurrency: false, timeout: 600_000 }, () => {
  const holder: { lab?: Lab } = {}
  before(async () => { holder.lab = await buildLab({ prefix: PREFIX, profiles }) })
  after(async () => { await holder.lab?.teardown() })

  for (const mode of DAEMON_MODES) {
    test(`--mode ${mode}: summary fields, ≥ ${MIN_RATIO * 100} % of the access rates both ways, two subflows`, async (t) => {
      const lab = holder.lab
      assert.ok(lab)
      const session = await startModeSession(lab, mode)
      try {
        const live: string[] = []
        const summary = await runDemo(lab, { mode, seconds: SECONDS, live: (l) => { live.push(l) }, session })
        assert.ok(live.some((l) => /^download +\d/.test(l)) && live.some((l) => /^upload +\d/.test(l)), live.join('\n'))
        // The JSON the CLI prints: the same object without the session.
        const { session: _s, ...json } = summary
        const parsed = JSON.parse(JSON.stringify(json)) as LabSummary
        const report = (() => {
          try { return checkSummary(parsed, mode) } finally { t.diagnostic(JSON.stringify(parsed.transfers.map((x) => [x.direction, x.goodputMbps, x.ratio, x.steadyRatio, x.subflows]))) }
        })()
        for (const r of report) t.diagnostic(r)
        // The mode really carried it: the concentrator accepted connections in this mode, nothing fell back.
        assert.ok(await session.concentrator.metric('hybrid_connections_accepted_total', { mode }) >= 1, `${mode} accepted`)
        assert.equal(await session.cpe.metric('hybrid_mptcp_fallbacks_total'), 0, session.logTail('cpe'))
      } finally {
        await session.stop()
      }
    })
  }
})
