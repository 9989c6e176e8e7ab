/**
 * Failover and failback end to end (docs/failover.md), in the lab (prefix hat-fo-), daemons from
 * dist/ in socks5 mode with the lab's defaults (probe responder, CPE health and failover on,
 * `multipath.rules: off`, kernel profile of labFailoverConfig):
 * - a running download (rate-limited, through the CPE) survives everything below, no reset;
 * - DSL blackhole: once health says dsl down, new LAN connections all succeed (over LTE);
 * - DSL returns: both accesses carry subflows of the running connection again;
 * - DSL carrier down: new connections succeed; carrier up again: new connections succeed and are
 *   MPTCP with a subflow per access;
 * - the kernel never disabled MPTCP (MPTcpExtBlackhole, MPCapableSYNTXDisabled unchanged).
 * Measured figures are printed as `# failover` lines. Needs `npx tsc -b` first.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { startDaemon, type DaemonHandle } from '../../lab/daemons.ts'
import { labCpeConfig, labModeConcentratorConfig } from '../../lab/lab-daemons-config.ts'
import { LAB_PORTS } from '../../lab/addresses.ts'
import { getProfile } from '../../lab/link-profile.ts'
import { e2eSkipReason } from '../../lab/netns.ts'
import { buildLab, type Lab } from '../../lab/topology.ts'
import { parseMptcpMib } from '../../shared/src/metrics/kernel-mib.ts'

const PREFIX = 'hat-fo-'
const skip = e2eSkipReason()
const profiles = { dsl: getProfile('vdsl'), lte: getProfile('lte') }
const NEW_CONNECTIONS = 5
const sleep = async (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A rate-limited HTTP download for `seconds`; prints bytes, the longest gap between data after a 2 s warm-up (own pauses excluded) and any error. */
const downloadScript = (url: string, bytesPerSecond: number, seconds: number): string => `
const http = require('node:http')
const t0 = Date.now(); let bytes = 0; let last = Date.now(); let maxGap = 0; let gapAt = 0; let error = null; let done = false
const finish = () => { if (done) return; done = true; console.log(JSON.stringify({ bytes, maxGapMs: maxGap, gapAtMs: gapAt, error })); process.exit(0) }
const req = http.get(${JSON.stringify(url)}, (res) => {
  res.on('data', (b) => {
    const now = Date.now(); if (now - t0 > 2000 && now - last > maxGap) { maxGap = now - last; gapAt = last - t0 }
    last = now; bytes += b.length
    const ahead = bytes / ${bytesPerSecond} * 1000 - (now - t0)
    if (ahead > 5) { res.pause(); setTimeout(() => { last = Date.now(); res.resume() }, ahead) }
  })
  res.on('error', (e) => { error = e.code ?? e.message; finish() })
  res.on('end', finish)
})
req.on('error', (e) => { error = e.code ?? e.message; finish() })
setTimeout(() => { req.destroy(); finish() }, ${seconds * 1000})`

interface Download { bytes: number, maxGapMs: number, gapAtMs: number, error: string | null }

describe('failover in the lab', { skip: skip ?? false, concurrency: false, timeout: 300_000 }, () => {
  const h: {
    t0?: number,
    marks: string[],
    lab?: Lab,
    conc?: DaemonHandle,
    cpe?: DaemonHandle,
    mib0?: Map<string, number>,
    download?: Promise<Download> | undefined,
    bg?: ChildProcess | undefined
  } = { marks: [] }
  const lab = (): Lab => { assert.ok(h.lab); return h.lab }
  const cpe = (): DaemonHandle => { assert.ok(h.cpe); return h.cpe }
  const url = (path: string): string => `http://${lab().plan.internet.servers[0]?.v4 ?? ''}:${LAB_PORTS.http}${path}`

  before(async () => {
    const l = h.lab = await buildLab({ prefix: PREFIX, profiles })
    h.conc = await startDaemon({
      daemon: 'concentrator',
      config: labModeConcentratorConfig('socks5', { plan: l.plan }),
      ns: l.ns.hag,
      spawn: (argv) => l.spawn('hag', argv)
    })
    h.cpe = await startDaemon({
      daemon: 'cpe',
      config: labCpeConfig('socks5', { plan: l.plan }),
      ns: l.ns.cpe,
      spawn: (argv) => l.spawn('cpe', argv)
    })
    h.mib0 = await mib()
  })
  after(async () => {
    if (h.bg?.pid !== undefined) { try { process.kill(h.bg.pid, 'SIGKILL') } catch { /* gone */ } }
    await h.download?.catch(() => null)
    await h.cpe?.stop().catch(() => null)
    await h.conc?.stop().catch(() => null)
    await h.lab?.teardown()
  })

  const mark = (what: string): void => { h.marks.push(`${what} ${((Date.now() - (h.t0 ?? Date.now())) / 1000).toFixed(1)} s`) }
  const mib = async (): Promise<Map<string, number>> => parseMptcpMib(await lab().ns.cpe.exec(['cat', '/proc/net/netstat']))
  const healthState = async (path: string): Promise<string | undefined> => {
    const r = await cpe().get('/api/v1/uplinks')
    return (JSON.parse(r.body) as {
      uplinks: Array<{
        name: string,
        health?: { state: string }
      }>
    }).uplinks.find((u) => u.name === path)?.health?.state
  }
  const steeredTo = async (): Promise<string | null> => {
    const r = await cpe().get('/api/v1/status')
    return (JSON.parse(r.body) as { failover?: { steeredTo: string | null } }).failover?.steeredTo ?? null
  }
  /** Polls (bounded) until `fn` is true; returns the ms it took. */
  const waitFor = async (what: string, fn: () => Promise<boolean>, boundMs: number): Promise<number> => {
    const t0 = Date.now()
    while (Date.now() - t0 < boundMs) {
      if (await fn()) return Date.now() - t0
      await sleep(20)
    }
    throw new Error(`${what}: not within ${boundMs} ms; ss: ${lastSs}; ${cpe().logTail(1500)}`)
  }
  /** One new LAN connection through the CPE: HTTP status and TTFB (s), or the curl error. */
  const curl = async (path = '/1k', maxTime = 8): Promise<{ ok: boolean, ttfb: number, out: string }> => {
    try {
      const out = await lab().ns.lan.exec(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code} %{time_starttransfer}', '--max-time',
        String(maxTime), url(path)], { timeoutMs: (maxTime + 5) * 1000 })
      const [code, ttfb] = out.trim().split(' ')
      return { ok: code === '200', ttfb: Number(ttfb), out }
    } catch (err) { return { ok: false, ttfb: NaN, out: String((err as Error).message).slice(0, 200) } }
  }
  const newConnections = async (label: string): Promise<void> => {
    const results = []
    for (let i = 0; i < NEW_CONNECTIONS; i++) results.push(await curl())
    const ttfb = results.map((r) => r.ttfb)
    console.log(`# failover ${label}: ${results.filter((r) => r.ok).length}/${NEW_CONNECTIONS} new connections ok, TTFB ${ttfb.map((t) => `${(t * 1000).toFixed(0)}`).join(' ')} ms`)
    assert.deepEqual(results.filter((r) => !r.ok).map((r) => r.out), [], `${label}: failed connections`)
  }
  /** Local addresses of the established subflows towards the concentrator. */
  let lastSs = ''
  const subflowSources = async (): Promise<string[]> => {
    const out = lastSs = await lab().ns.cpe.exec(['ss', '-tnH', 'state', 'established', 'dport', '=', ':1080'])
    return out.split('\n').map((l) => l.trim().split(/\s+/)[2]?.replace(/:\d+$/, '').replace(/%.*$/, '') ?? '').filter((a) => a !== '')
  }
  const bothAccesses = async (): Promise<boolean> => {
    const s = await subflowSources()
    const p = lab().plan.access
    return s.includes(p.dsl.cpeSide.cpe.v4) && s.includes(p.lte.cpeSide.cpe.v4)
  }

  test('baseline: both up, new connections steered to dsl, a running download over both accesses', async () => {
    await waitFor('dsl and lte up', async () => (await healthState('dsl')) === 'up' && (await healthState('lte')) === 'up', 5000)
    assert.equal(await steeredTo(), 'dsl')
    assert.match(await lab().ns.cpe.exec(['ip', 'rule', 'show']), /32001:\s+from all lookup 100/)
    assert.equal((await lab().ns.cpe.exec(['sysctl', '-n', 'net.mptcp.blackhole_timeout'])).trim(), '0')
    h.t0 = Date.now()
    h.download = lab().ns.lan.exec(['node', '-e', downloadScript(url('/100M'), 1_500_000, 40)],
      { timeoutMs: 60_000 }).then((o) => JSON.parse(o) as Download)
    const ms = await waitFor('running download on both accesses', bothAccesses, 5000)
    console.log(`# failover baseline: running download has subflows on dsl and lte after ${ms} ms`)
  })

  test('DSL blackhole: new connections succeed over LTE; back: both accesses carry subflows again', async () => {
    const early = curl('/1k', 15) // started inside the detection window
    await lab().setAccessState('dsl', 'blackhole')
    const t0 = Date.now()
    mark('blackhole on')
    try {
      const detect = await waitFor('dsl down', async () => (await healthState('dsl')) === 'down', 4000)
      const steer = await waitFor('steered to lte', async () => (await steeredTo()) === 'lte', 2000)
      console.log(`# failover blackhole: dsl down after ${detect} ms, new connections steered to lte ${steer} ms later`)
      await newConnections('during DSL blackhole')
      const e = await early
      console.log(`# failover blackhole: connection opened just before the blackhole: ${e.ok ? 'ok' : 'failed'} (TTFB ${(e.ttfb * 1000).toFixed(0)} ms)`)
      await sleep(Math.max(0, 4000 - (Date.now() - t0)))
    } finally {
      await lab().setAccessState('dsl', 'up')
      mark('blackhole off')
    }
    const t1 = Date.now()
    await waitFor('dsl up', async () => (await healthState('dsl')) === 'up', 5000)
    const up = Date.now() - t1
    const both = await waitFor('running download on both accesses again', bothAccesses, 8000)
    console.log(`# failover blackhole end: dsl up after ${up} ms, running download on dsl and lte again ${Date.now() - t1} ms after the restore (${both} ms after health up)`)
    assert.equal(await steeredTo(), 'dsl')
  })

  test('DSL carrier down and up: new connections succeed during and after; MPTCP with a subflow per access', async () => {
    await sleep(1200) // past the hold-down
    await lab().setAccessState('dsl', 'down')
    mark('carrier down')
    try {
      await waitFor('dsl down', async () => (await healthState('dsl')) === 'down', 2000)
      await waitFor('steered to lte', async () => (await steeredTo()) === 'lte', 2000)
      await newConnections('during DSL carrier loss')
      await sleep(2000)
    } finally {
      await lab().setAccessState('dsl', 'up')
      mark('carrier up')
    }
    const t1 = Date.now()
    await waitFor('dsl up', async () => (await healthState('dsl')) === 'up', 5000)
    await waitFor('steered to dsl', async () => (await steeredTo()) === 'dsl', 2000)
    await newConnections('after the DSL carrier flap')
    const both = await waitFor('running download on both accesses again', bothAccesses, 8000)
    console.log(`# failover carrier flap: running download on dsl and lte again ${Date.now() - t1} ms after the link came back (${both} ms after the check started)`)
  })

  test('the running download survived; a fresh connection is MPTCP on both accesses; MPTCP never disabled', async () => {
    assert.ok(h.download)
    const d = await h.download
    h.download = undefined
    console.log(`# failover running download: ${(d.bytes / 1e6).toFixed(1)} MB, longest stall ${d.maxGapMs} ms at ${(d.gapAtMs / 1000).toFixed(1)} s, error ${String(d.error)} (${h.marks.join(', ')})`)
    assert.equal(d.error, null, 'running download reset')
    assert.ok(d.bytes > 10_000_000, `running download carried ${d.bytes} bytes`)
    await waitFor('no subflow left', async () => (await subflowSources()).length === 0, 5000)
    h.bg = lab().spawn('lan', ['curl', '-s', '-o', '/dev/null', '--limit-rate', '500k', '--max-time', '20', url('/100M')])
    const ms = await waitFor('fresh connection on both accesses', bothAccesses, 8000)
    console.log(`# failover fresh connection after the outages: subflows on dsl and lte after ${ms} ms`)
    if (h.bg.pid !== undefined) process.kill(h.bg.pid, 'SIGKILL')
    h.bg = undefined
    const m = await mib()
    const delta = (k: string): number => (m.get(k) ?? 0) - (h.mib0?.get(k) ?? 0)
    console.log(`# failover kernel MIB deltas: Blackhole ${delta('Blackhole')}, MPCapableSYNTXDisabled ${delta('MPCapableSYNTXDisabled')}, MPCapableSYNTXDrop ${delta('MPCapableSYNTXDrop')}, RmAddr ${delta('RmAddr')}, MPJoinSynTx ${delta('MPJoinSynTx')}`)
    assert.equal(delta('Blackhole'), 0)
    assert.equal(delta('MPCapableSYNTXDisabled'), 0)
    assert.equal(await cpe().metric('hybrid_mptcp_blackhole_detected_total'), 0)
    assert.ok(await cpe().metric('hybrid_path_failovers_total', { from_path: 'dsl', to_path: 'lte' }) >= 2)
    assert.ok(await cpe().metric('hybrid_failover_duration_seconds_count', { path: 'dsl' }) >= 2)
    assert.ok(await cpe().metric('hybrid_failback_duration_seconds_count', { path: 'dsl' }) >= 2)
  })

  test('stop restores the kernel settings and removes the steering rules', async () => {
    await cpe().stop()
    assert.equal((await lab().ns.cpe.exec(['sysctl', '-n', 'net.mptcp.blackhole_timeout'])).trim(), '3600')
    assert.equal((await lab().ns.cpe.exec(['sysctl', '-n', 'net.ipv4.tcp_rto_max_ms'])).trim(), '120000')
    assert.doesNotMatch(await lab().ns.cpe.exec(['ip', 'rule', 'show']), /3200[01]:/)
    assert.doesNotMatch(await lab().ns.cpe.exec(['ip', 'mptcp', 'endpoint', 'show']),
      new RegExp(lab().plan.access.dsl.cpeSide.cpe.v4.replace(/\./g, '\\.')))
  })
})
