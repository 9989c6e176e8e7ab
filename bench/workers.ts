/**
 * `npm run bench -- workers [--workers 1,2] [--streams 4] [--seconds 5] [--rounds 3] [--ns-prefix hat-bench-]
 * [--out bench/results] [--note text]`
 *
 * Throughput of the concentrator with `workers: 1` against `workers: 2` (docs/scale-out.md, "Many
 * cores on one machine"), side by side in one run, in one namespace (loopback, documentation
 * addresses, removed at the end): per round and per worker count, a fresh concentrator, then
 * `--streams` bulk MPTCP clients (bench/relay-peer.ts `bulk` under `mptcpize run`, one SOCKS5 relay
 * each) write in parallel for `--seconds` to one discard sink. One relay is one connection and is
 * served by one worker, so several streams are needed for a second worker to help. Reported: the
 * aggregate goodput (bytes the sink received / the longest stream's time), the concentrator's CPU
 * (supervisor and workers, /proc/<pid>/stat) and the median ratio. The clients and the sink run on
 * the same cores as the workers: on a small machine they take a large share.
 * Writes bench/results/workers-<date>.{md,json}.
 */
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createNamespace, ownPrefix, removeNamespaces, removeStaleRuns, run } from '../lab/netns.ts'
import { startDaemon, type DaemonHandle } from '../lab/daemons.ts'
import { REPO_ROOT } from '../lab/topology.ts'
import { Bench, Proc } from './relay.ts'
import { parseProcStat } from './relay-report.ts'

const SVC = '203.0.113.200'
const SINK = '203.0.113.10'
const PORTS = { socks: 1080, sink: 5001, mgmt: 9090 } as const
const PEER = 'bench/relay-peer.ts'

interface Options { workers: number[], streams: number, seconds: number, rounds: number, prefix: string, out: string, notes: string[] }

interface Run {
  workers: number, round: number, streams: number, bytes: number, ms: number, gbps: number, cpuSeconds: number, perWorkerAccepted: number[]
}

function parseOptions (argv: readonly string[]): Options {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      workers: { type: 'string', default: '1,2' },
      streams: { type: 'string', default: '4' },
      seconds: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '3' },
      'ns-prefix': { type: 'string', default: 'hat-bench-' },
      out: { type: 'string', default: join(REPO_ROOT, 'bench', 'results') },
      note: { type: 'string', multiple: true }
    }
  })
  const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, Number.isFinite(x) ? Math.round(x) : lo))
  return {
    workers: values.workers.split(',').map((w) => clamp(Number(w), 1, 16)),
    streams: clamp(Number(values.streams), 1, 64),
    seconds: clamp(Number(values.seconds), 1, 30),
    rounds: clamp(Number(values.rounds), 1, 10),
    prefix: values['ns-prefix'],
    out: values.out,
    notes: values.note ?? []
  }
}

async function concentrator (bench: Bench, workers: number): Promise<DaemonHandle> {
  return startDaemon({
    daemon: 'concentrator',
    ns: bench.ns,
    spawn: (argv) => bench.spawn(argv),
    config: {
      log: { level: 'warn' },
      management: { listen: { host: '127.0.0.1', port: PORTS.mgmt } },
      listeners: [{ host: SVC, port: PORTS.socks, mode: 'socks5' }],
      auth: { trustedPrefixes: ['203.0.113.0/24'] },
      policy: { ownAddresses: [SVC], hostAddresses: { except: [SINK] } },
      limits: { perSourceMaxConnections: 100_000 },
      workers
    }
  })
}

/** The concentrator's processes: the supervisor and, with workers > 1, every worker (from /api/v1/status). */
async function pids (conc: DaemonHandle): Promise<number[]> {
  const s = JSON.parse((await conc.get('/api/v1/status')).body) as { workers?: Array<{ pid: number | null }> }
  return [conc.pid, ...(s.workers ?? []).flatMap((w) => w.pid === null ? [] : [w.pid])]
}

function cpuOf (pidList: readonly number[], clk: number): number {
  return pidList.reduce((sum, pid) => {
    try {
      const t = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))
      return sum + (t.user + t.system) / clk
    } catch { return sum }
  }, 0)
}

async function oneRun (bench: Bench, sink: Proc, workers: number, round: number, o: Options, clk: number): Promise<Run> {
  const conc = await concentrator(bench, workers)
  try {
    const list = await pids(conc)
    const cpu0 = cpuOf(list, clk)
    const clients = Array.from({ length: o.streams }, () => new Proc(bench.spawn(['mptcpize', 'run', process.execPath, '--import', 'tsx', PEER,
      'bulk', '--proxy', `${SVC}:${PORTS.socks}`, '--socks', `${SINK}:${PORTS.sink}`, '--seconds', String(o.seconds)])))
    await Promise.all(clients.map(async (c) => c.next('result', (o.seconds + 30) * 1000)))
    const conns = await Promise.all(clients.map(async () => sink.next('conn', 10_000)))
    const cpuSeconds = cpuOf(list, clk) - cpu0
    const bytes = conns.reduce((n, c) => n + (c['bytes'] as number), 0)
    const ms = Math.max(...conns.map((c) => c['ms'] as number))
    const perWorkerAccepted = workers === 1
      ? [await conc.metric('hybrid_connections_accepted_total')]
      : await Promise.all(Array.from({ length: workers }, async (_, i) => conc.metric('hybrid_connections_accepted_total', { worker: String(i) })))
    const r = { workers, round, streams: o.streams, bytes, ms, gbps: bytes * 8 / 1e9 / (ms / 1000), cpuSeconds, perWorkerAccepted }
    process.stderr.write(`workers ${workers} round ${round}: ${r.gbps.toFixed(2)} Gbit/s, concentrator CPU ${cpuSeconds.toFixed(1)} s, streams per worker ${perWorkerAccepted.join('/')}\n`)
    return r
  } finally {
    await conc.stop(15_000)
  }
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2
}

interface Result {
  date: string,
  command: string,
  machine: Record<string, unknown>,
  runs: Run[]
  summary: Record<string, { gbpsMedian: number, cpuMedian: number }>,
  ratio: number,
  notes: string[]
}

function render (r: Result): string {
  const lines = [
    `# Concentrator workers benchmark ${r.date}`,
    '',
    `Command: \`${r.command}\``,
    '',
    `Machine: ${Object.entries(r.machine).map(([k, v]) => `${k} ${String(v)}`).join(', ')}`,
    '',
    '| workers | round | streams | Gbit/s | concentrator CPU s | streams per worker |',
    '|---|---|---|---|---|---|',
    ...r.runs.map((x) => `| ${x.workers} | ${x.round} | ${x.streams} | ${x.gbps.toFixed(2)} | ${x.cpuSeconds.toFixed(1)} | ${x.perWorkerAccepted.join(' / ')} |`),
    '',
    '| workers | median Gbit/s | median concentrator CPU s |',
    '|---|---|---|',
    ...Object.entries(r.summary).map(([w, s]) => `| ${w} | ${s.gbpsMedian.toFixed(2)} | ${s.cpuMedian.toFixed(1)} |`),
    '',
    `Ratio of the medians (last worker count / first): **${r.ratio.toFixed(2)}**`,
    '',
    ...r.notes.map((n) => `- ${n}`),
    ''
  ]
  return lines.join('\n')
}

export async function runWorkersBench (argv: readonly string[]): Promise<number> {
  const o = parseOptions(argv)
  const clk = Number((await run(['getconf', 'CLK_TCK'])).trim())
  const prefix = ownPrefix(o.prefix)
  await removeStaleRuns(o.prefix)
  const bench = new Bench(await createNamespace(`${prefix}workers`), clk)
  try {
    await bench.ns.exec(['ip', 'addr', 'add', `${SVC}/32`, 'dev', 'lo'])
    await bench.ns.exec(['ip', 'addr', 'add', `${SINK}/32`, 'dev', 'lo'])
    const sink = new Proc(bench.spawn([process.execPath, '--import', 'tsx', PEER, 'sink', '--listen', `${SINK}:${PORTS.sink}`]))
    await sink.next('ready', 30_000)
    const runs: Run[] = []
    // Alternating worker counts, round by round: drift of the machine's load hits both alike.
    for (let round = 1; round <= o.rounds; round++) {
      for (const w of o.workers) runs.push(await oneRun(bench, sink, w, round, o, clk))
    }
    const summary = Object.fromEntries(o.workers.map((w) => {
      const mine = runs.filter((x) => x.workers === w)
      return [String(w), { gbpsMedian: median(mine.map((x) => x.gbps)), cpuMedian: median(mine.map((x) => x.cpuSeconds)) }]
    }))
    const first = summary[String(o.workers[0])]?.gbpsMedian ?? 0
    const last = summary[String(o.workers[o.workers.length - 1])]?.gbpsMedian ?? 0
    const date = new Date().toISOString().slice(0, 10)
    const result = {
      date,
      command: `npm run bench -- workers ${argv.join(' ')}`.trim(),
      machine: { cpu: cpus()[0]?.model ?? '?', cores: cpus().length, kernel: release(), node: process.version, loadavg1: loadavg()[0]?.toFixed(2) ?? '?' },
      runs,
      summary,
      ratio: first > 0 ? last / first : 0,
      notes: [
        `${o.streams} parallel bulk MPTCP clients, ${o.seconds} s each, through SOCKS5 to one discard sink, all in one namespace on loopback`,
        'the clients (Node under mptcpize) and the sink share the machine\'s cores with the concentrator\'s workers',
        ...o.notes
      ]
    }
    mkdirSync(o.out, { recursive: true })
    writeFileSync(join(o.out, `workers-${date}.json`), JSON.stringify(result, null, 2) + '\n')
    writeFileSync(join(o.out, `workers-${date}.md`), render(result))
    process.stdout.write(render(result))
    return 0
  } finally {
    bench.killAll()
    await removeNamespaces(prefix)
  }
}
