/**
 * New connections caught in the detection window of a DSL blackhole (docs/failover.md, "Connects
 * caught in the detection window"), in the lab (prefix hat-rd-), daemons from dist/ with the lab's
 * defaults (health + failover on, `multipath.rules: off`), once per mode: socks5, convert,
 * transparent. Per mode:
 * - a LAN client (node in lan) opens CONNECTIONS fresh HTTP connections through the CPE, one every
 *   STEP_MS, starting the moment the DSL router drops everything (carrier up): at least MIN_CAUGHT
 *   of them leave over DSL before path health says dsl down (≈ 0.2–0.3 s with the lab's profile),
 *   which is asserted (started before the steering to lte); the rest start after it (over LTE);
 * - asserts 100 % succeed, each first byte within the steering time + 2 LTE TTFBs + MARGIN_MS (a
 *   loaded 2-core host), and that hybrid_upstream_redials_total counted them (≤ one per connection);
 * - measures the LTE-only TTFB during the outage (after the steering) and the DSL TTFB before it.
 * Measured figures are printed as `# redial` lines. Needs `npx tsc -b` first.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { LAB_PORTS } from '../../lab/addresses.ts'
import { DAEMON_MODES, type DaemonMode } from '../../lab/lab-daemons-config.ts'
import { getProfile } from '../../lab/link-profile.ts'
import { startModeSession, type ModeSession } from '../../lab/mode-runners.ts'
import { e2eSkipReason } from '../../lab/netns.ts'
import { buildLab, type Lab } from '../../lab/topology.ts'

const PREFIX = 'hat-rd-'
const skip = e2eSkipReason()
const profiles = { dsl: getProfile('vdsl'), lte: getProfile('lte') }
const CONNECTIONS = 10
const STEP_MS = 20
/**
 * Of the CONNECTIONS, at least this many must start before the steering (caught in the detection window, ≈
 * 0.2–0.3 s with the lab's health profile).
 */
const MIN_CAUGHT = 5
/** Slack on the first-byte bound: scheduling noise of a shared 2-core host. */
const MARGIN_MS = 1500
const sleep = async (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

interface Fetch { i: number, startMs: number, ttfbMs: number | null, status: number | null, error: string | null }
interface FetchRun { t0: number, results: Fetch[] }

/**
 * `n` fresh HTTP GETs (no keep-alive), one every `step` ms, from SIGUSR1 on (or at once with
 * `now`); prints { t0 (epoch ms of the go), results } when all are done. Each bounded by 12 s.
 */
const fetchScript = (url: string, n: number, step: number, now: boolean): string => `
const http = require('node:http')
const results = []
let t0 = 0
const record = (r) => { results.push(r); if (results.length === ${n}) { console.log(JSON.stringify({ t0, results: results.sort((a, b) => a.i - b.i) })); process.exit(0) } }
const one = (i) => {
  const s = Date.now(); let done = false
  const fin = (r) => { if (!done) { done = true; record({ i, startMs: s - t0, ...r }) } }
  const req = http.get(${JSON.stringify(url)}, { agent: false }, (res) => {
    const ttfbMs = Date.now() - s
    res.resume()
    res.on('end', () => fin({ ttfbMs, status: res.statusCode, error: null }))
    res.on('error', (e) => fin({ ttfbMs, status: res.statusCode, error: e.code ?? e.message }))
  })
  req.on('error', (e) => fin({ ttfbMs: null, status: null, error: e.code ?? e.message }))
  req.setTimeout(12000, () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })))
}
const go = () => { t0 = Date.now(); for (let i = 0; i < ${n}; i++) setTimeout(() => one(i), i * ${step}) }
if (${String(now)}) go(); else { process.on('SIGUSR1', go); console.log('ready') }
setTimeout(() => { console.log(JSON.stringify({ t0, results })); process.exit(0) }, 30000)`

/** Epoch ms of the first CPE log line (pino JSON, ISO `time`) matching `re` at or after `from`. */
function logTime (log: string, re: RegExp, from: number): number | undefined {
  for (const line of log.split('\n')) {
    if (!re.test(line)) continue
    try {
      const time = (JSON.parse(line) as { time?: string | number }).time
      const t = typeof time === 'string' ? Date.parse(time) : time
      if (t !== undefined && t >= from) return t
    } catch { /* not JSON */ }
  }
  return undefined
}

const stats = (xs: number[]): string => xs.length === 0 ? '-' : `${Math.min(...xs)}–${Math.max(...xs)} ms (mean ${Math.round(xs.reduce((a, b) => a + b, 0) / xs.length)})`

describe('failover: connects caught in the detection window are re-dialled (every mode)',
  { skip: skip ?? false, concurrency: false, timeout: 240_000 }, () => {
    const h: { lab?: Lab, session?: ModeSession | undefined, children: Set<ChildProcess> } = { children: new Set() }
    const lab = (): Lab => { assert.ok(h.lab); return h.lab }
    const url = (): string => `http://${lab().plan.internet.servers[0]?.v4 ?? ''}:${LAB_PORTS.http}/1k`

    before(async () => { h.lab = await buildLab({ prefix: PREFIX, profiles }) })
    after(async () => {
      for (const c of h.children) { try { if (c.pid !== undefined) process.kill(c.pid, 'SIGKILL') } catch { /* gone */ } }
      await h.session?.stop({ keepLogs: false }).catch(() => null)
      await h.lab?.teardown()
    })

    /** Start the fetch script in lan; with `now: false` resolves once it waits for SIGUSR1. */
    const startFetch = async (n: number, step: number, now: boolean): Promise<{ child: ChildProcess, result: Promise<FetchRun> }> => {
      const child = lab().spawn('lan', [process.execPath, '-e', fetchScript(url(), n, step, now)])
      h.children.add(child)
      let out = ''
      child.stdout?.on('data', (b: Buffer) => { out += b.toString() })
      const result = (async () => {
        const [code] = await once(child, 'exit', { signal: AbortSignal.timeout(40_000) }) as [number | null]
        h.children.delete(child)
        const line = out.split('\n').filter((l) => l.startsWith('{')).pop()
        assert.ok(line !== undefined, `fetch script exited ${String(code)} without a result: ${out}`)
        return JSON.parse(line) as FetchRun
      })()
      if (!now) {
        const t0 = Date.now()
        while (!out.includes('ready')) {
          assert.ok(Date.now() - t0 < 10_000, 'fetch script not ready within 10 s')
          await sleep(10)
        }
      }
      return { child, result }
    }
    const fetchNow = async (n: number): Promise<FetchRun> => (await startFetch(n, 250, true)).result

    const cpeJson = async <T>(s: ModeSession, path: string): Promise<T> => JSON.parse((await s.cpe.get(path)).body) as T
    const healthState = async (s: ModeSession, path: string): Promise<string | undefined> =>
      (await cpeJson<{ uplinks: Array<{ name: string, health?: { state: string } }> }>(s,
        '/api/v1/uplinks')).uplinks.find((u) => u.name === path)?.health?.state
    const steeredTo = async (s: ModeSession): Promise<string | null> => (await cpeJson<{ failover?: { steeredTo: string | null } }>(s,
      '/api/v1/status')).failover?.steeredTo ?? null
    const waitFor = async (s: ModeSession, what: string, fn: () => Promise<boolean>, boundMs: number): Promise<number> => {
      const t0 = Date.now()
      while (Date.now() - t0 < boundMs) {
        if (await fn()) return Date.now() - t0
        await sleep(50)
      }
      throw new Error(`${what}: not within ${boundMs} ms; ${s.logTail('cpe', 3000)}`)
    }
    const bothUp = async (s: ModeSession): Promise<boolean> => (await healthState(s, 'dsl')) === 'up' && (await healthState(s,
      'lte')) === 'up' && (await steeredTo(s)) === 'dsl'

    /**
   * startModeSession, once more on failure: on a loaded host a daemon can miss its 15 s readiness
   * bound and is killed, leaving the steering rules of a killed CPE behind (removed here first).
   */
    const startSession = async (mode: DaemonMode): Promise<ModeSession> => {
      try {
        return await startModeSession(lab(), mode)
      } catch (err) {
        console.log(`# redial ${mode}: session start failed once (${(err as Error).message.split('\n')[0] ?? ''}); retrying`)
        for (const f of ['-4', '-6']) {
          for (const prio of ['32000',
            '32001']) await lab().ns.cpe.exec(['ip', f, 'rule', 'del', 'priority', prio]).catch(() => '')
        }
        return startModeSession(lab(), mode, { joinPort: 7102 })
      }
    }

    const okTtfbs = (r: FetchRun): number[] => r.results.filter((x) => x.status === 200 && x.ttfbMs !== null).map((x) => x.ttfbMs ?? 0)

    for (const mode of DAEMON_MODES) {
      test(`${mode}: ${CONNECTIONS} connections opened in the first ${(CONNECTIONS - 1) * STEP_MS} ms of a DSL blackhole all succeed`, async () => {
        const s = h.session = await startSession(mode as DaemonMode)
        try {
          await waitFor(s, 'dsl and lte up, steered to dsl', async () => bothUp(s), 10_000)
          const dsl = await fetchNow(3)
          const burst = await startFetch(CONNECTIONS, STEP_MS, false)
          const bh0 = Date.now()
          let lte: FetchRun | undefined
          try {
            await lab().setAccessState('dsl', 'blackhole')
            const bh1 = Date.now()
            assert.ok(burst.child.pid !== undefined)
            process.kill(burst.child.pid, 'SIGUSR1')
            const run = await burst.result
            await waitFor(s, 'steered to lte', async () => (await steeredTo(s)) === 'lte', 5000)
            lte = await fetchNow(3)
            report(mode, s, { bh0, bh1, run, dsl, lte })
            await check(mode, s, { bh0, run, lte })
          } finally {
            await lab().setAccessState('dsl', 'up')
          }
          await waitFor(s, 'dsl back up, steered to dsl', async () => bothUp(s), 10_000)
        } finally {
          await s.stop()
          h.session = undefined
        }
      })
    }

    function report (mode: string, s: ModeSession, m: { bh0: number, bh1: number, run: FetchRun, dsl: FetchRun, lte: FetchRun }): void {
      const log = s.logTail('cpe', 400_000)
      const down = logTime(log, /path dsl down/, m.bh0)
      const steered = logTime(log, /new connections steered to lte/, m.bh0)
      const done = logTime(log, /failover of dsl done/, m.bh0)
      const redials = log.split('\n').filter((l) => l.includes('still unanswered after the path went down') && (logTime(l, /./, m.bh0) ?? 0) > 0).length
      const rel = (t: number | undefined): string => t === undefined ? '?' : `${t - m.bh0} ms`
      const first = m.run.results.map((r) => r.ttfbMs === null ? 'fail' : String(m.run.t0 + r.startMs + r.ttfbMs - m.bh0))
      console.log(`# redial ${mode}: blackhole applied in ${m.bh1 - m.bh0} ms; connections started ${m.run.t0 - m.bh0}–${m.run.t0 - m.bh0 + Math.max(...m.run.results.map((r) => r.startMs))} ms after it; dsl down ${rel(down)}, steered to lte ${rel(steered)}, failover done ${rel(done)}, redials logged ${redials}`)
      console.log(`# redial ${mode}: ${okTtfbs(m.run).length}/${m.run.results.length} ok, TTFB ${stats(okTtfbs(m.run))}; first byte after the blackhole start: ${first.join(' ')} ms`)
      console.log(`# redial ${mode}: reference TTFB over dsl before ${stats(okTtfbs(m.dsl))}, over lte during the outage ${stats(okTtfbs(m.lte))}`)
    }

    async function check (mode: string, s: ModeSession, m: { bh0: number, run: FetchRun, lte: FetchRun }): Promise<void> {
      const failed = m.run.results.filter((r) => r.status !== 200 || r.error !== null)
      assert.deepEqual(failed, [], `${mode}: failed connections; ${s.logTail('cpe', 3000)}`)
      assert.equal(m.run.results.length, CONNECTIONS)
      const log = s.logTail('cpe', 400_000)
      const steered = logTime(log, /new connections steered to lte/, m.bh0)
      assert.ok(steered !== undefined, `${mode}: no steering to lte logged`)
      const caught = m.run.results.filter((r) => m.run.t0 + r.startMs < steered)
      assert.ok(caught.length >= MIN_CAUGHT,
      `${mode}: only ${caught.length} connections started before the steering (caught in the detection window): ${JSON.stringify(m.run.results.map((r) => r.startMs))}, steered ${steered - m.run.t0} ms after the first`)
      const lteMax = Math.max(...okTtfbs(m.lte))
      assert.equal(okTtfbs(m.lte).length, 3, `${mode}: LTE-only reference fetches failed`)
      const bound = steered - m.bh0 + 2 * lteMax + MARGIN_MS
      for (const r of m.run.results) {
        const firstByte = m.run.t0 + r.startMs + (r.ttfbMs ?? Infinity) - m.bh0
        assert.ok(firstByte <= bound,
        `${mode}: connection ${r.i} first byte ${firstByte} ms after the blackhole > ${bound} ms (steered to lte ${steered - m.bh0} ms + 2 × LTE TTFB ${lteMax} + ${MARGIN_MS})`)
      }
      const pathDown = await s.cpe.metric('hybrid_upstream_redials_total', { mode, reason: 'path_down' })
      const stalled = await s.cpe.metric('hybrid_upstream_redials_total', { mode, reason: 'stalled' })
      const total = await s.cpe.metric('hybrid_upstream_redials_total')
      console.log(`# redial ${mode}: hybrid_upstream_redials_total path_down ${pathDown}, stalled ${stalled} (all modes ${total})`)
      assert.ok(pathDown + stalled >= 1, `${mode}: no re-dial counted`)
      assert.ok(pathDown + stalled <= caught.length,
      `${mode}: more re-dials (${pathDown + stalled}) than connections caught in the window (${caught.length})`)
      assert.ok(total <= CONNECTIONS, `${mode}: more re-dials (${total}) than connections`)
    }
  })
