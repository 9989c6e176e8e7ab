/**
 * `npm run lab -- --scenario priority`: proof of priority-based steering (docs/steering.md). The CPE
 * agent runs in socks5 mode with `steering.mode: priority-based` (DSL capacity = the DSL profile's
 * rates); one download from lan through the CPE:
 *   below: paced at half the DSL downstream rate → LTE must carry < 5 % of the access bytes;
 *   above: unpaced (demand above the DSL rate)   → after LTE joined, DSL + LTE must carry ≥ 90 %
 *          of the sum of both downstream rates (access routers' tx counters, IP bytes after shaping).
 * The figures helpers (pure) and the load helpers are shared with test/e2e/steering.e2e.test.ts.
 */
import { LAB_PORTS } from './addresses.ts'
import { startDaemon, type DaemonHandle } from './daemons.ts'
import { LAB_CPE_TOKEN, labCpeConfig, labModeConcentratorConfig } from './lab-daemons-config.ts'
import type { Lab } from './topology.ts'

const sleep = async (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Access byte counters (down = router → cpe) sampled over time: epoch ms, cumulative bytes. */
export interface ByteSeries { t: number[], dsl: number[], lte: number[] }

/** Bytes of each access and their sum between two times (nearest samples). Pure. */
export function bytesBetween (s: ByteSeries, from: number, to: number): { dsl: number, lte: number, seconds: number } {
  const i = s.t.findIndex((t) => t >= from)
  let j = s.t.length - 1
  while (j > 0 && (s.t[j] ?? 0) > to) j--
  if (i < 0 || j <= i) return { dsl: 0, lte: 0, seconds: 0 }
  return { dsl: (s.dsl[j] ?? 0) - (s.dsl[i] ?? 0), lte: (s.lte[j] ?? 0) - (s.lte[i] ?? 0), seconds: ((s.t[j] ?? 0) - (s.t[i] ?? 0)) / 1000 }
}

/**
 * First time ≥ `from` at which a window of at least `windowMs` (from one sample to the first sample
 * `windowMs` later or more: on a loaded host samples come late, and a fixed window would then hold
 * too few of them) has DSL carrying ≥ `share` of the bytes (and some bytes). Pure.
 */
export function dslBulkAt (s: ByteSeries, from: number, windowMs: number, share: number): number | undefined {
  for (let i = 0; i < s.t.length; i++) {
    const t = s.t[i] ?? 0
    if (t < from) continue
    const j = s.t.findIndex((x, k) => k > i && x - t >= windowMs)
    if (j < 0) return undefined
    const dsl = (s.dsl[j] ?? 0) - (s.dsl[i] ?? 0)
    const lte = (s.lte[j] ?? 0) - (s.lte[i] ?? 0)
    if (dsl + lte > 0 && dsl / (dsl + lte) >= share) return t
  }
  return undefined
}

/** Samples both accesses' downstream counters every `everyMs` until `stop()` (bounded: at most `maxMs`). */
export function sampleAccessBytes (lab: Lab, everyMs = 100, maxMs = 120_000): { series: ByteSeries, stop: () => Promise<void> } {
  const series: ByteSeries = { t: [], dsl: [], lte: [] }
  const ctl = { running: true }
  const until = Date.now() + maxMs
  const loop = (async () => {
    while (ctl.running && Date.now() < until) {
      const [d, l] = await Promise.all([lab.accessBytes('dsl'), lab.accessBytes('lte')])
      series.t.push(Date.now()); series.dsl.push(d.down); series.lte.push(l.down)
      await sleep(everyMs)
    }
  })()
  return { series, stop: async () => { ctl.running = false; await loop } }
}

/**
 * A download from lan through the CPE: paced at `bytesPerSecond` (0: unpaced) for `seconds`; reports bytes,
 * stalls (> 100 ms, epoch start) and any error.
 */
export const downloadScript = (url: string, bytesPerSecond: number, seconds: number): string => `
const http = require('node:http')
const t0 = Date.now(); let bytes = 0; let last = Date.now(); const gaps = []; let error = null; let done = false
const finish = () => { if (done) return; done = true; console.log(JSON.stringify({ bytes, gaps, error, t0, t1: Date.now() })); process.exit(0) }
const req = http.get(${JSON.stringify(url)}, (res) => {
  res.on('data', (b) => {
    const now = Date.now(); if (now - t0 > 1500 && now - last > 100) gaps.push([last, now - last])
    last = now; bytes += b.length
    if (${bytesPerSecond} > 0) { const ahead = bytes / ${bytesPerSecond} * 1000 - (now - t0); if (ahead > 5) { res.pause(); setTimeout(() => { last = Date.now(); res.resume() }, ahead) } }
  })
  res.on('error', (e) => { error = e.code ?? e.message; finish() })
  res.on('end', finish)
})
req.on('error', (e) => { error = e.code ?? e.message; finish() })
setTimeout(() => { req.destroy(); finish() }, ${seconds * 1000})`

/** Port of the paced HTTP source started in inet (startPacedSource). */
export const PACED_PORT = 8099

/**
 * An HTTP source in inet that sends at a fixed rate (`/?bps=<bytes/s>&seconds=<n>`, 10 ms ticks):
 * demand paced at the sender, so no receive-buffer burst at the start (receiver-side pacing fills
 * every buffer on the way at line rate first). Bounded: each response ends after `seconds` (≤ 60).
 */
export const pacedSourceScript = (host: string, port: number): string => `
const http = require('node:http')
http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x'); const bps = Math.min(Number(u.searchParams.get('bps')) || 1e6, 1e9); const seconds = Math.min(Number(u.searchParams.get('seconds')) || 5, 60)
  const t0 = Date.now(); let sent = 0; const block = Buffer.alloc(65536, 97)
  res.writeHead(200, { 'content-type': 'application/octet-stream' })
  const tick = () => {
    const el = Date.now() - t0
    if (el >= seconds * 1000) { res.end(); return }
    let due = Math.floor(bps * el / 1000) - sent
    while (due > 0) { const n = Math.min(due, block.length); sent += n; due -= n; if (!res.write(block.subarray(0, n))) { res.once('drain', tick); return } }
    setTimeout(tick, 10)
  }
  res.on('close', () => { sent = Infinity }); tick()
}).listen(${port}, ${JSON.stringify(host)}, () => console.log(JSON.stringify({ type: 'ready' })))`

/** Start the paced source in inet (killed at lab teardown); resolves once it listens. */
export async function startPacedSource (lab: Lab, host: string = lab.plan.internet.servers[0]?.v4 ?? ''): Promise<{ stop: () => void }> {
  const child = lab.spawn('inet', ['node', '-e', pacedSourceScript(host, PACED_PORT)])
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('paced source did not start')) }, 10_000)
    child.stdout?.on('data', (b: Buffer) => { if (b.toString().includes('ready')) { clearTimeout(timer); resolve() } })
    child.on('exit', () => { clearTimeout(timer); reject(new Error('paced source exited')) })
  })
  return { stop: () => { if (child.pid !== undefined) { try { process.kill(child.pid, 'SIGTERM') } catch { /* gone */ } } } }
}

/** A download of the paced source: demand of `bytesPerSecond` set by the sender. */
export function startPacedDownload (lab: Lab, bytesPerSecond: number, seconds: number,
  host: string = lab.plan.internet.servers[0]?.v4 ?? ''): Promise<Download> {
  const url = `http://${host}:${PACED_PORT}/?bps=${bytesPerSecond}&seconds=${seconds}`
  return lab.ns.lan.exec(['node', '-e', downloadScript(url, 0, seconds + 5)],
    { timeoutMs: (seconds + 25) * 1000 }).then((o) => JSON.parse(o) as Download)
}

export interface Download { bytes: number, gaps: Array<[number, number]>, error: string | null, t0: number, t1: number }

export function startDownload (lab: Lab, bytesPerSecond: number, seconds: number): Promise<Download> {
  const url = `http://${lab.plan.internet.servers[0]?.v4 ?? ''}:${LAB_PORTS.http}/100M`
  return lab.ns.lan.exec(['node', '-e', downloadScript(url, bytesPerSecond, seconds)],
    { timeoutMs: (seconds + 20) * 1000 }).then((o) => JSON.parse(o) as Download)
}

/** Longest stall (ms) of a download that begins in [from, to). */
export const longestStall = (d: Download, from: number, to: number): number =>
  d.gaps.filter(([s]) => s >= from && s < to).reduce((m, [, ms]) => Math.max(m, ms), 0)

/** PUT /api/v1/steering through the CPE's management API (inside cpe). */
export async function putSteering (lab: Lab, cpe: DaemonHandle, body: unknown): Promise<{ status: number, body: string }> {
  const out = await lab.ns.cpe.exec(['curl', '-sS', '--max-time', '10', '-w', '\n%{http_code}', '-X', 'PUT', '-H',
    `authorization: Bearer ${LAB_CPE_TOKEN}`,
    '-H', 'content-type: application/json', '--data', JSON.stringify(body), `${cpe.mgmtUrl}/api/v1/steering`])
  const lines = out.trimEnd().split('\n')
  return { status: Number(lines.pop()), body: lines.join('\n') }
}

/** The CPE config of the steering proofs: socks5, DSL capacity from the profile, the lab's failover. */
export function steeringCpeConfig (lab: Lab, mode: string, logLevel = 'info'): Record<string, unknown> {
  const dsl = lab.access.dsl.profile
  return {
    ...labCpeConfig('socks5', { plan: lab.plan, logLevel }),
    steering: { mode, priority: { dslDownKbps: Math.round(dsl.down.rateMbit * 1000), dslUpKbps: Math.round(dsl.up.rateMbit * 1000) } }
  }
}

export interface PriorityReport {
  below: { demandMbps: number, dslMB: number, lteMB: number, lteShare: number, repeated: boolean }
  above: { windowS: number, dslMbps: number, lteMbps: number, sumOfRatesMbps: number, ofSum: number, lteJoinedAfterMs: number | null }
}

export interface MeasureOptions {
  /** The paced source already runs (started by the caller). */
  sourceRunning?: boolean
  /**
   * Count of path-health `dsl down` transitions (the CPE's hybrid_path_state_changes_total): a below
   * phase during which DSL was declared down (lost probes on a loaded host) is repeated once; that
   * phase measures failover, not steering (failover clears the backup flag).
   */
  dslDowns?: () => Promise<number>
}

/** Demand at half the DSL rate, paced at the source, 8 s: the bytes each access carried after the first second. */
async function measureBelow (lab: Lab, demandMbps: number, opts: MeasureOptions): Promise<PriorityReport['below']> {
  const source = opts.sourceRunning === true ? { stop: () => {} } : await startPacedSource(lab)
  try {
    for (let attempt = 0; ; attempt++) {
      const downs0 = await opts.dslDowns?.()
      const s = sampleAccessBytes(lab)
      const d = await startPacedDownload(lab, demandMbps * 125_000, 8)
      await s.stop()
      const b = bytesBetween(s.series, d.t0 + 1000, d.t1)
      const falseDown = downs0 !== undefined && (await opts.dslDowns?.() ?? 0) > downs0
      if (!falseDown || attempt >= 1) {
        return {
          demandMbps,
          dslMB: round(b.dsl / 1e6),
          lteMB: round(b.lte / 1e6),
          lteShare: round(b.lte / Math.max(b.dsl + b.lte, 1), 4),
          repeated: attempt > 0
        }
      }
      await sleep(4000) // LTE back to backup, health settled
    }
  } finally { source.stop() }
}

/** Unpaced demand, 12 s: DSL + LTE rates from 4 s on (LTE joined after the hold time) against the sum of the rates. */
async function measureAbove (lab: Lab, rates: { dsl: number, lte: number }): Promise<PriorityReport['above']> {
  const s = sampleAccessBytes(lab)
  const above = await startDownload(lab, 0, 12)
  await s.stop()
  const joined = s.series.t.find((t,
    i) => i > 0 && t > above.t0 && ((s.series.lte[i] ?? 0) - (s.series.lte[i - 1] ?? 0)) > 0.5 * rates.lte * 125_000 * 0.1)
  const a = bytesBetween(s.series, above.t0 + 4000, above.t1 - 300)
  const mbps = (bytes: number): number => Math.round(bytes * 8 / 1e6 / Math.max(a.seconds, 0.001) * 10) / 10
  const ofSum = round((mbps(a.dsl) + mbps(a.lte)) / (rates.dsl + rates.lte), 3)
  return {
    windowS: round(a.seconds),
    dslMbps: mbps(a.dsl),
    lteMbps: mbps(a.lte),
    sumOfRatesMbps: rates.dsl + rates.lte,
    ofSum,
    lteJoinedAfterMs: joined === undefined ? null : joined - above.t0
  }
}

/** Both phases on one running agent (steering.mode priority-based). */
export async function measurePriority (lab: Lab, log: (m: string) => void = () => {}, opts: MeasureOptions = {}): Promise<PriorityReport> {
  const rates = { dsl: lab.access.dsl.profile.down.rateMbit, lte: lab.access.lte.profile.down.rateMbit }
  log(`priority: below, ${rates.dsl / 2} Mbit/s download (paced at the source) for 8 s`)
  const below = await measureBelow(lab, rates.dsl / 2, opts)
  log('priority: above, unpaced download for 12 s')
  await sleep(4000) // LTE back to backup after the hold time, counters quiet
  return { below, above: await measureAbove(lab, rates) }
}

const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits

export function formatPriorityReport (r: PriorityReport): string {
  return [
    'Priority-based steering (socks5, one LAN download through the CPE; access routers\' counters)',
    `below the DSL rate (${r.below.demandMbps} Mbit/s paced at the source${r.below.repeated ? ', repeated once after a false dsl down' : ''}): DSL ${r.below.dslMB} MB, LTE ${r.below.lteMB} MB → LTE share ${(r.below.lteShare * 100).toFixed(2)} % (target < 5 %)`,
    `above the DSL rate (unpaced, ${r.above.windowS} s window from 4 s): DSL ${r.above.dslMbps} + LTE ${r.above.lteMbps} Mbit/s = ${(r.above.ofSum * 100).toFixed(1)} % of ${r.above.sumOfRatesMbps} (target ≥ 90 %); LTE joined after ${r.above.lteJoinedAfterMs ?? '-'} ms`
  ].join('\n')
}

/** The CLI scenario: start the daemons, measure, stop them. */
export async function runPriorityScenario (lab: Lab, log: (m: string) => void): Promise<PriorityReport> {
  const conc = await startDaemon({
    daemon: 'concentrator',
    config: labModeConcentratorConfig('socks5', { plan: lab.plan }),
    ns: lab.ns.hag,
    spawn: (argv) => lab.spawn('hag', argv)
  })
  try {
    const cpe = await startDaemon({
      daemon: 'cpe',
      config: steeringCpeConfig(lab, 'priority-based'),
      ns: lab.ns.cpe,
      spawn: (argv) => lab.spawn('cpe', argv)
    })
    try {
      await sleep(1500) // path health up
      return await measurePriority(lab, log, { dslDowns: async () => cpe.metric('hybrid_path_state_changes_total', { path: 'dsl', to: 'down' }) })
    } finally { await cpe.stop() }
  } finally { await conc.stop() }
}
