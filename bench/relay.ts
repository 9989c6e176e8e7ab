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
import { resolveBinary, searchDirs } from '../scripts/system-deps.mjs'
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
/**
 * Which way the relay carries the bulk bytes: `concentrator` = MPTCP client → relay → plain-TCP
 * sink (what the concentrator relays); `cpe` = plain-TCP client → relay → MPTCP sink (what the CPE
 * agent relays towards the concentrator).
 */
export type Direction = 'concentrator' | 'cpe'
/** Ports per direction (both directions' relays and sinks can live in one namespace); `inspect*`: the concentrators' inspectors (relay-gc.ts). */
const DIRECTION_PORTS = {
  concentrator: {
    ours: 1080, socat: 1081, splice: 1082, haproxy: 1083, sink: 5001, rr: 5002, mgmt: 9090, mgmtSplice: 9091, inspect: 9229, inspectSplice: 9230
  },
  cpe: {
    ours: 1180, socat: 1181, splice: 1182, haproxy: 1183, sink: 5011, rr: 5012, mgmt: 9190, mgmtSplice: 9191, inspect: 9239, inspectSplice: 9240
  }
} as const
type Ports = typeof DIRECTION_PORTS[Direction]
const PORTS: Ports = DIRECTION_PORTS.concentrator
/** CPU the relays run on and CPU the load generators (clients, sinks) run on, when pinned. */
const RELAY_CPU = '1'
const LOAD_CPU = '0'
/** Where each relay listens for the churn (socat and HAProxy: a second listener towards the request/response server). */
const churnPorts = (p: Ports): Record<RelayPath, number> => ({ ours: p.ours, splice: p.splice, socat: p.socat + 50, haproxy: p.haproxy + 50 })
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
  readonly dir: Direction
  readonly p: Ports
  readonly churnPorts: Record<RelayPath, number>
  constructor (ns: Netns, clk: number, pin = false, dir: Direction = 'concentrator') {
    this.ns = ns
    this.#clk = clk
    this.#pin = pin
    this.dir = dir
    this.p = DIRECTION_PORTS[dir]
    this.churnPorts = churnPorts(this.p)
  }

  /** Whether the client speaks SOCKS5 first on `path` (the concentrator; the CPE direction's relay has no handshake). */
  socks (path: RelayPath): boolean { return this.dir === 'concentrator' && SOCKS_PATHS.has(path) }

  /**
   * The CPE direction's relay (relay-cpe-relay.ts, built): plain TCP in, MPTCP out through the
   * shared `dial()` and `relay()` with the given data plane; one listener for bulk and one for churn.
   */
  async cpeRelay (plane: 'stream' | 'splice', target: number = this.p.sink): Promise<Proc> {
    const port = plane === 'splice' ? this.p.splice : this.p.ours
    const main = join(REPO_ROOT, 'dist', 'bench', 'relay-cpe-relay.js')
    const argv = [process.execPath, main, '--listen', `${SVC}:${port}`, '--upstream', `${SINK}:${target}`, '--data-plane', plane]
    const p = new Proc(this.spawn(this.relayArgv(withNofile(argv))))
    const ready = await p.next('ready', 30_000)
    if (ready['dataPlane'] !== plane) throw new Error(`CPE-direction relay: asked for ${plane}, runs ${String(ready['dataPlane'])}`)
    return p
  }

  /** argv of a client: under `mptcpize run` (MPTCP) towards the concentrator, plain TCP in the CPE direction. */
  clientArgv (argv: readonly string[]): string[] {
    return this.loadArgv(this.dir === 'concentrator' ? ['mptcpize', 'run', ...argv] : [...argv])
  }

  /** argv of a sink: plain TCP behind the concentrator, MPTCP (`mptcpize run`) behind the CPE. */
  sinkArgv (argv: readonly string[]): string[] {
    return this.loadArgv(this.dir === 'cpe' ? ['mptcpize', 'run', ...argv] : [...argv])
  }

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
        management: { listen: { host: '127.0.0.1', port: splice ? this.p.mgmtSplice : this.p.mgmt } },
        listeners: [{ host: SVC, port: splice ? this.p.splice : this.p.ours, mode: 'socks5' }],
        dataPlane,
        // Two concentrators in one namespace: each its own crash journal.
        stateDir: `/run/${NS}-${this.dir}-${dataPlane}`,
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
    const args = ['bulk', '--proxy', `${SVC}:${this.p[path]}`, '--seconds', String(seconds),
      ...(this.socks(path) ? ['--socks', `${SINK}:${this.p.sink}`] : [])]
    const client = new Proc(this.spawn(this.clientArgv(nodePeer(args))))
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
    const args = ['churn', '--proxy', `${SVC}:${this.churnPorts[path]}`, '--seconds', String(seconds), '--concurrency', '32',
      ...(this.socks(path) ? ['--socks', `${SINK}:${this.p.rr}`] : [])]
    const client = new Proc(this.spawn(this.clientArgv(nodePeer(args))))
    const res = await client.next('result', (seconds + 60) * 1000)
    await sleep(300)
    const cpu1 = this.cpuSeconds(pid)
    const cpu = cpu1.user - cpu0.user + cpu1.system - cpu0.system
    return churnRun(path, round, { count: res['count'] as number, failed: res['failed'] as number, ms: res['ms'] as number }, cpu)
  }

  /** n idle SOCKS5 relays through the concentrator (MPTCP client), held until `stop()`. */
  openIdle (n: number, port: number = this.p.ours): Proc {
    return new Proc(this.spawn(withNofile(this.clientArgv(
      nodePeer(['idle', '--proxy', `${SVC}:${port}`, '--socks', `${SINK}:${this.p.sink}`, '--count', String(n)])))))
  }

  /** A full GC in the concentrator listening for the inspector on `inspectPort` (relay-gc.ts), then a short settle. */
  async fullGc (inspectPort: number): Promise<void> {
    await this.ns.exec([process.execPath, '--experimental-websocket', '--no-warnings', '--import', 'tsx', 'bench/relay-gc.ts', String(inspectPort)],
      { timeoutMs: 60_000 })
    await sleep(500)
  }

  /**
   * RSS and V8 heap with `count` idle relays. With `inspectPort` (the concentrator runs with
   * `--inspect`), both readings come right after a full GC: the figure is what the connections keep;
   * the settling series (no forced GC) shows what a reading at a random moment would have said.
   */
  async idle (conc: DaemonHandle, count: number, port: number = this.p.ours, inspectPort?: number, allocSeconds = 0): Promise<IdleResult> {
    const open = (n: number): Proc => this.openIdle(n, port)
    const status = (): string => readFileSync(`/proc/${conc.pid}/status`, 'utf8')
    // The daemon as started, before any connection (the splice engine's worker starts with the first spliced relay).
    if (inspectPort !== undefined) await this.fullGc(inspectPort)
    const rssFreshKiB = parseVmRss(status())
    const threadsFresh = Number(/^Threads:\s+(\d+)/m.exec(status())?.[1] ?? NaN)
    const warm = open(200)
    await warm.next('ready', 30_000)
    await warm.stop()
    await sleep(1500)
    const rss = (): number => parseVmRss(readFileSync(`/proc/${conc.pid}/status`, 'utf8'))
    const heap = async (): Promise<number> => conc.metric('nodejs_heap_size_used_bytes')
    const sock = async () => parseSockstat(await this.ns.exec(['cat', '/proc/net/sockstat']))
    if (inspectPort !== undefined) await this.fullGc(inspectPort)
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
    const settledRss = rss()
    if (inspectPort !== undefined) await this.fullGc(inspectPort)
    const [rssAfter, heapAfter, sock1] = [rss(), await heap(), await sock()]
    const allocations = inspectPort !== undefined && allocSeconds > 0 ? await this.allocations(inspectPort, allocSeconds) : undefined
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
      fullGc: inspectPort !== undefined,
      rssFreshKiB,
      threadsFresh,
      threadsAfter: Number(/^Threads:\s+(\d+)/m.exec(status())?.[1] ?? NaN),
      kibPerConnectionSettled: (settledRss - rssBefore) / opened,
      heapBeforeBytes: heapBefore,
      heapAfterBytes: heapAfter,
      heapBytesPerConnection: (heapAfter - heapBefore) / opened,
      activeReported,
      fds,
      kernelSocketMemPagesDelta: sock1.memPages - sock0.memPages,
      closedBackToZero: active === 0,
      series,
      ...(allocations !== undefined ? { allocations } : {})
    }
  }

  /** V8's sampling heap profiler for `seconds` (relay-gc.ts --sample): where an idle concentrator allocates. */
  async allocations (inspectPort: number, seconds: number): Promise<NonNullable<IdleResult['allocations']>> {
    const out = await this.ns.exec([process.execPath, '--experimental-websocket', '--no-warnings', '--import', 'tsx', 'bench/relay-gc.ts',
      String(inspectPort), '--sample', String(seconds)], { timeoutMs: (seconds + 60) * 1000 })
    const a = JSON.parse(out) as { top: Array<{ fn: string, bytes: number }> }
    return { seconds, top: a.top.map((t) => ({ site: t.fn, kibPerSecond: Math.round(t.bytes / 1024 / seconds * 10) / 10 })) }
  }

  /**
   * socat forking per connection: an MPTCP listener relaying to the plain-TCP sink (concentrator
   * direction), or a TCP listener relaying to the MPTCP sink (`SOCKET-CONNECT:2:262:`, CPE direction).
   */
  async socat (target: number = this.p.sink, port: number = this.p.socat): Promise<Proc> {
    const [listen, connect] = this.dir === 'concentrator'
      ? [`SOCKET-LISTEN:2:262:x${sockaddrHex(SVC, port)},reuseaddr,fork`, `TCP:${SINK}:${target}`]
      : [`TCP-LISTEN:${port},bind=${SVC},reuseaddr,fork`, `SOCKET-CONNECT:2:262:x${sockaddrHex(SINK, target)}`]
    const p = new Proc(this.spawn(this.relayArgv(['socat', '-b', '131072', listen, connect])))
    await this.listening(port, p)
    return p
  }

  /**
   * HAProxy (mode tcp, one thread, defaults otherwise) under `mptcpize run`: Debian's 2.6 has no
   * MPTCP listener, so mptcpize makes its sockets MPTCP; towards the plain-TCP sink the connection
   * falls back to TCP at the handshake.
   */
  /** Where HAProxy was found (startRefs: the installer's lookup). */
  haproxyBin: string | undefined

  async haproxy (): Promise<Proc> {
    const cfg = `/tmp/${NS}-${this.dir}-haproxy.cfg`
    writeFileSync(cfg, haproxyConfig(nofile, this.p))
    const p = new Proc(this.spawn(this.relayArgv(withNofile(['mptcpize', 'run', this.haproxyBin ?? 'haproxy', '-db', '-f', cfg]))))
    await this.listening(this.p.haproxy, p)
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

/**
 * `nofile`: the RLIMIT_NOFILE it runs with; HAProxy wants about two fds per connection and refuses a
 * maxconn it cannot hold. Under `mptcpize run` all its sockets are MPTCP: towards a plain-TCP peer
 * (the concentrator direction's sink, the CPE direction's client) they fall back to TCP at the handshake.
 */
export function haproxyConfig (nofile: number, p: Ports = PORTS): string {
  const churn = churnPorts(p)
  return [
    'global', '  nbthread 1', `  maxconn ${Math.max(100, Math.floor(nofile / 2) - 200)}`, '',
    'defaults', '  mode tcp', '  timeout connect 5s', '  timeout client 120s', '  timeout server 120s', '',
    'listen relay', `  bind ${SVC}:${p.haproxy}`, `  server sink ${SINK}:${p.sink}`, '',
    'listen rr', `  bind ${SVC}:${churn.haproxy}`, `  server rr ${SINK}:${p.rr}`, ''
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
  /** Seconds of allocation sampling with the idle connections open (0: off). */
  idleAlloc: number
  /** `--direction concentrator|cpe|both`. */
  directions: Direction[]
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
      pin: { type: 'string', default: 'auto' },
      'idle-alloc': { type: 'string', default: '0' },
      direction: { type: 'string', default: 'concentrator' }
    }
  })
  const refs = values.refs.split(',').filter((p): p is 'socat' | 'haproxy' => p === 'socat' || p === 'haproxy')
  if (!['auto', 'on', 'off'].includes(values.pin)) throw new Error('--pin: auto, on or off')
  const planes = values['data-plane'].split(',').filter((p): p is 'stream' | 'splice' => p === 'stream' || p === 'splice')
  if (planes.length === 0) throw new Error('--data-plane: stream, splice or stream,splice')
  const directions: Direction[] = values.direction === 'both' ? ['concentrator', 'cpe'] : values.direction === 'cpe' ? ['cpe'] : ['concentrator']
  if (!['concentrator', 'cpe', 'both'].includes(values.direction)) throw new Error('--direction: concentrator, cpe or both')
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
    pin: values.pin as RelayOptions['pin'],
    idleAlloc: Number(values['idle-alloc']) > 0 ? clamp(Number(values['idle-alloc']), 1, 60) : 0,
    directions
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

type Measured = Pick<RelayBenchResult, 'runs' | 'churn' | 'summary' | 'ratioPerCore' | 'spliceRatioPerCore' | 'idle' | 'spliceIdle' | 'profile' | 'heap' | 'spliceHeap'>

/** Everything measured inside the namespace: idle memory, ABAB throughput, profile, heap. */
async function prepareNamespace (ns: Netns): Promise<void> {
  await ns.exec(['ip', 'addr', 'add', `${SVC}/32`, 'dev', 'lo'])
  await ns.exec(['ip', 'addr', 'add', `${SINK}/32`, 'dev', 'lo'])
  // The churn opens thousands of connections per second between the same two addresses: the
  // namespace's own port range and TIME_WAIT reuse keep a later path from running out of ports.
  await ns.exec(['sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=1024 65535', 'net.ipv4.tcp_tw_reuse=1'])
}

async function measure (bench: Bench, o: RelayOptions, conns: number, notes: string[]): Promise<Measured> {
  const sink = new Proc(bench.spawn(withNofile(bench.sinkArgv(nodePeer(['sink', '--listen', `${SINK}:${bench.p.sink}`])))))
  await sink.next('ready', 30_000)
  const rr = new Proc(bench.spawn(withNofile(bench.sinkArgv(nodePeer(['rr', '--listen', `${SINK}:${bench.p.rr}`])))))
  await rr.next('ready', 30_000)
  // With the idle measure the concentrators listen for the inspector (loopback in the namespace, no
  // session attached outside the two forced GCs): an idle inspector costs no CPU on the relay path.
  if (bench.dir === 'cpe') return measureCpe(bench, o, sink, rr, notes)
  const inspectPort = (plane: 'stream' | 'splice'): number => plane === 'splice' ? bench.p.inspectSplice : bench.p.inspect
  const inspect = (plane: 'stream' | 'splice'): string[] => o.idle ? [`--inspect=127.0.0.1:${inspectPort(plane)}`] : []
  const conc = o.planes.includes('stream') ? await bench.concentrator(inspect('stream')) : undefined
  const spliced = o.planes.includes('splice') ? await bench.concentrator(inspect('splice'), 'splice') : undefined
  const idleOf = async (c: DaemonHandle | undefined, port: number, plane: 'stream' | 'splice'): Promise<IdleResult | undefined> => {
    if (!o.idle || c === undefined) return undefined
    process.stderr.write(`idle (${plane}): opening ${conns} relayed connections\n`)
    const res = await bench.idle(c, conns, port, inspectPort(plane), o.idleAlloc)
    process.stderr.write(`idle (${plane}): ${res.kibPerConnection.toFixed(2)} KiB RSS per connection, ${res.fds} fds open\n`)
    return res
  }
  const idle = await idleOf(conc, bench.p.ours, 'stream')
  const spliceIdle = await idleOf(spliced, bench.p.splice, 'splice')
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
  const heap = o.heap > 0 && o.planes.includes('stream') ? { connections: o.heap, ...await heapBreakdown(bench, o.heap, PROFILE_DIR) } : undefined
  const spliceHeap = o.heap > 0 && o.planes.includes('splice')
    ? { connections: o.heap, ...await heapBreakdown(bench, o.heap, PROFILE_DIR, 'splice', bench.p.splice) }
    : undefined
  return {
    runs,
    churn,
    summary,
    ratioPerCore,
    ...(spliceRatioPerCore !== undefined ? { spliceRatioPerCore } : {}),
    ...(idle !== undefined ? { idle } : {}),
    ...(spliceIdle !== undefined ? { spliceIdle } : {}),
    ...(profile !== undefined ? { profile } : {}),
    ...(heap !== undefined ? { heap } : {}),
    ...(spliceHeap !== undefined ? { spliceHeap } : {})
  }
}

/**
 * The CPE direction: ours / splice are relay-cpe-relay.ts (no SOCKS5), throughput and churn only
 * (the idle memory, profile and heap measures are the concentrator's). The churn's request/response
 * server is reached through a second relay process per data plane on the churn port.
 */
async function measureCpe (bench: Bench, o: RelayOptions, sink: Proc, rr: Proc, notes: string[]): Promise<Measured> {
  const procs: Proc[] = [sink, rr]
  const pids: Partial<Record<RelayPath, number>> = {}
  const churnPids: Partial<Record<RelayPath, number>> = {}
  for (const plane of o.planes) {
    const relayProc = await bench.cpeRelay(plane)
    procs.push(relayProc)
    pids[plane === 'splice' ? 'splice' : 'ours'] = relayProc.child.pid ?? 0
  }
  if (o.idle) notes.push('CPE direction: no idle-memory, profile or heap measure (those are the concentrator direction\'s)')
  const refs = await startRefs(bench, o, notes)
  Object.assign(pids, refs.pids)
  Object.assign(churnPids, refs.churnPids)
  const runs = await abab(bench, pids, sink, o)
  // The churn of ours / splice: restart each relay towards the request/response server.
  const churnRelays: Proc[] = []
  if (o.churnSeconds > 0) {
    for (const plane of o.planes) {
      const path: RelayPath = plane === 'splice' ? 'splice' : 'ours'
      procs.find((p) => p.child.pid === pids[path])?.kill('SIGTERM')
      await sleep(300)
      const r = await bench.cpeRelay(plane, bench.p.rr)
      churnRelays.push(r)
      churnPids[path] = r.child.pid ?? 0
    }
  }
  const churn = await churnRounds(bench, { ...pids, ...churnPids }, o)
  for (const p of [...procs, ...churnRelays, ...refs.procs]) p.kill('SIGTERM')
  const summary = summariseRuns(runs)
  const perCore = (p: RelayPath): number => summary[p]?.gbpsPerCoreMedian ?? NaN
  const spliceRatioPerCore = o.planes.includes('splice') ? { socat: perCore('splice') / perCore('socat'), ours: perCore('splice') / perCore('ours') } : undefined
  return { runs, churn, summary, ratioPerCore: perCore('ours') / perCore('socat'), ...(spliceRatioPerCore !== undefined ? { spliceRatioPerCore } : {}) }
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
      const socatRr = await bench.socat(bench.p.rr, bench.churnPorts.socat)
      procs.push(socatRr)
      churnPids.socat = socatRr.child.pid ?? 0
    }
  }
  if (o.refs.includes('haproxy')) {
    // The installer's own lookup (PATH, then the sbin directories a non-root PATH lacks).
    bench.haproxyBin = resolveBinary('haproxy', searchDirs(process.env['PATH']))
    if (bench.haproxyBin === undefined) {
      notes.push('HAProxy not installed (Debian package haproxy; `node scripts/system-deps.mjs --for bench`): not measured')
    } else {
      const h = await bench.haproxy()
      procs.push(h)
      pids.haproxy = h.child.pid ?? 0
    }
  }
  return { procs, pids, churnPids }
}

/** What the CPE direction's report says about its paths. */
const CPE_DIRECTION_NOTES = [
  'CPE direction: plain-TCP client → relay → MPTCP sink (`mptcpize run`). *ours* / *splice*: bench/relay-cpe-relay.ts (built), what the CPE ' +
  'agent does with a LAN connection once its mode has chosen the upstream: accept TCP, `dial()` MPTCP, `relay()` with the CPE\'s default ' +
  'limits and the stream or splice data plane; no SOCKS5 and none of the CPE agent\'s control plane (uplinks, steering, Convert), like ' +
  'socat (`TCP-LISTEN` → `SOCKET-CONNECT:2:262:`, MPTCP) and HAProxy (under `mptcpize run`: its listener falls back to TCP for the ' +
  'plain-TCP client, its server connections are MPTCP). "MPTCP accepts" counts the sink\'s MPTCP handshakes (1 per run: the upstream leg is MPTCP).'
]

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
  const ns = await createNamespace(NS)
  const benches: Bench[] = []
  mkdirSync(PROFILE_DIR, { recursive: true })
  try {
    await prepareNamespace(ns)
    const date = new Date().toISOString().slice(0, 10)
    for (const dir of o.directions) {
      const bench = new Bench(ns, clk, pin, dir)
      benches.push(bench)
      const dirNotes = [...notes, ...(dir === 'cpe' ? CPE_DIRECTION_NOTES : [])]
      process.stderr.write(`direction ${dir}\n`)
      const measured = await measure(bench, o, conns, dirNotes)
      bench.killAll()
      const result: RelayBenchResult = {
        date,
        command: `npm run bench -- relay ${argv.join(' ')}`.trim(),
        direction: dir,
        machine,
        seconds: o.seconds,
        rounds: o.rounds,
        ...measured,
        notes: dirNotes
      }
      const base = dir === 'cpe' ? `relay-cpe-${date}` : `relay-${date}`
      mkdirSync(o.out, { recursive: true })
      writeFileSync(join(o.out, `${base}.json`), JSON.stringify(result, null, 2) + '\n')
      writeFileSync(join(o.out, `${base}.md`), renderMarkdown(result))
      process.stdout.write(renderMarkdown(result))
    }
    return 0
  } finally {
    for (const b of benches) b.killAll()
    await removeNamespaces(PREFIX)
  }
}
