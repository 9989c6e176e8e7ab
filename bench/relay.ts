/**
 * `npm run bench -- relay [--seconds 5] [--rounds 5] [--conns 10000] [--no-idle] [--profile
 * auto|always|never] [--heap 2000] [--data-plane stream,splice] [--refs socat,haproxy]
 * [--churn-seconds 4] [--pin auto|on|off] [--out bench/results] [--note text]`
 *
 * MPTCP → TCP relay benchmark in one namespace (`hat-bench-relay`, loopback, documentation
 * addresses only, removed at the end and on failure):
 * 1. idle: N SOCKS5 relays held open through the built concentrator to an idle sink; the
 *    concentrator's VmRSS before and after → KiB per connection (goal ≤ 12).
 * 2. throughput: a Node bulk client under `mptcpize run` → concentrator (SOCKS5), socat
 *    (`SOCKET-LISTEN:2:262:<hex>` = MPTCP listener, `TCP:` to the sink) or HAProxy (mode tcp, under
 *    `mptcpize run`) → Node discard sink, in rounds (ours, splice, socat, haproxy, ours, …); goodput,
 *    the relay's CPU from /proc/<pid>/stat and per thread from /proc/<pid>/task/<tid>/stat; the
 *    spread of every figure over the rounds and the ratios paired within a round (relay-stats.ts).
 *    With two or more cores (`--pin auto`) the relay runs on CPU 1 and the load generators on CPU 0.
 * 2b. churn: short connections (connect, SOCKS5 for ours, 64 bytes each way, close) through each
 *    relay for `--churn-seconds`: connections per second per relay core.
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
import { churnRun, parseThreadStat, threadDelta, type ChurnRun } from './relay-stats.ts'
import {
  netstatCounter, summariseRuns, parseProcStat, parseSockstat, parseVmRss, renderMarkdown, summariseProfile, type CpuProfile,
  type IdleResult, type RelayBenchResult, type RelayPath, type ThroughputRun, RELAY_PATHS
} from './relay-report.ts'

const BASE = 'hat-bench-'
// This run's own prefix: a second run (or any other tool) never deletes our namespace mid-measurement.
const PREFIX = ownPrefix(BASE)
const NS = `${PREFIX}relay`
const SVC = '203.0.113.200'
const SINK = '203.0.113.10'
const PORTS = { ours: 1080, socat: 1081, splice: 1082, haproxy: 1083, sink: 5001, rr: 5002, mgmt: 9090, mgmtSplice: 9091 } as const
/** CPU the relays run on and CPU the load generators (clients, sinks) run on, when pinned. */
const RELAY_CPU = '1'
const LOAD_CPU = '0'
/** Where each relay listens for the churn (socat and HAProxy: a second listener towards the request/response server). */
const CHURN_PORTS: Record<RelayPath, number> = { ours: PORTS.ours, splice: PORTS.splice, socat: PORTS.socat + 100, haproxy: PORTS.haproxy + 100 }
/** Paths that relay SOCKS5 (the client does the handshake first). */
const SOCKS_PATHS: ReadonlySet<RelayPath> = new Set(['ours', 'splice'])
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
  readonly #pin: boolean
  constructor (ns: Netns, clk: number, pin = false) { this.ns = ns; this.#clk = clk; this.#pin = pin }

  /** argv of a relay (on RELAY_CPU when pinned; threads and forks inherit it). */
  relayArgv (argv: readonly string[]): string[] { return this.#pin ? ['taskset', '-c', RELAY_CPU, ...argv] : [...argv] }
  /** argv of a load generator (on LOAD_CPU when pinned). */
  loadArgv (argv: readonly string[]): string[] { return this.#pin ? ['taskset', '-c', LOAD_CPU, ...argv] : [...argv] }

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

  /** The kernel's CPU accounting of every thread of `pid` (thread id → name, ticks). */
  threads (pid: number): Map<string, { name: string, ticks: number }> {
    const out = new Map<string, { name: string, ticks: number }>()
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const t = parseThreadStat(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'))
        // Node names its worker threads like the main thread ("node"): the main thread is the one whose id is the pid.
        out.set(tid, tid === String(pid) ? { ...t, name: 'main' } : t)
      } catch { /* the thread ended */ }
    }
    return out
  }

  get clk (): number { return this.#clk }

  async mptcpAccepted (): Promise<number> {
    return netstatCounter(await this.ns.exec(['cat', '/proc/net/netstat']), 'MPTcpExt', 'MPCapableSYNRX')
  }

  async concentrator (nodeFlags: readonly string[] = [], dataPlane: 'stream' | 'splice' = 'stream'): Promise<DaemonHandle> {
    const splice = dataPlane === 'splice'
    return startDaemon({
      daemon: 'concentrator',
      ns: this.ns,
      spawn: (argv) => this.spawn(this.relayArgv(argv)),
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
    const threads0 = this.threads(pid)
    const mp0 = await this.mptcpAccepted()
    const args = ['bulk', '--proxy', `${SVC}:${PORTS[path]}`, '--seconds', String(seconds),
      ...(SOCKS_PATHS.has(path) ? ['--socks', `${SINK}:${PORTS.sink}`] : [])]
    const client = new Proc(this.spawn(this.loadArgv(['mptcpize', 'run', ...nodePeer(args)])))
    await client.next('result', (seconds + 30) * 1000)
    const conn = await sink.next('conn', 10_000)
    const end = monotonicUs()
    await sleep(300)
    const cpu1 = this.cpuSeconds(pid)
    const threads = threadDelta(threads0, this.threads(pid), this.#clk)
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
      windowUs: [start, end],
      threads
    }
  }

  /** Short connections through `path` for `seconds`; the relay's CPU over the run (socat: its reaped children too). */
  async churn (path: RelayPath, round: number, pid: number, seconds: number): Promise<ChurnRun> {
    const cpu0 = this.cpuSeconds(pid)
    const args = ['churn', '--proxy', `${SVC}:${CHURN_PORTS[path]}`, '--seconds', String(seconds), '--concurrency', '32',
      ...(SOCKS_PATHS.has(path) ? ['--socks', `${SINK}:${PORTS.rr}`] : [])]
    const client = new Proc(this.spawn(this.loadArgv(['mptcpize', 'run', ...nodePeer(args)])))
    const res = await client.next('result', (seconds + 60) * 1000)
    await sleep(300)
    const cpu1 = this.cpuSeconds(pid)
    const cpu = cpu1.user - cpu0.user + cpu1.system - cpu0.system
    return churnRun(path, round, { count: res['count'] as number, failed: res['failed'] as number, ms: res['ms'] as number }, cpu)
  }

  /** n idle SOCKS5 relays through the concentrator (MPTCP client), held until `stop()`. */
  openIdle (n: number, port: number = PORTS.ours): Proc {
    return new Proc(this.spawn(this.loadArgv(withNofile(['mptcpize', 'run',
      ...nodePeer(['idle', '--proxy', `${SVC}:${port}`, '--socks', `${SINK}:${PORTS.sink}`, '--count', String(n)])]))))
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
  async socat (target: number = PORTS.sink, port: number = PORTS.socat): Promise<Proc> {
    const p = new Proc(this.spawn(this.relayArgv(['socat', '-b', '131072', `SOCKET-LISTEN:2:262:x${sockaddrHex(SVC, port)},reuseaddr,fork`,
      `TCP:${SINK}:${target}`])))
    await this.listening(port, p)
    return p
  }

  /**
   * HAProxy (mode tcp, one thread, defaults otherwise) under `mptcpize run`: Debian's 2.6 has no
   * MPTCP listener, so mptcpize makes its sockets MPTCP; towards the plain-TCP sink the connection
   * falls back to TCP at the handshake.
   */
  async haproxy (): Promise<Proc> {
    const cfg = `/tmp/${NS}-haproxy.cfg`
    writeFileSync(cfg, haproxyConfig(nofile))
    const p = new Proc(this.spawn(this.relayArgv(withNofile(['mptcpize', 'run', 'haproxy', '-db', '-f', cfg]))))
    await this.listening(PORTS.haproxy, p)
    return p
  }

  async listening (port: number, p: Proc): Promise<void> {
    for (let i = 0; i < 50; i++) {
      if ((await this.ns.exec(['ss', '-Hltn', `sport = :${port}`])).trim() !== '') return
      await sleep(100)
    }
    throw new Error(`nothing listens on ${port}: ${p.stderr}`)
  }
}

/** `nofile`: the RLIMIT_NOFILE it runs with; HAProxy wants about two fds per connection and refuses a maxconn it cannot hold. */
export function haproxyConfig (nofile: number): string {
  return [
    'global', '  nbthread 1', `  maxconn ${Math.max(100, Math.floor(nofile / 2) - 200)}`, '',
    'defaults', '  mode tcp', '  timeout connect 5s', '  timeout client 120s', '  timeout server 120s', '',
    'listen relay', `  bind ${SVC}:${PORTS.haproxy}`, `  server sink ${SINK}:${PORTS.sink}`, '',
    'listen rr', `  bind ${SVC}:${CHURN_PORTS.haproxy}`, `  server rr ${SINK}:${PORTS.rr}`, ''
  ].join('\n')
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
  /** Reference relays (`--refs socat,haproxy`). */
  refs: Array<'socat' | 'haproxy'>
  /** Seconds of short connections per path and round (0: no churn). */
  churnSeconds: number
  pin: 'auto' | 'on' | 'off'
}

function parseOptions (argv: readonly string[]): RelayOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      seconds: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '5' },
      conns: { type: 'string', default: '10000' },
      'no-idle': { type: 'boolean', default: false },
      profile: { type: 'string', default: 'auto' },
      heap: { type: 'string', default: '0' },
      out: { type: 'string', default: join(REPO_ROOT, 'bench', 'results') },
      note: { type: 'string', multiple: true },
      'data-plane': { type: 'string', default: 'stream,splice' },
      refs: { type: 'string', default: 'socat,haproxy' },
      'churn-seconds': { type: 'string', default: '4' },
      pin: { type: 'string', default: 'auto' }
    }
  })
  const refs = values.refs.split(',').filter((p): p is 'socat' | 'haproxy' => p === 'socat' || p === 'haproxy')
  if (!['auto', 'on', 'off'].includes(values.pin)) throw new Error('--pin: auto, on or off')
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
    planes: [...new Set(planes)],
    refs: [...new Set(refs)],
    churnSeconds: Number(values['churn-seconds']) > 0 ? clamp(Number(values['churn-seconds']), 1, 20) : 0,
    pin: values.pin as RelayOptions['pin']
  }
}

/** ours, splice, socat, haproxy, ours, splice, … on the same sink (the paths in `pids`). */
async function abab (bench: Bench, pids: Partial<Record<RelayPath, number>>, sink: Proc, o: RelayOptions): Promise<ThroughputRun[]> {
  const runs: ThroughputRun[] = []
  for (let r = 1; r <= o.rounds; r++) {
    for (const path of RELAY_PATHS) {
      const pid = pids[path]
      if (pid === undefined) continue
      const res = await bench.throughput(path, r, pid, sink, o.seconds)
      process.stderr.write(`${path} round ${r}: ${res.gbps.toFixed(2)} Gbit/s, ${res.gbpsPerCore.toFixed(2)} Gbit/s per core\n`)
      runs.push(res)
    }
  }
  return runs
}

/** Churn rounds (at most 3) over the same paths, interleaved like the throughput rounds. */
async function churnRounds (bench: Bench, pids: Partial<Record<RelayPath, number>>, o: RelayOptions): Promise<ChurnRun[]> {
  const runs: ChurnRun[] = []
  if (o.churnSeconds === 0) return runs
  for (let r = 1; r <= Math.min(3, o.rounds); r++) {
    for (const path of RELAY_PATHS) {
      const pid = pids[path]
      if (pid === undefined) continue
      const res = await bench.churn(path, r, pid, o.churnSeconds)
      process.stderr.write(`${path} churn ${r}: ${Math.round(res.perSecond)} conn/s, ${Math.round(res.perCoreSecond)} per core-second, ${res.failed} failed\n`)
      runs.push(res)
    }
  }
  return runs
}

type Measured = Pick<RelayBenchResult, 'runs' | 'churn' | 'summary' | 'ratioPerCore' | 'spliceRatioPerCore' | 'idle' | 'spliceIdle' | 'profile' | 'heap'>

/** Everything measured inside the namespace: idle memory, ABAB throughput, profile, heap. */
async function measure (bench: Bench, o: RelayOptions, conns: number, notes: string[]): Promise<Measured> {
  await bench.ns.exec(['ip', 'addr', 'add', `${SVC}/32`, 'dev', 'lo'])
  await bench.ns.exec(['ip', 'addr', 'add', `${SINK}/32`, 'dev', 'lo'])
  // The churn opens thousands of connections per second between the same two addresses: the
  // namespace's own port range and TIME_WAIT reuse keep a later path from running out of ports.
  await bench.ns.exec(['sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=1024 65535', 'net.ipv4.tcp_tw_reuse=1'])
  const sink = new Proc(bench.spawn(bench.loadArgv(withNofile(nodePeer(['sink', '--listen', `${SINK}:${PORTS.sink}`])))))
  await sink.next('ready', 30_000)
  const rr = new Proc(bench.spawn(bench.loadArgv(withNofile(nodePeer(['rr', '--listen', `${SINK}:${PORTS.rr}`])))))
  await rr.next('ready', 30_000)
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
  const refs = await startRefs(bench, o, notes)
  const pids: Partial<Record<RelayPath, number>> = { ...refs.pids }
  if (conc !== undefined) pids.ours = conc.pid
  if (spliced !== undefined) pids.splice = spliced.pid
  const runs = await abab(bench, pids, sink, o)
  const churn = await churnRounds(bench, { ...pids, ...refs.churnPids }, o)
  for (const c of [conc, spliced]) {
    if (c !== undefined && await c.metric('hybrid_mptcp_fallbacks_total') > 0) notes.push('some connections fell back to TCP (hybrid_mptcp_fallbacks_total > 0)')
  }
  await conc?.stop()
  await spliced?.stop()
  for (const p of refs.procs) p.kill('SIGTERM')
  const summary = summariseRuns(runs)
  const perCore = (p: RelayPath): number => summary[p]?.gbpsPerCoreMedian ?? NaN
  const ratioPerCore = perCore('ours') / perCore('socat')
  const spliceRatioPerCore = spliced === undefined ? undefined : { socat: perCore('splice') / perCore('socat'), ours: perCore('splice') / perCore('ours') }
  const wantProfile = conc !== undefined && (o.profile === 'always' || (o.profile === 'auto' && ratioPerCore < 1))
  const profile = wantProfile ? await profileRun(bench, sink, o.seconds) : undefined
  const heap = o.heap > 0 ? { connections: o.heap, ...await heapBreakdown(bench, o.heap, PROFILE_DIR) } : undefined
  return {
    runs,
    churn,
    summary,
    ratioPerCore,
    ...(spliceRatioPerCore !== undefined ? { spliceRatioPerCore } : {}),
    ...(idle !== undefined ? { idle } : {}),
    ...(spliceIdle !== undefined ? { spliceIdle } : {}),
    ...(profile !== undefined ? { profile } : {}),
    ...(heap !== undefined ? { heap } : {})
  }
}

/** socat and HAProxy as asked by `--refs`; a missing HAProxy is a note, not a failure. */
async function startRefs (bench: Bench, o: RelayOptions, notes: string[]) {
  const procs: Proc[] = []
  const pids: Partial<Record<RelayPath, number>> = {}
  const churnPids: Partial<Record<RelayPath, number>> = {}
  if (o.refs.includes('socat')) {
    const socat = await bench.socat()
    procs.push(socat)
    pids.socat = socat.child.pid ?? 0
    if (o.churnSeconds > 0) {
      const socatRr = await bench.socat(PORTS.rr, CHURN_PORTS.socat)
      procs.push(socatRr)
      churnPids.socat = socatRr.child.pid ?? 0
    }
  }
  if (o.refs.includes('haproxy')) {
    if ((await run(['sh', '-c', 'command -v haproxy || true'])).trim() === '') {
      notes.push('HAProxy not installed (Debian package haproxy; `node scripts/system-deps.mjs --for bench`): not measured')
    } else {
      const h = await bench.haproxy()
      procs.push(h)
      pids.haproxy = h.child.pid ?? 0
    }
  }
  return { procs, pids, churnPids }
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
  const pin = o.pin === 'on' || (o.pin === 'auto' && cpus().length >= 2)
  if (pin) notes.push(`pinned: the relays on CPU ${RELAY_CPU}, the load generators (clients, sinks) on CPU ${LOAD_CPU} (taskset)`)
  const bench = new Bench(await createNamespace(NS), clk, pin)
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
