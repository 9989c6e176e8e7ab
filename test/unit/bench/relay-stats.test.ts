import { test } from 'node:test'
import assert from 'node:assert/strict'
import { churnRun, median, pairedRatios, parseThreadStat, spreadOf, threadDelta } from '../../../bench/relay-stats.ts'
import { RELAY_PATHS, renderMarkdown, summariseRuns, type RelayBenchResult, type ThroughputRun } from '../../../bench/relay-report.ts'
import { haproxyConfig } from '../../../bench/relay.ts'

test('spreadOf: min, median, max and (max − min) / median; non-finite figures are left out', () => {
  assert.deepEqual(spreadOf([2, 4, 3, NaN]), { n: 3, min: 2, median: 3, max: 4, spread: 2 / 3 })
  assert.equal(spreadOf([]).n, 0)
  assert.ok(Number.isNaN(spreadOf([]).median))
  assert.equal(median([1, 2, 3, 4]), 2.5)
})

test('pairedRatios pairs the two paths within each round and skips a round where one is missing', () => {
  const runs = [
    { path: 'splice', round: 1, value: 20 }, { path: 'socat', round: 1, value: 10 },
    { path: 'splice', round: 2, value: 9 },
    { path: 'splice', round: 3, value: 15 }, { path: 'socat', round: 3, value: 12 }
  ]
  assert.deepEqual(pairedRatios(runs, 'splice', 'socat'), [2, 1.25])
  assert.deepEqual(pairedRatios(runs, 'socat', 'haproxy'), [])
})

test('parseThreadStat reads the name in parentheses (spaces and parentheses allowed) and utime + stime', () => {
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime …
  const line = '4242 (node (splice) x) S 1 4242 4242 0 -1 4194368 100 0 0 0 250 75 0 0 20 0 3 0 1 0 0'
  assert.deepEqual(parseThreadStat(line), { name: 'node (splice) x', ticks: 325 })
})

test('threadDelta sums CPU by thread name over the run; a thread that started during the run counts from 0', () => {
  const before = new Map([['1', { name: 'node', ticks: 100 }], ['2', { name: 'libuv-worker', ticks: 10 }]])
  const after = new Map([['1', { name: 'node', ticks: 300 }], ['2', { name: 'libuv-worker', ticks: 10 }], ['3', { name: 'splice', ticks: 50 }],
    ['4', { name: 'splice', ticks: 50 }]])
  assert.deepEqual(threadDelta(before, after, 100), [{ name: 'node', seconds: 2 }, { name: 'splice', seconds: 1 }])
})

test('churnRun: connections per second and per CPU-second of the relay', () => {
  const r = churnRun('socat', 1, { count: 4000, failed: 2, ms: 4000 }, 2)
  assert.equal(r.perSecond, 1000)
  assert.equal(r.perCoreSecond, 2000)
  assert.ok(Number.isNaN(churnRun('x', 1, { count: 1, failed: 0, ms: 1 }, 0).perCoreSecond))
})

test('haproxyConfig: one thread, mode tcp, a maxconn that fits the fd limit, a bulk and a churn listener', () => {
  const cfg = haproxyConfig(20_000)
  assert.match(cfg, /^ {2}nbthread 1$/m)
  assert.match(cfg, /^ {2}mode tcp$/m)
  assert.match(cfg, /^ {2}maxconn 9800$/m)
  assert.equal(cfg.match(/^listen /gm)?.length, 2)
  assert.equal(haproxyConfig(100).match(/maxconn (\d+)/)?.[1], '100')
})

test('the report has the stability section, per-round ratios, threads and the churn table', () => {
  const run = (path: ThroughputRun['path'], round: number, perCore: number): ThroughputRun => ({
    path,
    round,
    bytes: 1e9,
    ms: 1000,
    gbps: 8,
    cpuSeconds: 8 / perCore,
    userSeconds: 0.1,
    systemSeconds: 8 / perCore - 0.1,
    gbpsPerCore: perCore,
    mptcpAccepted: 1,
    windowUs: [0, 1],
    threads: [{ name: 'node', seconds: 0.02 }, { name: 'splice', seconds: 8 / perCore - 0.02 }]
  })
  const runs = [run('splice', 1, 20), run('socat', 1, 10), run('haproxy', 1, 16), run('splice', 2, 18), run('socat', 2, 12), run('haproxy', 2, 12)]
  const r: RelayBenchResult = {
    date: '2026-12-07',
    command: 'npm run bench -- relay',
    machine: {},
    seconds: 5,
    rounds: 2,
    runs,
    churn: [churnRun('splice', 1, { count: 1000, failed: 0, ms: 1000 }, 0.5)],
    summary: summariseRuns(runs),
    ratioPerCore: NaN,
    notes: []
  }
  const md = renderMarkdown(r)
  assert.match(md, /\| splice \/ socat \| 2\.00, 1\.50 \| \*\*1\.75\*\* \(1\.50–2\.00\) \|/)
  assert.match(md, /\| splice \/ haproxy \| 1\.25, 1\.50 \|/)
  assert.match(md, /\| haproxy \| 12\.00 \/ 14\.00 \/ 16\.00 \| 29 % \|/)
  assert.match(md, /\| splice \| splice 9\d %, node \d %/)
  assert.match(md, /\| splice \| 1000 \| \*\*2000\*\* \|/)
  assert.deepEqual(Object.keys(r.summary), RELAY_PATHS.filter((p) => p !== 'ours'))
})
