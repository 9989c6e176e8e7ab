/**
 * `npm run bench -- latency [--samples 24] [--starts 3] [--planes direct,shadowsocks,socks5,convert,transparent]
 * [--dsl vdsl] [--lte lte] [--ns-prefix hat-bench-lat-] [--log-level warn] [--out bench/results] [--note text]`
 *
 * Setup latency as a LAN user sees it (issue 17 item 5), side by side in one run on one lab
 * (lab/topology.ts, profiles vdsl + lte): curl's `time_starttransfer` of /1k from the LAN host to the
 * HTTP server on inet (lab/ttfb.ts), one new connection per fetch, through
 * - direct: no agent (plain TCP over DSL), the reference;
 * - shadowsocks: OpenMPTCProuter's data plane, `ss-redir` on cpe (an nft redirect of the LAN's
 *   connections to it) and `ss-server` on hag's service address, both under `mptcpize run`;
 * - socks5, convert, transparent: the built CPE agent and concentrator (lab/mode-runners.ts).
 * Per data plane its daemons are started `--starts` times; after each start the first fetch is
 * taken on its own (the first connection pays for what a daemon does only once), after the last
 * start `--samples` more follow. Reported: median, p90 and the first fetch, each over direct TCP.
 * Writes bench/results/latency-<date>.{md,json}. Needs root (namespaces) and `npm run build`.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { LAB_PORTS } from '../lab/addresses.ts'
import { DAEMON_MODES, type DaemonMode } from '../lab/lab-daemons-config.ts'
import { getProfile } from '../lab/link-profile.ts'
import { startModeSession } from '../lab/mode-runners.ts'
import { ownPrefix, removeStaleRuns } from '../lab/netns.ts'
import { buildLab, REPO_ROOT, type Lab } from '../lab/topology.ts'
import { TRANSPARENT_PORTS } from '../lab/transparent-setup.ts'
import { measureTtfb } from '../lab/ttfb.ts'
import { latencyRows, renderLatencyMarkdown, type LatencyBenchResult, type LatencySeries } from './latency-report.ts'

const PLANES = ['direct', 'shadowsocks', ...DAEMON_MODES] as const
type Plane = typeof PLANES[number]

const SS = { serverPort: 8388, redirPort: 1100, method: 'chacha20-ietf-poly1305', password: 'lab-bench-password', table: 'hat_bench_ss' } as const

interface Options {
  samples: number, starts: number, planes: Plane[], dsl: string, lte: string, base: string, logLevel: string, out: string, notes: string[]
}

function parseOptions (argv: readonly string[]): Options {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      samples: { type: 'string', default: '24' },
      starts: { type: 'string', default: '3' },
      planes: { type: 'string', default: PLANES.join(',') },
      dsl: { type: 'string', default: 'vdsl' },
      lte: { type: 'string', default: 'lte' },
      'ns-prefix': { type: 'string', default: 'hat-bench-lat-' },
      'log-level': { type: 'string', default: 'warn' },
      out: { type: 'string', default: join(REPO_ROOT, 'bench', 'results') },
      note: { type: 'string', multiple: true }
    }
  })
  const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, Number.isFinite(x) ? Math.round(x) : lo))
  const planes = values.planes.split(',').map((p) => p.trim())
  const unknown = planes.filter((p) => !(PLANES as readonly string[]).includes(p))
  if (unknown.length > 0) throw new Error(`--planes: unknown ${unknown.join(',')} (known: ${PLANES.join(',')})`)
  return {
    samples: clamp(Number(values.samples), 1, 500),
    starts: clamp(Number(values.starts), 1, 10),
    planes: planes as Plane[],
    dsl: values.dsl,
    lte: values.lte,
    base: values['ns-prefix'],
    logLevel: values['log-level'],
    out: values.out,
    notes: values.note ?? []
  }
}

/** A started data plane: `stop` undoes it. */
interface Started { stop: () => Promise<void> }

async function waitListening (lab: Lab, role: 'cpe' | 'hag', port: number): Promise<void> {
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    const out = await lab.ns[role].exec(['ss', '-Hltn', `sport = :${port}`]).catch(() => '')
    if (out.trim() !== '') return
    await sleep(50)
  }
  throw new Error(`nothing listens on ${role}:${port} after 10 s`)
}

/** ss-server on hag's service address, ss-redir on cpe, the LAN's connections to inet redirected to it. */
async function startShadowsocks (lab: Lab): Promise<Started> {
  const svc = lab.plan.service.v4
  const common = ['-k', SS.password, '-m', SS.method, '--no-delay']
  const server = lab.spawn('hag', ['mptcpize', 'run', 'ss-server', '-s', svc, '-p', String(SS.serverPort), ...common])
  const redir = lab.spawn('cpe', ['mptcpize', 'run', 'ss-redir', '-s', svc, '-p', String(SS.serverPort), '-b', '0.0.0.0',
    '-l', String(SS.redirPort), ...common])
  const kill = (): void => { for (const c of [redir, server]) if (c.pid !== undefined && c.exitCode === null) c.kill('SIGTERM') }
  try {
    await waitListening(lab, 'hag', SS.serverPort)
    await waitListening(lab, 'cpe', SS.redirPort)
    const rules = `table ip ${SS.table} {\n  chain pre {\n    type nat hook prerouting priority dstnat; policy accept;\n` +
      `    iifname "${lab.plan.lan.cpeIf}" ip daddr ${lab.plan.internet.servers[0]!.v4} tcp dport ${LAB_PORTS.http} redirect to :${SS.redirPort}\n  }\n}\n`
    await lab.ns.cpe.exec(['nft', '-f', '-'], { input: rules })
  } catch (err) {
    kill()
    throw err
  }
  return {
    stop: async () => {
      await lab.ns.cpe.exec(['nft', 'delete', 'table', 'ip', SS.table]).catch(() => undefined)
      kill()
      await sleep(200)
    }
  }
}

async function startPlane (lab: Lab, plane: Plane, start: number, o: Options): Promise<Started> {
  if (plane === 'direct') return { stop: async () => {} }
  if (plane === 'shadowsocks') return startShadowsocks(lab)
  // A transparent restart within 60 s needs another join port (docs/transparent.md).
  const session = await startModeSession(lab, plane as DaemonMode, { logLevel: o.logLevel, joinPort: TRANSPARENT_PORTS.join + start })
  return { stop: async () => { await session.stop() } }
}

async function measurePlane (lab: Lab, plane: Plane, o: Options): Promise<LatencySeries> {
  const firstMs: number[] = []
  let samplesMs: readonly number[] = []
  for (let start = 0; start < o.starts; start++) {
    const p = await startPlane(lab, plane, start, o)
    try {
      const first = await measureTtfb(lab, 1)
      firstMs.push(first.samplesMs[0]!)
      if (start === o.starts - 1) samplesMs = (await measureTtfb(lab, o.samples)).samplesMs
    } finally {
      await p.stop()
    }
    // Direct has no daemons to restart: the pause stands for one, so its "first" fetch also follows an idle second.
    await sleep(1000)
  }
  return { name: plane, firstMs, samplesMs }
}

export async function runLatencyBench (argv: readonly string[]): Promise<number> {
  const o = parseOptions(argv)
  await removeStaleRuns(o.base)
  const prefix = ownPrefix(o.base)
  const log = (m: string): void => { process.stderr.write(`${m}\n`) }
  log(`building the lab ${prefix}* (dsl=${o.dsl}, lte=${o.lte})`)
  const lab = await buildLab({ prefix, profiles: { dsl: getProfile(o.dsl), lte: getProfile(o.lte) } })
  const onSignal = (): void => { lab.teardown().catch(() => undefined).finally(() => process.exit(130)).catch(() => undefined) }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const series: LatencySeries[] = []
  try {
    // One fetch to warm the lab's ARP/ND caches and the HTTP server before anything is measured.
    await measureTtfb(lab, 2)
    for (const plane of o.planes) {
      log(`${plane}: ${o.starts} start(s), first fetch after each, then ${o.samples} fetches`)
      const s = await measurePlane(lab, plane, o)
      series.push(s)
      log(`${plane}: first ${s.firstMs.join('/')} ms, median ${latencyRows([s], plane)[0]!.medianMs} ms`)
    }
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await lab.teardown()
  }
  const date = new Date().toISOString().slice(0, 10)
  const result: LatencyBenchResult = {
    date,
    command: ['npm run bench -- latency', ...argv].join(' '),
    host: { kernel: release(), cpus: cpus().length, loadavg: loadavg() },
    profiles: { dsl: o.dsl, lte: o.lte },
    url: `http://${lab.plan.internet.servers[0]!.v4}:${LAB_PORTS.http}/1k`,
    series,
    rows: latencyRows(series),
    notes: o.notes
  }
  mkdirSync(o.out, { recursive: true })
  const file = join(o.out, `latency-${date}`)
  writeFileSync(`${file}.json`, `${JSON.stringify(result, null, 2)}\n`)
  const md = renderLatencyMarkdown(result)
  writeFileSync(`${file}.md`, md)
  process.stdout.write(md)
  log(`wrote ${file}.{md,json}`)
  return 0
}
