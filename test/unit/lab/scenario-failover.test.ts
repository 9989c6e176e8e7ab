import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseLabArgs } from '../../../lab/cli.ts'
import {
  analyseFault, bothSubflowsAfter, FAULTS, faultMs, fetchFigures, formatScenarioReport, longestGap, meanShare, minSubflows, netstatCounter,
  parseScenarioSelection, plannedSeconds, SCENARIO_TIMING, shareBackAfter, shareWindows, type BytesSample, type FaultRecord
} from '../../../lab/scenario-failover.ts'

test('selection: defaults to every mode and fault; lists choose a subset in the canonical fault order; unknown names are errors', () => {
  const all = parseScenarioSelection(undefined, undefined)
  assert.ok(!('error' in all))
  assert.deepEqual(all.modes, ['socks5', 'convert', 'transparent', 'mptcp'])
  assert.deepEqual(all.faults.map((f) => f.name), ['dsl-blackhole', 'dsl-carrier', 'lte-loss', 'dsl-flap'])
  const sub = parseScenarioSelection('socks5, mptcp', 'dsl-flap,dsl-blackhole')
  assert.ok(!('error' in sub))
  assert.deepEqual(sub.modes, ['socks5', 'mptcp'])
  assert.deepEqual(sub.faults.map((f) => f.name), ['dsl-blackhole', 'dsl-flap'])
  for (const [m, f] of [['gre', undefined], [undefined, 'meteor'], ['', undefined]] as const) {
    const r = parseScenarioSelection(m, f)
    assert.ok('error' in r, `${String(m)} ${String(f)}`)
  }
  // Bounded: one mode with every fault well under 3 min.
  assert.ok(plannedSeconds({ modes: ['socks5'], faults: FAULTS }) < 180)
  assert.equal(faultMs(FAULTS.find((f) => f.name === 'dsl-flap')!), 1500)
})

test('CLI: --scenario failover with --modes/--faults; those need --scenario', () => {
  const r = parseLabArgs(['--scenario', 'failover', '--modes', 'convert', '--faults', 'lte-loss', '--prefix', 'hat-sc-'])
  assert.ok(typeof r === 'object' && !('error' in r) && r.scenario !== undefined)
  assert.deepEqual(r.scenario.modes, ['convert'])
  assert.deepEqual(r.scenario.faults.map((f) => f.name), ['lte-loss'])
  for (const argv of [['--modes', 'socks5'], ['--scenario', 'storm'], ['--scenario', 'failover', '--faults', 'x']]) {
    const e = parseLabArgs(argv)
    assert.ok(typeof e === 'object' && 'error' in e, argv.join(' '))
  }
  assert.equal((parseLabArgs([]) as { scenario?: unknown }).scenario, undefined)
})

test('longestGap: gaps that begin in the interval, measured to the next arrival; an open end runs to the limit', () => {
  const a = { t: [0, 10, 20, 520, 530, 1530, 1540], b: [1, 1, 1, 1, 1, 1, 1] }
  assert.deepEqual(longestGap(a, 0, 2000), { ms: 1000, startMs: 530 })
  assert.deepEqual(longestGap(a, 0, 500), { ms: 500, startMs: 20 }, 'the gap begun at 20 counts in full')
  assert.deepEqual(longestGap(a, 600, 2000, 3000), { ms: 1460, startMs: 940 }, 'after the last arrival the gap runs to the limit')
  assert.equal(longestGap(a, 2000, 3000), null)
  assert.equal(longestGap({ t: [], b: [] }, 0, 10), null)
})

const bytes = (rows: Array<[number, number, number]>): BytesSample[] => rows.map(([at, dsl, lte]) => ({ at, dsl, lte }))

test('shares per window, mean share and the time until an access carries its share again', () => {
  // DSL carries 3/4 until t=300, nothing in 300..600, then 3/4 again.
  const s = bytes([[0, 0, 0], [100, 75, 25], [200, 150, 50], [300, 225, 75], [400, 225, 175], [500, 225, 275], [600, 225, 375], [700, 300, 400],
    [800, 375, 425], [900, 450, 450], [1000, 525, 475]])
  assert.deepEqual(shareWindows(s, 'dsl').slice(0, 4).map((w) => w.share), [0.75, 0.75, 0.75, 0])
  assert.equal(meanShare(s, 'dsl', 0, 300), 0.75)
  assert.equal(meanShare(s, 'dsl', 0, 50), null)
  assert.equal(shareBackAfter(s, 'dsl', 350, 0.375), 350, 'window ending at 700 is the first of three at >= 0.375')
  assert.equal(shareBackAfter(s, 'dsl', 350, 0.9), null)
  assert.deepEqual(shareWindows(bytes([[0, 5, 5], [100, 5, 5]]), 'dsl')[0], { at: 100, share: null, bytes: 0 })
})

test('subflows: both accesses back, fewest on an access', () => {
  const sf = [{ at: 0, dsl: 1, lte: 1 }, { at: 100, dsl: 0, lte: 1 }, { at: 200, dsl: 0, lte: 1 }, { at: 300, dsl: 1, lte: 1 }]
  assert.equal(bothSubflowsAfter(sf, 150), 150)
  assert.equal(bothSubflowsAfter(sf, 301), null)
  assert.equal(minSubflows(sf, 'dsl', 50, 250), 0)
  assert.equal(minSubflows(sf, 'dsl', 400, 500), null)
})

test('fetch figures: count, success ratio and median TTFB of the fetches begun in the interval', () => {
  const f = [{ at: 0, ok: true, ttfbMs: 10 }, { at: 200, ok: false, ttfbMs: null }, { at: 400, ok: true, ttfbMs: 30 },
    { at: 600, ok: true, ttfbMs: 20 }, { at: 800, ok: true, ttfbMs: 40 }]
  assert.deepEqual(fetchFigures(f, 0, 1000), { count: 5, ok: 4, ratio: 0.8, medianTtfbMs: 25 })
  assert.deepEqual(fetchFigures(f, 150, 500), { count: 2, ok: 1, ratio: 0.5, medianTtfbMs: 30 })
  assert.deepEqual(fetchFigures(f, 2000, 3000), { count: 0, ok: 0, ratio: null, medianTtfbMs: null })
})

test('analyseFault and the table: a 5 s DSL blackhole that stalls the download 800 ms and 1.2 s on failback', () => {
  const fault = FAULTS[0]!
  const T0 = 1_000_000
  const t: number[] = []
  for (let x = T0; x < T0 + 18_000; x += 5) {
    const rel = x - T0
    if ((rel > 3000 && rel < 3800) || (rel > 9000 && rel < 10_200)) continue
    t.push(x)
  }
  const samples: BytesSample[] = []
  let dsl = 0; let lte = 0
  for (let x = T0; x <= T0 + 18_000; x += 100) {
    const rel = x - T0
    const dslOn = rel <= 3000 || rel >= 10_200
    dsl += dslOn ? 600 : 0; lte += dslOn ? 400 : 500
    samples.push({ at: x, dsl, lte })
  }
  const rec: FaultRecord = {
    fault,
    mode: 'socks5',
    t: { start: T0, faultStart: T0 + 3000, faultEnd: T0 + 8000, end: T0 + 18_000 },
    arrivals: { t, b: t.map(() => 1000) },
    end: { at: T0 + 18_000, complete: true, reset: false, bytes: t.length * 1000 },
    bytes: samples,
    subflows: [{ at: T0 + 4000, dsl: 1, lte: 1 }, { at: T0 + 8500, dsl: 1, lte: 1 }],
    subflowSource: 'cpe-metrics',
    fetches: [{ at: T0 + 4000, ok: false, ttfbMs: null }, { at: T0 + 9000, ok: true, ttfbMs: 40 }],
    mptcpBlackholes: 1
  }
  const r = analyseFault(rec)
  assert.equal(r.stallDuringMs, 800)
  assert.equal(r.stallDuringAtMs, 0)
  assert.equal(r.stallAfterMs, 1200)
  assert.equal(r.stallAfterAtMs, 1000)
  assert.equal(r.baselineStallMs, 5)
  assert.equal(r.reset, false)
  assert.deepEqual([r.during.ok, r.during.count, r.after.ok, r.after.count], [0, 1, 1, 1])
  assert.equal(r.subflowsBackMs, 500)
  assert.equal(r.minSubflowsFaulted, 1)
  assert.equal(r.shareBefore, 0.6)
  assert.equal(r.bulkBackMs, 2200)
  assert.equal(r.observedAfterMs, 10_000)
  const text = formatScenarioReport({
    scenario: 'failover',
    prefix: 'hat-x-',
    profiles: { dsl: 'vdsl', lte: 'lte' },
    timing: SCENARIO_TIMING,
    results: [r, { ...r, reset: true, bulkBackMs: null }],
    totalSeconds: 20
  })
  const lines = text.split('\n')
  assert.match(lines[0]!, /20 s in all/)
  assert.match(lines[2]!, /mode\s+fault\s+stall\s+back stall/)
  assert.match(lines[3]!, /socks5\s+dsl-blackhole\s+800\s+1200\s+1000\s+no\s+0\/1\s+-\s+1\/1\s+40\s+1\s+500\s+2200\s+5\s+1/)
  assert.match(lines[4]!, /RESET.*never/)
  // A reset transfer: the open gap runs to the end of the observation.
  const cut = analyseFault({
    ...rec,
    arrivals: { t: t.filter((x) => x < T0 + 5000), b: [] },
    end: { at: T0 + 5000, complete: false, reset: true, bytes: 0 }
  })
  assert.equal(cut.reset, true)
  assert.ok(cut.stallDuringMs !== null && cut.stallDuringMs <= 2000)
})

test('netstatCounter reads an MPTcpExt counter', () => {
  const text = 'TcpExt: A B\nTcpExt: 1 2\nMPTcpExt: MPCapableSYNRX Blackhole\nMPTcpExt: 7 3\n'
  assert.equal(netstatCounter(text, 'Blackhole'), 3)
  assert.equal(netstatCounter(text, 'Nope'), 0)
  assert.equal(netstatCounter('', 'Blackhole'), 0)
})
