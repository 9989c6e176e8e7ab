/**
 * `npm run bench -- relay [--seconds 5] [--rounds 3] [--conns 10000] [--no-idle] [--profile
 * auto|always|never] [--heap 2000] [--out bench/results] [--note text]`
 *
 * MPTCP → TCP relay benchmark in one namespace (`hat-bench-relay`, loopback, documentation
 * addresses only, removed at the end and on failure):
 * 1. idle: N SOCKS5 relays held open through the built concentrator to an idle sink; the
 *    concentrator's VmRSS before and after → KiB per connection (goal ≤ 12).
 * 2. throughput: a Node bulk client under `mptcpize run` → concentrator (SOCKS5) or socat
 *    (`SOCKET-LISTEN:2:262:<hex>` = MPTCP listener, `TCP:` to the sink) → Node discard sink,
 *    alternating ours/socat (ABAB); goodput and the relay's CPU from /proc/<pid>/stat.
 * 3. profile: when ours relays fewer Gbit per CPU-second than socat (or `--profile always`), one
 *    more run under `--cpu-prof`, summarised by self time.
 * 4. heap (`--heap n`, off by default): JS objects per idle relay from two heap snapshots (relay-heap.ts).
 * Writes bench/results/relay-<date>.{md,json}.
 */
import type { ChildProcess } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release, totalmem } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { createNamespace, ownPrefix, removeNamespaces, removeStaleRuns, run, type Netns } from '../lab/netns.ts'
import { startDaemon, type DaemonHandle } from '../lab/daemons.ts'
import { REPO_ROOT } from '../lab/topology.ts'
import { heapBreakdown } from './relay-heap.ts'
import {
  netstatCounter, summariseRuns, parseProcStat, parseSockstat, parseVmRss, renderMarkdown, summariseProfile, type CpuProfile,
  type IdleResult, type RelayBenchResult, type RelayPath, type ThroughputRun
} from './relay-report.ts'

const BASE = 'hat-bench-'
// This run's own prefix: a second run (or any other tool) never deletes our namespace mid-measurement.
const PREFIX = ownPrefix(BASE)
const NS = `${PREFIX}relay`
const SVC = '203.0.113.200'
const SINK = '203.0.113.10'
const PORTS = { ours: 1080, socat: 1081, splice: 1082, sink: 5001, mgmt: 9090, mgmtSplice: 9091 } as const
/** RLIMIT_NOFILE wanted for the sink, the idle client and the concentrator; capped at the hard limit. */
const NOFILE_WANTED = 65_536
const PEER = 'bench/relay-peer.ts'
const PROFILE_DIR = '/tmp/hat-bench-prof'
const SETTLE_SECONDS = 16

interface Line { type: string, [k: string]: unknown }

export class Proc {
  readonly child: ChildProcess
  readonly #seen: Line[] = []
  readonly #wake = new Set<() => void>()
  stderr = ''
  constructor (child: ChildProcess) {
    this.child = child
    createInterface({ input: child.stdout! }).on('line', (l) => {
      try { this.#seen.push(JSON.parse(l) as Line) } catch { return }
      for (const w of this.#wake) w()
    })
    child.stderr?.on('data', (b: Buffer) => { this.stderr = (this.stderr + b.toString()).slice(-4000) })
  }

  async next (type: string, timeoutMs: number): Promise<Line> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const i = this.#seen.findIndex((l) => l.type === type)
        if (i >= 0) { done(); resolve(this.#seen.splice(i, 1)[0] as Line) }
      }
      const timer = setTimeout(() => { done(); reject(new Error(`no ${type} line in ${timeoutMs} ms: ${this.stderr}`)) }, timeoutMs)
      const done = (): void => { clearTimeout(timer); this.#wake.delete(check) }
      this.#wake.add(check)
      check()
    })
  }

  /** SIGTERM and wait for its result line; SIGKILL when none comes (the kernel closes its sockets either way). */
  async stop (timeoutMs = 10_000): Promise<void> {
    this.kill('SIGTERM')
    try { await this.next('result', timeoutMs) } catch { this.kill('SIGKILL') }
  }

  kill (sig: NodeJS.Signals = 'SIGKILL'): void {
    try { if (this.child.pid !== undefined) process.kill(this.child.pid, sig) } catch { /* gone */ }
  }
}

const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n)
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const nodePeer = (args: readonly string[]): string[] => [process.execPath, '--import', 'tsx', PEER, ...args]
let nofile = NOFILE_WANTED
const withNofile = (argv: readonly string[]): string[] => ['sh', '-c', `ulimit -n ${nofile} && exec "$@"`, 'sh', ...argv]

export class Bench {
  readonly ns: Netns
  readonly #children = new Set<ChildProcess>()
  readonly #clk: number
  constructor (ns: Netns, clk: number) { this.ns = ns; this.#clk = clk }

  spawn (argv: readonly string[]): ChildProcess {
    const child = this.ns.spawn(argv, { cwd: REPO_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    this.#children.add(child)
    child.once('exit', () => { this.#children.delete(child) })
    return child
  }

  killAll (): void {
    for (const c of this.#children) { try { if (c.pid !== undefined) process.kill(c.pid, 'SIGKILL') } catch { /* gone */ } }
  }

  cpuSeconds (pid: number): { user: number, system: number } {
    const t = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))
    return { user: (t.user + t.childUser) / this.#clk, system: (t.system + t.childSystem) / this.#clk }
  }

  async mptcpAccepted (): Promise<number> {
    return netstatCounter(await this.ns.exec(['cat', '/proc/net/netstat']), 'MPTcpExt', 'MPCapableSYNRX')
  }

  async concentrator (nodeFlags: readonly string[] = [], dataPlane: 'stream' | 'splice' = 'stream'): Promise<DaemonHandle> {
    const splice = dataPlane === 'splice'
    return startDaemon({
      daemon: 'concentrator',
      ns: this.ns,
      spawn: (argv) => this.spawn(argv),
      nofile,
      nodeFlags,
      config: {
        log: { level: 'warn' },
        management: { listen: { host: '127.0.0.1', port: splice ? PORTS.mgmtSplice : PORTS.mgmt } },
        listeners: [{ host: SVC, port: splice ? PORTS.splice : PORTS.ours, mode: 'socks5' }],
        dataPlane,
        // Two concentrators in one namespace: each its own crash journal.
        stateDir: `/run/${NS}-${dataPlane}`,
        auth: { trustedPrefixes: ['203.0.113.0/24'] },
        // One namespace holds the relay and the sink: the sink's address is let through the own-address refusal.
        policy: { ownAddresses: [SVC], hostAddresses: { except: [SINK] } },
        limits: { perSourceMaxConnections: 100_000 }
      }
    })
  }

  /** One bulk transfer through `port`; CPU measured on `pid` (socat: its children are reaped into cutime/cstime). */
  async throughput (path: RelayPath, round: number, pid: number, sink: Proc, seconds: number): Promise<ThroughputRun> {
    const start = monotonicUs()
    const cpu0 = this.cpuSeconds(pid)
    const mp0 = await this.mptcpAccepted()
    const args = ['bulk', '--proxy', `${SVC}:${PORTS[path]}`, '--seconds', String(seconds),
      ...(path === 'socat' ? [] : ['--socks', `${SINK}:${PORTS.sink}`])]
    const client = new Proc(this.spawn(['mptcpize', 'run', ...nodePeer(args)]))
    await client.next('result', (seconds + 30) * 1000)
    const conn = await sink.next('conn', 10_000)
    const end = monotonicUs()
    await sleep(300)
    const cpu1 = this.cpuSeconds(pid)
    const bytes = conn['bytes'] as number
    const ms = conn['ms'] as number
    const user = cpu1.user - cpu0.user
    const system = cpu1.system - cpu0.system
    const bits = bytes * 8 / 1e9
    return {
      path,
      round,
      bytes,
      ms,
      gbps: bits / (ms / 1000),
      cpuSeconds: user + system,
      userSeconds: user,
      systemSeconds: system,
      gbpsPerCore: bits / (user + system),
      mptcpAccepted: await this.mptcpAccepted() - mp0,
      windowUs: [start, end]
    }
  }

  /** n idle SOCKS5 relays through the concentrator (MPTCP client), held until `stop()`. */
  openIdle (n: number, port: number = PORTS.ours): Proc {
    return new Proc(this.spawn(withNofile(['mptcpize', 'run',
      ...nodePeer(['idle', '--proxy', `${SVC}:${port}`, '--socks', `${SINK}:${PORTS.sink}`, '--count', String(n)])])))
  }

  async idle (conc: DaemonHandle, count: number, port: number = PORTS.ours): Promise<IdleResult> {
    const open = (n: number): Proc => this.openIdle(n, port)
    const warm = open(200)
    await warm.next('ready', 30_000)
    await warm.stop()
    await sleep(1500)
    const rss = (): number => parseVmRss(readFileSync(`/proc/${conc.pid}/status`, 'utf8'))
    const heap = async (): Promise<number> => conc.metric('nodejs_heap_size_used_bytes')
    const sock = async () => parseSockstat(await this.ns.exec(['cat', '/proc/net/sockstat']))
    const [rssBefore, heapBefore, sock0] = [rss(), await heap(), await sock()]
    const client = open(count)
    const ready = await client.next('ready', 120_000)
    // Garbage from opening the connections is freed only when V8's memory reducer runs (seconds
    // after the allocation rate drops): sample until it settles, report the last sample.
    const series: Array<{ s: number, rssKiB: number, heapKiB: number }> = []
    for (let t = 2; t <= SETTLE_SECONDS; t += 2) {
      await sleep(2000)
      series.push({ s: t, rssKiB: rss(), heapKiB: Math.round(await heap() / 1024) })
    }
    const [rssAfter, heapAfter, sock1] = [rss(), await heap(), await sock()]
    const activeReported = await conc.metric('hybrid_connections_active')
    const fds = readdirSync(`/proc/${conc.pid}/fd`).length
    await client.stop(30_000)
    let active = activeReported
    for (let i = 0; i < 100 && active > 0; i++) { await sleep(200); active = await conc.metric('hybrid_connections_active') }
    const opened = ready['opened'] as number
    return {
      connections: count,
      failed: ready['failed'] as number,
      openMs: ready['ms'] as number,
      rssBeforeKiB: rssBefore,
      rssAfterKiB: rssAfter,
      kibPerConnection: (rssAfter - rssBefore) / opened,
      heapBeforeBytes: heapBefore,
      heapAfterBytes: heapAfter,
      heapBytesPerConnection: (heapAfter - heapBefore) / opened,
      activeReported,
      fds,
      kernelSocketMemPagesDelta: sock1.memPages - sock0.memPages,
      closedBackToZero: active === 0,
      series
    }
  }

  /** A socat MPTCP listener relaying to the sink, forking per connection. */
  async socat (): Promise<Proc> {
    const p = new Proc(this.spawn(['socat', '-b', '131072', `SOCKET-LISTEN:2:262:x${sockaddrHex(SVC, PORTS.socat)},reuseaddr,fork`,
      `TCP:${SINK}:${PORTS.sink}`]))
    for (let i = 0; i < 50; i++) {
      if ((await this.ns.exec(['ss', '-Hltn', `sport = :${PORTS.socat}`])).trim() !== '') return p
      await sleep(100)
    }
    throw new Error(`socat did not listen: ${p.stderr}`)
  }
}

/** sockaddr_in without the family: port (network order), address, 8 zero bytes, as hex. */
export function sockaddrHex (ip: string, port: number): string {
  return port.toString(16).padStart(4, '0') + ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join('') + '00'.repeat(8)
}

async function profileRun (bench: Bench, sink: Proc, seconds: number) {
  const dir = PROFILE_DIR
  const conc = await bench.concentrator(['--cpu-prof', '--cpu-prof-dir', dir])
  const before = new Set(readdirSync(dir))
  const res = await bench.throughput('ours', 0, conc.pid, sink, seconds)
  await conc.stop(10_000)
  const file = readdirSync(dir).find((f) => !before.has(f) && f.endsWith('.cpuprofile'))
  if (file === undefined) throw new Error('no CPU profile written')
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile
  unlinkSync(join(dir, file))
  return summariseProfile(profile, 15, res.windowUs)
}

interface RelayOptions {
  seconds: number
  rounds: number
  wanted: number
  idle: boolean
  profile: string
  heap: number
  out: string
  notes: string[]
  /** The concentrator's data planes to run side by side (`--data-plane stream,splice`). */
  planes: Array<'stream' | 'splice'>
}

function parseOptions (argv: readonly string[]): RelayOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      seconds: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '3' },
      conns: { type: 'string', default: '10000' },
      'no-idle': { type: 'boolean', default: false },
      profile: { type: 'string', default: 'auto' },
      heap: { type: 'string', default: '0' },
      out: { type: 'string', default: join(REPO_ROOT, 'bench', 'results') },
      note: { type: 'string', multiple: true },
      'data-plane': { type: 'string', default: 'stream,splice' }
    }
  })
  const planes = values['data-plane'].split(',').filter((p): p is 'stream' | 'splice' => p === 'stream' || p === 'splice')
  if (planes.length === 0) throw new Error('--data-plane: stream, splice or stream,splice')
  const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, Number.isFinite(x) ? x : lo))
  return {
    seconds: clamp(Number(values.seconds), 1, 30),
    rounds: clamp(Number(values.rounds), 1, 10),
    wanted: clamp(Number(values.conns), 100, 30_000),
    idle: !values['no-idle'],
    profile: values.profile,
    heap: Number(values.heap) > 0 ? clamp(Number(values.heap), 100, 5000) : 0,
    out: values.out,
    notes: values.note ?? [],
    planes: [...new Set(planes)]
  }
}

/** ours, splice, socat, ours, splice, socat, … on the same sink (the paths in `pids`). */
async function abab (bench: Bench, pids: Partial<Record<RelayPath, number>>, sink: Proc, o: RelayOptions): Promise<ThroughputRun[]> {
  const runs: ThroughputRun[] = []
  for (let r = 1; r <= o.rounds; r++) {
    for (const path of ['ours', 'splice', 'socat'] as const) {
      const pid = pids[path]
      if (pid === undefined) continue
      const res = await bench.throughput(path, r, pid, sink, o.seconds)
      process.stderr.write(`${path} round ${r}: ${res.gbps.toFixed(2)} Gbit/s, ${res.gbpsPerCore.toFixed(2)} Gbit/s per core\n`)
      runs.push(res)
    }
  }
  return runs
}

type Measured = Pick<RelayBenchResult, 'runs' | 'summary' | 'ratioPerCore' | 'spliceRatioPerCore' | 'idle' | 'spliceIdle' | 'profile' | 'heap'>

/** Everything measured inside the namespace: idle memory, ABAB throughput, profile, heap. */
async function measure (bench: Bench, o: RelayOptions, conns: number, notes: string[]): Promise<Measured> {
  await bench.ns.exec(['ip', 'addr', 'add', `${SVC}/32`, 'dev', 'lo'])
  await bench.ns.exec(['ip', 'addr', 'add', `${SINK}/32`, 'dev', 'lo'])
  const sink = new Proc(bench.spawn(withNofile(nodePeer(['sink', '--listen', `${SINK}:${PORTS.sink}`]))))
  await sink.next('ready', 30_000)
  const conc = o.planes.includes('stream') ? await bench.concentrator() : undefined
  const spliced = o.planes.includes('splice') ? await bench.concentrator([], 'splice') : undefined
  const idleOf = async (c: DaemonHandle | undefined, port: number, plane: string): Promise<IdleResult | undefined> => {
    if (!o.idle || c === undefined) return undefined
    process.stderr.write(`idle (${plane}): opening ${conns} relayed connections\n`)
    const res = await bench.idle(c, conns, port)
    process.stderr.write(`idle (${plane}): ${res.kibPerConnection.toFixed(2)} KiB RSS per connection, ${res.fds} fds open\n`)
    return res
  }
  const idle = await idleOf(conc, PORTS.ours, 'stream')
  const spliceIdle = await idleOf(spliced, PORTS.splice, 'splice')
  const socat = await bench.socat()
  const pids: Partial<Record<RelayPath, number>> = { socat: socat.child.pid ?? 0 }
  if (conc !== undefined) pids.ours = conc.pid
  if (spliced !== undefined) pids.splice = spliced.pid
  const runs = await abab(bench, pids, sink, o)
  for (const c of [conc, spliced]) {
    if (c !== undefined && await c.metric('hybrid_mptcp_fallbacks_total') > 0) notes.push('some connections fell back to TCP (hybrid_mptcp_fallbacks_total > 0)')
  }
  await conc?.stop()
  await spliced?.stop()
  socat.kill('SIGTERM')
  const summary = summariseRuns(runs)
  const perCore = (p: RelayPath): number => summary[p]?.gbpsPerCoreMedian ?? NaN
  const ratioPerCore = perCore('ours') / perCore('socat')
  const spliceRatioPerCore = spliced === undefined ? undefined : { socat: perCore('splice') / perCore('socat'), ours: perCore('splice') / perCore('ours') }
  const wantProfile = conc !== undefined && (o.profile === 'always' || (o.profile === 'auto' && ratioPerCore < 1))
  const profile = wantProfile ? await profileRun(bench, sink, o.seconds) : undefined
  const heap = o.heap > 0 ? { connections: o.heap, ...await heapBreakdown(bench, o.heap, PROFILE_DIR) } : undefined
  return {
    runs,
    summary,
    ratioPerCore,
    ...(spliceRatioPerCore !== undefined ? { spliceRatioPerCore } : {}),
    ...(idle !== undefined ? { idle } : {}),
    ...(spliceIdle !== undefined ? { spliceIdle } : {}),
    ...(profile !== undefined ? { profile } : {}),
    ...(heap !== undefined ? { heap } : {})
  }
}

export async function runRelayBench (argv: readonly string[]): Promise<number> {
  const o = parseOptions(argv)
  const hard = Number((await run(['sh', '-c', 'ulimit -Hn'])).trim())
  nofile = Number.isFinite(hard) ? Math.min(NOFILE_WANTED, hard) : NOFILE_WANTED
  // The concentrator holds two fds per relayed connection, plus listeners, management, epoll, stdio.
  const conns = Math.min(o.wanted, Math.floor((nofile - 200) / 2))
  const clk = Number((await run(['getconf', 'CLK_TCK'])).trim())
  const machine: Record<string, string | number> = {
    cpu: cpus()[0]?.model ?? '?',
    cores: cpus().length,
    kernel: release(),
    node: process.version,
    memGiB: Math.round(totalmem() / 2 ** 30),
    loadavg1: loadavg()[0]?.toFixed(2) ?? '?',
    nofileHard: hard
  }
  const notes: string[] = [...o.notes]
  if (o.idle && conns < o.wanted) notes.push(`idle connections reduced from ${o.wanted} to ${conns}: the hard RLIMIT_NOFILE here is ${nofile} (two fds per relayed connection); raise it (e.g. LimitNOFILE) to run ${o.wanted}`)
  await removeStaleRuns(BASE)
  const bench = new Bench(await createNamespace(NS), clk)
  mkdirSync(PROFILE_DIR, { recursive: true })
  try {
    const measured = await measure(bench, o, conns, notes)
    const date = new Date().toISOString().slice(0, 10)
    const result: RelayBenchResult = {
      date,
      command: `npm run bench -- relay ${argv.join(' ')}`.trim(),
      machine,
      seconds: o.seconds,
      rounds: o.rounds,
      ...measured,
      notes
    }
    mkdirSync(o.out, { recursive: true })
    writeFileSync(join(o.out, `relay-${date}.json`), JSON.stringify(result, null, 2) + '\n')
    writeFileSync(join(o.out, `relay-${date}.md`), renderMarkdown(result))
    process.stdout.write(renderMarkdown(result))
    return 0
  } finally {
    bench.killAll()
    await removeNamespaces(PREFIX)
  }
}
