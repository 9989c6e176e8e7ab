/**
 * Slow readers and memory (issue 18 item 3, docs/memory.md): N LAN clients each start a large
 * download through the real CPE (TPROXY interception) and concentrator of the lab topology (prefix
 * hat-sr-, `fast` access profiles) and never read it. For SAMPLE_S seconds both daemons' RSS
 * (/proc/<pid>/status VmRSS and /metrics process_resident_memory_bytes) is sampled every second,
 * with the bytes the inet server got rid of. Asserted:
 * - each daemon's RSS growth over its baseline stays under rssBound() (derived from
 *   limits.highWaterMark, see there);
 * - backpressure reached the server: its bytes written stop growing (the kernel buffers along the
 *   path are full) far below what it would send;
 * - then the clients read: every download completes byte-exact, and both daemons go back to 0
 *   connections and 0 sessions.
 * socks5 (the full CPE → concentrator path) and convert (RFC 8803 signalling, same relay) in turn.
 * Both daemons run with limits.userTimeoutMs 10 s, a third of the stall (see STALL_LIMITS).
 *
 * HYBRID_SLOW_READERS (20), HYBRID_SLOW_MIB (64, per download) and HYBRID_SLOW_SECONDS (30) change
 * the load; HYBRID_SLOW_MODES (socks5,convert) the modes. Needs `npx tsc -b` first.
 */
import { after, before, describe, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { e2eSkipReason, removeNamespaces } from '../../lab/netns.ts'
import { getProfile } from '../../lab/link-profile.ts'
import { startModeSession, type ModeSession } from '../../lab/mode-runners.ts'
import { sumMetric, type DaemonHandle } from '../../lab/daemons.ts'
import { LAB_DRAIN_TIMEOUT_MS, type DaemonMode } from '../../lab/lab-daemons-config.ts'
import { buildLab, type Lab } from '../../lab/topology.ts'

const PREFIX = 'hat-sr-'
const N = Number(process.env.HYBRID_SLOW_READERS ?? '20')
const MIB = Number(process.env.HYBRID_SLOW_MIB ?? '64')
const SAMPLE_S = Number(process.env.HYBRID_SLOW_SECONDS ?? '30')
const MODES = (process.env.HYBRID_SLOW_MODES ?? 'socks5,convert').split(',') as DaemonMode[]
const PORT = 5301
const PEER = 'test/e2e/slow-reader-peer.ts'
const KIB = 1024
const MiB = 1024 * KIB
/** The daemons' default limits.highWaterMark (the lab does not change them). */
const HWM = { cpe: 16 * KIB, concentrator: 32 * KIB } as const
const skip = e2eSkipReason()
/**
 * TCP_USER_TIMEOUT well below the stall (default 60 s): the kernel bounds zero-window probing by it
 * too, and the CPE used to drop every stalled download after that long without telling the client
 * (docs/design/limits.md, "A slow reader is not a dead peer"). With 10 s the 30 s stall proves that
 * a live reader keeps its connection however long it pauses.
 */
const STALL_LIMITS = { limits: { drainTimeoutMs: LAB_DRAIN_TIMEOUT_MS, userTimeoutMs: 10_000 } }
type Daemon = keyof typeof HWM

/**
 * The allowed RSS growth of a daemon with `n` stalled downloads. Kernel socket buffers are not in
 * RSS; what a connection may hold in user space is, per relayed direction, the readable buffer of
 * the leg it reads (paused: filled up to the high-water mark, plus the one read in flight, ≤ 64 KiB)
 * and the writable buffer of the leg it writes (write() returned false: up to the mark plus one
 * chunk ≤ 64 KiB): 2 × (hwm + 64 KiB). Twice that covers allocator slack (freed chunks that malloc
 * keeps), so 4 × (hwm + 64 KiB) per connection: 320 KiB on the CPE, 384 KiB on the concentrator.
 * On top, 40 MiB for V8 itself (heap growth before a GC, code compiled for the new paths, the
 * 1 s /metrics scrapes) on a noisy shared 2-core machine: measured growth with 20 stalled
 * downloads was far below (docs/memory.md); without backpressure it is hundreds of MiB.
 */
function rssBound (d: Daemon, n: number): number {
  return n * 4 * (HWM[d] + 64 * KIB) + 40 * MiB
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

function vmRss (pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (m === null) throw new Error(`/proc/${pid}/status has no VmRSS`)
  return Number(m[1]) * KIB
}

/** JSON lines of a peer; `last(type)` is the newest of that type, `wait(type)` resolves on the next. */
function peerLines (child: ChildProcess): {
  last: (type: string) => Record<string, unknown> | undefined,
  wait: (type: string,
    ms: number) => Promise<Record<string, unknown>>
} {
  const latest = new Map<string, Record<string, unknown>>()
  const waiters: Array<{ type: string, resolve: (m: Record<string, unknown>) => void }> = []
  let stderr = ''
  child.stderr?.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-2000) })
  createInterface({ input: child.stdout! }).on('line', (l) => {
    let m: Record<string, unknown>
    try { m = JSON.parse(l) as Record<string, unknown> } catch { return }
    const type = String(m.type)
    latest.set(type, m)
    for (const w of waiters.splice(0).filter((x) => { if (x.type !== type) { waiters.push(x); return false } return true })) w.resolve(m)
  })
  return {
    last: (type) => latest.get(type),
    wait: async (type, ms) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`no ${type} line within ${ms} ms (exit ${String(child.exitCode)}): ${stderr.trim()}`)) }, ms)
      waiters.push({ type, resolve: (m) => { clearTimeout(timer); resolve(m) } })
    })
  }
}

interface Sample {
  atS: number,
  rss: Record<Daemon, number>,
  metricRss: Record<Daemon, number>,
  external: Record<Daemon, number>,
  active: Record<Daemon, number>,
  written: number
}

async function sample (s: ModeSession, atS: number, written: number): Promise<Sample> {
  const h: Record<Daemon, DaemonHandle> = { cpe: s.cpe, concentrator: s.concentrator }
  const [tc, th] = await Promise.all([h.cpe.metricsText(), h.concentrator.metricsText()])
  const m = (text: string, name: string): number => sumMetric(text, name)
  return {
    atS,
    rss: { cpe: vmRss(h.cpe.pid), concentrator: vmRss(h.concentrator.pid) },
    metricRss: { cpe: m(tc, 'process_resident_memory_bytes'), concentrator: m(th, 'process_resident_memory_bytes') },
    external: { cpe: m(tc, 'nodejs_external_memory_bytes'), concentrator: m(th, 'nodejs_external_memory_bytes') },
    active: { cpe: m(tc, 'hybrid_connections_active'), concentrator: m(th, 'hybrid_connections_active') },
    written
  }
}

async function sessionsTotal (h: DaemonHandle): Promise<number> {
  const r = await h.get('/api/v1/sessions?limit=1')
  return (JSON.parse(r.body) as { total: number }).total
}

/** One clients process: `count` downloads, paused; resolves once all are connected. */
async function startClients (lab: Lab, count: number): Promise<{ child: ChildProcess, lines: ReturnType<typeof peerLines> }> {
  const child = lab.spawn('lan',
    [process.execPath, '--import', 'tsx', PEER, 'clients', lab.plan.internet.servers[0]!.v4, String(PORT), String(count), '300'])
  const lines = peerLines(child)
  await lines.wait('connected', 20_000)
  return { child, lines }
}

interface DownloadResult { bytes: number, ok: boolean, error?: string }

/** Let a clients process read to the end; its per-connection results. */
async function readAll (c: Awaited<ReturnType<typeof startClients>>, ms: number): Promise<DownloadResult[]> {
  const done = c.lines.wait('done', ms)
  process.kill(c.child.pid!, 'SIGUSR2')
  return (await done).results as DownloadResult[]
}

const mib = (b: number): string => (b / MiB).toFixed(1)

async function runMode (t: TestContext, lab: Lab, mode: DaemonMode): Promise<void> {
  // One retry: on the shared 2-core machine a daemon has missed startDaemon's 15 s readiness deadline.
  const options = { logLevel: 'warn', overrides: { cpe: STALL_LIMITS, concentrator: STALL_LIMITS } } as const
  const session = await startModeSession(lab, mode, options).catch(async (err: unknown) => {
    t.diagnostic(`start failed once, retrying: ${(err as Error).message.split('\n')[0] ?? ''}`)
    return startModeSession(lab, mode, options)
  })
  let ok = false
  try {
    for (const d of ['cpe', 'concentrator'] as const) {
      const cmd = readFileSync(`/proc/${session[d].pid}/cmdline`, 'utf8')
      assert.match(cmd, new RegExp(`dist/${d}/src/main\\.js`), `${d} pid ${session[d].pid} is the daemon`)
    }
    const server = await lab.startScript('inet', PEER, ['server', lab.plan.internet.servers[0]!.v4, String(PORT), String(MIB * MiB), '600'])
    const serverLines = peerLines(server)
    const written = (): number => Number(serverLines.last('written')?.bytes ?? 0)
    try {
      // Warm-up: two downloads read to the end, so the relay's code is compiled before the baseline.
      const warm = await startClients(lab, 2)
      for (const r of await readAll(warm, 120_000)) assert.deepEqual(r, { bytes: MIB * MiB, ok: true }, 'warm-up download')
      await sleep(2000)
      const base: Sample[] = []
      for (let i = 0; i < 3; i++) { base.push(await sample(session, -3 + i, written())); await sleep(1000) }
      const baseline = (d: Daemon, k: 'rss' | 'external' = 'rss'): number => base.map((s) => s[k][d]).sort((a, b) => a - b)[1]!
      const writtenBefore = written()

      const clients = await startClients(lab, N)
      const t0 = performance.now()
      const series: Sample[] = []
      for (let i = 1; i <= SAMPLE_S; i++) {
        await sleep(t0 + i * 1000 - performance.now())
        series.push(await sample(session, i, written() - writtenBefore))
      }
      const peak = (d: Daemon, k: 'rss' | 'metricRss' | 'external'): number => Math.max(...series.map((s) => s[k][d]))
      const at = (s: number): Sample => series[Math.min(series.length, Math.max(1, s)) - 1]!
      const last = series[series.length - 1]!
      const stallS = Math.max(1, SAMPLE_S - 10)
      const lines = [`${mode}: ${N} stalled downloads of ${MIB} MiB, sampled ${SAMPLE_S} s`]
      for (const d of ['cpe', 'concentrator'] as const) {
        lines.push(`  ${d}: baseline VmRSS ${mib(baseline(d))} MiB, peak ${mib(peak(d, 'rss'))} MiB (growth ${mib(peak(d, 'rss') - baseline(d))} MiB, bound ${mib(rssBound(d, N))} MiB); /metrics RSS peak ${mib(peak(d, 'metricRss'))} MiB; external (Buffers) ${mib(baseline(d, 'external'))} → peak ${mib(peak(d, 'external'))} MiB; connections ${last.active[d]}`)
      }
      lines.push(`  server wrote ${mib(at(stallS).written)} MiB by ${stallS} s, ${mib(last.written)} MiB by ${SAMPLE_S} s (${mib(last.written / N)} MiB per connection in kernel buffers; ${MIB} MiB each to send)`)
      lines.push('  VmRSS MiB per second: ' + series.map((s) => `${mib(s.rss.cpe)}/${mib(s.rss.concentrator)}`).join(' '))
      for (const l of lines) t.diagnostic(l)

      for (const d of ['cpe', 'concentrator'] as const) {
        assert.equal(last.active[d], N + 0, `${d}: all ${N} downloads still open`)
        assert.ok(peak(d, 'rss') - baseline(d) < rssBound(d, N),
          `${d}: VmRSS grew ${mib(peak(d, 'rss') - baseline(d))} MiB (bound ${mib(rssBound(d, N))})`)
        assert.ok(peak(d, 'metricRss') - baseline(d) < rssBound(d, N), `${d}: /metrics RSS grew ${mib(peak(d, 'metricRss') - baseline(d))} MiB`)
      }
      // Backpressure reached the server: nothing (beyond a window's worth per connection) in the last 10 s, and far from done.
      assert.ok(last.written - at(stallS).written < N * 256 * KIB,
        `server still writing: ${mib(last.written - at(stallS).written)} MiB in the last ${SAMPLE_S - stallS} s`)
      assert.ok(last.written < N * MIB * MiB * 0.75, `server wrote ${mib(last.written)} MiB of ${N * MIB}`)

      const results = await readAll(clients, 240_000)
      assert.equal(results.length, N)
      for (const r of results) assert.deepEqual(r, { bytes: MIB * MiB, ok: true }, 'every download completes byte-exact')
      const deadline = performance.now() + 20_000
      let left: number[] = []
      while (performance.now() < deadline) {
        left = await Promise.all([session.cpe.metric('hybrid_connections_active'), session.concentrator.metric('hybrid_connections_active'),
          sessionsTotal(session.cpe), sessionsTotal(session.concentrator)])
        if (left.every((x) => x === 0)) break
        await sleep(500)
      }
      assert.deepEqual(left, [0, 0, 0, 0], 'connections (cpe, concentrator) and sessions (cpe, concentrator) back to 0')
      ok = true
    } finally {
      if (server.exitCode === null) process.kill(server.pid!, 'SIGKILL')
    }
  } finally {
    const { logsKept } = await session.stop({ keepLogs: !ok })
    if (logsKept && ok) {
      t.diagnostic('a daemon did not exit cleanly within the 3 s stop grace (loaded machine); its logs are removed as the test passed')
      rmSync(session.dir, { recursive: true, force: true })
    } else if (logsKept) {
      t.diagnostic(`daemon logs kept in ${session.dir}`)
    }
  }
}

describe('slow readers: stalled downloads stay within the per-connection buffers',
  { skip: skip ?? false, concurrency: false, timeout: 15 * 60_000 }, () => {
    const holder: { lab?: Lab } = {}
    before(async () => {
      holder.lab = await buildLab({
        prefix: PREFIX,
        profiles: { dsl: getProfile('fast'), lte: getProfile('fast') },
        servers: false
      })
    })
    after(async () => {
      await holder.lab?.teardown()
      await removeNamespaces(PREFIX)
    })

    for (const mode of MODES) {
      test(`${mode}: ${N} clients that never read a ${MIB} MiB download`, { timeout: 6 * 60_000 }, async (t) => {
        assert.ok(holder.lab)
        await runMode(t, holder.lab, mode)
      })
    }
  })
