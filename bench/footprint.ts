/**
 * `npm run bench -- footprint [--mode socks5] [--settle 10] [--idle 20] [--churn 60] [--rate 20]
 * [--max-inflight 50] [--variant name=flags …] [--prefix hat-fp-] [--out bench/results] [--note text]`
 *
 * Memory footprint of the built daemons in the lab (docs/footprint.md): per variant (a set of node
 * flags; default the deployed flags of `DAEMON_NODE_FLAGS` and none), a fresh concentrator in hag
 * and CPE agent in cpe with the lab's configuration for `--mode`, then
 * - idle: `--settle` s after `/readyz`, RSS sampled every second for `--idle` s;
 * - churn: the soak's load generator (lab/soak-load.ts) in lan, `--rate` new connections per second
 *   for `--churn` s, at most `--max-inflight` open (bounded in count and time), RSS sampled each second;
 * - after: `--settle` s after the load ended.
 * RSS from /proc/<pid>/status (VmRSS), the V8 heap breakdown from each daemon's /metrics. Writes
 * bench/results/footprint-<date>.{md,json}. Hold the bench lock (`flock /work/notes/bench.lock`)
 * when machines are shared; a default run takes about 4 minutes.
 */
import type { ChildProcess } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release, totalmem } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { LAB_PORTS } from '../lab/addresses.ts'
import { startDaemon, sumMetric, type DaemonHandle } from '../lab/daemons.ts'
import { labCpeConfig, labModeConcentratorConfig, DAEMON_MODES, type DaemonMode } from '../lab/lab-daemons-config.ts'
import { getProfile } from '../lab/link-profile.ts'
import { e2eSkipReason } from '../lab/netns.ts'
import { buildLab, REPO_ROOT, type Lab } from '../lab/topology.ts'
import { daemonLaunch, envWords } from '../shared/src/node-flags.ts'
import {
  HEAP_METRICS, parseProcStatus, renderFootprint, summarize,
  type DaemonFootprint, type FootprintResult, type FootprintVariant, type HeapBreakdown, type MemSample
} from './footprint-report.ts'

interface Options {
  mode: DaemonMode,
  settle: number,
  idle: number,
  churn: number,
  rate: number,
  maxInflight: number,
  variants: Variant[],
  prefix: string,
  out: string,
  notes: string[]
}

export interface Variant { readonly name: string, readonly deployed: boolean, readonly flags: readonly string[], readonly env: readonly string[] }

/**
 * `name=--flag --flag KEY=value`: a variant (node flags, and environment variables for the daemons
 * such as MALLOC_ARENA_MAX=2) over Node's defaults, for both daemons; `deployed` (each daemon's
 * deployed settings, shared/src/node-flags.ts) and `none` (Node's defaults) are known by name. Pure.
 */
export function parseVariant (spec: string): Variant {
  if (spec === 'deployed') return { name: 'deployed', deployed: true, flags: [], env: [] }
  if (spec === 'none') return { name: 'none', deployed: false, flags: [], env: [] }
  const eq = spec.indexOf('=')
  if (eq <= 0) throw new Error(`--variant ${spec}: expected deployed, none or name=flags`)
  const words = spec.slice(eq + 1).split(/\s+/).filter((x) => x !== '')
  const isEnv = (w: string): boolean => /^[A-Z_][A-Z0-9_]*=/.test(w)
  return { name: spec.slice(0, eq), deployed: false, flags: words.filter((w) => !isEnv(w)), env: words.filter(isEnv) }
}

function parseOptions (argv: readonly string[]): Options {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      mode: { type: 'string', default: 'socks5' },
      settle: { type: 'string', default: '10' },
      idle: { type: 'string', default: '20' },
      churn: { type: 'string', default: '60' },
      rate: { type: 'string', default: '20' },
      'max-inflight': { type: 'string', default: '50' },
      variant: { type: 'string', multiple: true },
      prefix: { type: 'string', default: 'hat-fp-' },
      out: { type: 'string', default: join(REPO_ROOT, 'bench', 'results') },
      note: { type: 'string', multiple: true }
    }
  })
  const clamp = (x: string, lo: number, hi: number): number => {
    const n = Number(x)
    return Math.min(hi, Math.max(lo, Number.isFinite(n) ? Math.round(n) : lo))
  }
  if (!(DAEMON_MODES as readonly string[]).includes(values.mode)) throw new Error(`--mode ${values.mode}: one of ${DAEMON_MODES.join(', ')}`)
  return {
    mode: values.mode as DaemonMode,
    settle: clamp(values.settle, 1, 60),
    idle: clamp(values.idle, 3, 120),
    churn: clamp(values.churn, 5, 300),
    rate: clamp(values.rate, 1, 100),
    maxInflight: clamp(values['max-inflight'], 1, 500),
    variants: (values.variant ?? ['deployed', 'none']).map(parseVariant),
    prefix: values.prefix,
    out: values.out,
    notes: values.note ?? []
  }
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

function sample (pid: number, t0: number): MemSample | undefined {
  try {
    return { t: (performance.now() - t0) / 1000, ...parseProcStatus(readFileSync(`/proc/${pid}/status`, 'utf8')) }
  } catch { return undefined }
}

/** Sample both daemons once a second until `until` settles (one sample at least). */
async function sampleBoth (pids: readonly [number, number], until: Promise<unknown>): Promise<[MemSample[], MemSample[]]> {
  const out: [MemSample[], MemSample[]] = [[], []]
  const t0 = performance.now()
  let done = false
  until.then(() => { done = true }, () => { done = true })
  for (;;) {
    for (const i of [0, 1] as const) { const s = sample(pids[i], t0); if (s !== undefined) out[i].push(s) }
    if (done) return out
    await Promise.race([sleep(1000), until.catch(() => undefined)])
  }
}

async function heapOf (d: DaemonHandle): Promise<HeapBreakdown> {
  const text = await d.metricsText()
  const mb = (name: string): number => sumMetric(text, name) / (1024 * 1024)
  return {
    rssMB: mb(HEAP_METRICS.rssMB),
    heapTotalMB: mb(HEAP_METRICS.heapTotalMB),
    heapUsedMB: mb(HEAP_METRICS.heapUsedMB),
    externalMB: mb(HEAP_METRICS.externalMB)
  }
}

/** The soak's load generator in lan; resolves with its totals line. */
function churn (lab: Lab, o: Options): { child: ChildProcess, end: Promise<Record<string, unknown>> } {
  const child = lab.spawn('lan', [process.execPath, '--import', 'tsx', 'lab/soak-load.ts',
    '--host', lab.plan.internet.servers[0]!.v4, '--http-port', String(LAB_PORTS.http), '--echo-port', String(LAB_PORTS.echo),
    '--rate', String(o.rate), '--seconds', String(o.churn), '--max-inflight', String(o.maxInflight), '--seed', '1'])
  let stderr = ''
  child.stderr?.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-2000) })
  const end = new Promise<Record<string, unknown>>((resolve, reject) => {
    let totals: Record<string, unknown> | undefined
    createInterface({ input: child.stdout! }).on('line', (l) => {
      try {
        const m = JSON.parse(l) as Record<string, unknown>
        if (m['type'] === 'end') { const { type: _t, errorsByReason: _e, ...rest } = m; totals = rest }
      } catch { /* not a line of ours */ }
    })
    child.once('close', (code) => { if (totals !== undefined) resolve(totals); else reject(new Error(`soak-load exited ${String(code)}: ${stderr.trim()}`)) })
  })
  return { child, end }
}

async function oneVariant (lab: Lab, o: Options, v: Variant): Promise<FootprintVariant> {
  const env = Object.fromEntries(v.env.map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]))
  const launch = { nodeFlags: v.flags, env, deployedFlags: v.deployed }
  await lab.ns.cpe.exec(['sysctl', '-qw', 'net.ipv4.tcp_fastopen=1'])
  await lab.ns.hag.exec(['sysctl', '-qw', 'net.ipv4.tcp_fastopen=3'])
  const cfg = { plan: lab.plan, logLevel: 'warn' }
  const conc = await startDaemon({
    daemon: 'concentrator', config: labModeConcentratorConfig(o.mode, cfg), ns: lab.ns.hag, spawn: (argv) => lab.spawn('hag', argv), ...launch
  })
  let cpe: DaemonHandle | undefined
  try {
    cpe = await startDaemon({ daemon: 'cpe', config: labCpeConfig(o.mode, cfg), ns: lab.ns.cpe, spawn: (argv) => lab.spawn('cpe', argv), ...launch })
    const pids = [cpe.pid, conc.pid] as const
    process.stderr.write(`${v.name}: daemons ready (cpe ${cpe.pid}, concentrator ${conc.pid}), settling ${o.settle} s\n`)
    await sleep(o.settle * 1000)
    const idle = await sampleBoth(pids, sleep(o.idle * 1000))
    const idleHeap = [await heapOf(cpe), await heapOf(conc)] as const
    process.stderr.write(`${v.name}: idle cpe ${summarize(idle[0]).medianMB.toFixed(1)} MiB, concentrator ${summarize(idle[1]).medianMB.toFixed(1)} MiB; churn ${o.churn} s\n`)
    const load = churn(lab, o)
    const timer = setTimeout(() => { try { process.kill(load.child.pid!, 'SIGKILL') } catch { /* gone */ } }, (o.churn + 150) * 1000)
    const during = await sampleBoth(pids, load.end)
    clearTimeout(timer)
    const totals = await load.end
    const churnHeap = [await heapOf(cpe), await heapOf(conc)] as const
    await sleep(o.settle * 1000)
    const after = await sampleBoth(pids, sleep(3000))
    const fp = (i: 0 | 1): DaemonFootprint => ({
      idle: summarize(idle[i]), churn: summarize(during[i]), after: summarize(after[i]), idleHeap: idleHeap[i], churnHeap: churnHeap[i]
    })
    process.stderr.write(`${v.name}: churn peak cpe ${fp(0).churn.peakMB.toFixed(1)} MiB, concentrator ${fp(1).churn.peakMB.toFixed(1)} MiB\n`)
    const launched = (d: 'cpe' | 'concentrator'): string[] => v.deployed ? [...envWords(daemonLaunch(d).env), ...daemonLaunch(d).nodeFlags] : [...v.env, ...v.flags]
    return { name: v.name, nodeFlags: { cpe: launched('cpe'), concentrator: launched('concentrator') }, cpe: fp(0), concentrator: fp(1), load: totals }
  } finally {
    await cpe?.stop(5000)
    await conc.stop(5000)
  }
}

export async function runFootprintBench (argv: readonly string[]): Promise<number> {
  const skip = e2eSkipReason()
  if (skip !== undefined) { process.stderr.write(`footprint: ${skip}\n`); return 1 }
  const o = parseOptions(argv)
  const lab = await buildLab({ prefix: o.prefix, profiles: { dsl: getProfile('vdsl'), lte: getProfile('lte') } })
  try {
    const variants: FootprintVariant[] = []
    for (const v of o.variants) variants.push(await oneVariant(lab, o, v))
    const date = new Date().toISOString().slice(0, 10)
    const result: FootprintResult = {
      date,
      command: `npm run bench -- footprint ${argv.join(' ')}`.trim(),
      machine: {
        cpu: cpus()[0]?.model ?? '?', cores: cpus().length, memMB: Math.round(totalmem() / 2 ** 20), kernel: release(), node: process.version, loadavg1: loadavg()[0]?.toFixed(2) ?? '?'
      },
      variants,
      notes: [
        `lab mode ${o.mode} (vdsl + lte), the built daemons (dist/) with the lab's configuration, log level warn`,
        `idle: ${o.settle} s after ready, ${o.idle} s of samples; churn: lab/soak-load.ts at ${o.rate}/s for ${o.churn} s, at most ${o.maxInflight} open; after: ${o.settle} s after the load ended`,
        ...o.notes
      ]
    }
    mkdirSync(o.out, { recursive: true })
    writeFileSync(join(o.out, `footprint-${date}.json`), JSON.stringify(result, null, 2) + '\n')
    writeFileSync(join(o.out, `footprint-${date}.md`), renderFootprint(result))
    process.stdout.write(renderFootprint(result))
    return 0
  } finally {
    await lab.teardown()
  }
}
