/**
 * Failover in all three modes (resilience item 8): the failover scenario's run
 * (`runFailoverScenario`, lab/scenario-run.ts) for socks5, convert and transparent with a 5 s DSL
 * blackhole and a 5 s DSL carrier loss, on one lab (prefix hat-fm-), daemons from dist/ with the
 * lab's health and failover profile. Asserts the product's behaviour with margins for a noisy
 * 2-core machine; the figures themselves (the targets: stall ≤ 300 ms, failback ≤ 1.5 s) are
 * measured by `npm run lab -- --scenario failover` and reported in docs/failover.md.
 * - the running download is never reset, and its longest stall during the fault stays far below
 *   the kernel-only figure (a blackholed subflow without failover stalls for seconds);
 * - new connections during the fault: at least 90 % succeed (100 % is the target; a connection
 *   whose SYN left inside the detection window is re-dialled once, docs/failover.md);
 * - after the fault every new connection succeeds, both accesses carry subflows of the running
 *   download again within 3 s and DSL carries its share again within 5 s;
 * - the kernel never disabled MPTCP (MPTcpExtBlackhole 0).
 * That the dead access's subflow really leaves the running connection on both ends is asserted by
 * mptcp-withdraw.e2e.test.ts (the scenario's subflow counts are the CPE's 1 s gauge over all
 * connections, too coarse for it).
 * Needs `npx tsc -b` first.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { e2eSkipReason } from '../../lab/netns.ts'
import { getProfile } from '../../lab/link-profile.ts'
import { FAULTS, formatScenarioReport, type FaultResult, type ScenarioReport } from '../../lab/scenario-failover.ts'
import { runFailoverScenario } from '../../lab/scenario-run.ts'
import { buildLab, type Lab } from '../../lab/topology.ts'

const PREFIX = 'hat-fm-'
const skip = e2eSkipReason()
const MODES = ['socks5', 'convert', 'transparent'] as const
const faults = FAULTS.filter((f) => f.name === 'dsl-blackhole' || f.name === 'dsl-carrier')

/** Bounds with margin (the targets are tighter; see the header). */
const STALL_BOUND_MS = 1500
const SUBFLOWS_BACK_BOUND_MS = 3000
const BULK_BACK_BOUND_MS = 5000

function checkResult (r: FaultResult): void {
  const where = `${r.mode} ${r.fault}`
  assert.equal(r.reset, false, `${where}: the running download was reset`)
  assert.ok(r.stallDuringMs !== null && r.stallDuringMs <= STALL_BOUND_MS, `${where}: stall during the fault ${String(r.stallDuringMs)} ms`)
  assert.ok(r.stallAfterMs === null || r.stallAfterMs <= STALL_BOUND_MS, `${where}: stall on the way back ${String(r.stallAfterMs)} ms`)
  assert.ok(r.during.count > 0 && r.during.ok >= 0.9 * r.during.count, `${where}: new connections during the fault ${r.during.ok}/${r.during.count}`)
  assert.equal(r.after.ok, r.after.count, `${where}: new connections after the fault ${r.after.ok}/${r.after.count}`)
  assert.ok(r.subflowsBackMs !== null && r.subflowsBackMs <= SUBFLOWS_BACK_BOUND_MS,
    `${where}: subflows on both accesses after ${String(r.subflowsBackMs)} ms`)
  assert.ok(r.bulkBackMs !== null && r.bulkBackMs <= BULK_BACK_BOUND_MS, `${where}: DSL carries its share after ${String(r.bulkBackMs)} ms`)
  assert.equal(r.mptcpBlackholes, 0, `${where}: the kernel's MPTCP blackhole detection fired`)
}

describe('failover in socks5, convert and transparent mode', { skip: skip ?? false, concurrency: false, timeout: 600_000 }, () => {
  const holder: { lab?: Lab, report?: ScenarioReport } = {}
  before(async () => {
    holder.lab = await buildLab({ prefix: PREFIX, profiles: { dsl: getProfile('vdsl'), lte: getProfile('lte') } })
    holder.report = await runFailoverScenario(holder.lab, { modes: [...MODES], faults, log: () => {} })
  })
  after(async () => { await holder.lab?.teardown() })

  for (const mode of MODES) {
    test(`${mode}: DSL blackhole and carrier loss`, (t) => {
      const results = holder.report!.results.filter((r) => r.mode === mode)
      t.diagnostic('\n' + formatScenarioReport({ ...holder.report!, results }))
      assert.deepEqual(results.map((r) => r.fault), faults.map((f) => f.name))
      for (const r of results) checkResult(r)
    })
  }
})
