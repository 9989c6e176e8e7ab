/**
 * Transparent mode end to end (issue #7), in the lab (prefix hat-tp-): the built concentrator runs
 * in hag with `transparent.enabled`; a client in cpe (test/e2e/transparent-peer.ts, standing in for
 * the CPE agent's transparent mode: MPTCP straight to the destination, LTE endpoint `subflow
 * fullmesh`) downloads from plain-TCP HTTP servers on inet.
 *
 * Proves: any destination port is intercepted and bonded (two subflows, one per access: the join
 * goes to the announced endpoint thanks to the C flag); aggregate goodput of one download; policy
 * refusal = reset; an MPTCP-speaking destination works; IPv6; setup latency equals a direct
 * connection's; sourceAddress subscriber; stop() restores sysctl/endpoints/rules/table; fail-open
 * (daemon stopped: the MPTCP SYN is forwarded natively, single path, fallback) and fail-closed;
 * under overload an intercepted connection is reset.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { e2eSkipReason } from '../../lab/netns.ts'
import { startDaemon, type DaemonHandle } from '../../lab/daemons.ts'
import { getProfile } from '../../lab/link-profile.ts'
import { buildLab, type Lab } from '../../lab/topology.ts'
import { transparentConcentratorConfig, useFullmeshEndpoints, type TransparentLabOptions } from '../../lab/transparent-setup.ts'
import type { GetResult as PeerResult } from './transparent-peer.ts'

const PREFIX = 'hat-tp-'
const PEER = 'test/e2e/transparent-peer.ts'
const skip = e2eSkipReason()
const profiles = { dsl: getProfile('vdsl'), lte: getProfile('lte') }
const HIGH_PORT = 20_000 + Math.floor(Math.random() * 20_000)
const PORTS = [80, 443, 8080, HIGH_PORT]
const REFUSED_PORT = 2525
const DOWN_SUM_MBPS = 90 // vdsl 50 + lte 40 towards the cpe

type GetResult = PeerResult & { type: 'result' }

/** The CPE agent in mode transparent; the lab installed source routing, the test made the LTE endpoint fullmesh. */
function cpeConfig (lab: Lab): Record<string, unknown> {
  return {
    log: { level: 'debug' },
    management: { listen: { host: '127.0.0.1', port: 9091 } },
    mode: 'transparent',
    uplinks: [
      { name: 'dsl', interface: lab.plan.access.dsl.cpeIf, role: 'dsl' },
      { name: 'lte', interface: lab.plan.access.lte.cpeIf, role: 'lte' }
    ],
    multipath: { rules: 'off' },
    concentrator: { host: lab.plan.service.v4, port: 1080 },
    intercept: { lanInterfaces: [lab.plan.lan.cpeIf] },
    limits: { drainTimeoutMs: 2000 }
  }
}

/** Poll `read` (≤ 3 s) until it returns `want`; returns the last value. */
async function eventually (read: () => Promise<number>, want: number): Promise<number> {
  let v = await read()
  for (let i = 0; i < 30 && v !== want; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    v = await read()
  }
  return v
}

function median (xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : ((s[m - 1]! + s[m]!) / 2)
}

describe('transparent mode (on-path HAG)', { skip: skip ?? false, concurrency: false, timeout: 300_000 }, () => {
  const holder: { lab?: Lab, conc?: DaemonHandle | undefined, cpe?: DaemonHandle | undefined } = {}
  const lab = (): Lab => { assert.ok(holder.lab); return holder.lab }
  const plainServer = (): { v4: string, v6: string } => lab().plan.internet.servers[1]!
  const mptcpServer = (): { v4: string, v6: string } => lab().plan.internet.servers[2]!

  /** Run the peer script in cpe and return its last JSON line. */
  const peer = async <T>(args: readonly string[], timeoutMs = 60_000): Promise<T> => {
    const child = lab().spawn('cpe', [process.execPath, '--import', 'tsx', PEER, ...args])
    let out = ''
    let err = ''
    child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr?.on('data', (d: Buffer) => { err += d.toString() })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
    const [code] = await once(child, 'exit') as [number | null]
    clearTimeout(timer)
    const last = out.trim().split('\n').pop() ?? ''
    assert.equal(code, 0, `peer ${args.join(' ')} exited ${String(code)}: ${err}`)
    return JSON.parse(last) as T
  }
  const get = async (host: string, port: number, bytes: number, mptcp = true): Promise<GetResult> =>
    peer<GetResult>(['get', '--host', host, '--port', String(port), '--bytes', String(bytes), ...(mptcp ? ['--mptcp'] : [])], 90_000)

  const startConc = async (options: TransparentLabOptions = {}): Promise<DaemonHandle> => {
    // A test that failed half-way leaves its concentrator running: stop it, or two daemons intercept
    // the next test's connections (one failure in CI turned into two that way).
    const left = holder.conc
    holder.conc = undefined
    if (left !== undefined) await left.stop(2000)
    const conc = await startDaemon({
      daemon: 'concentrator',
      config: transparentConcentratorConfig({ plan: lab().plan, policy: { deniedPorts: [REFUSED_PORT] }, ...options }),
      ns: lab().ns.hag,
      spawn: (argv) => lab().spawn('hag', argv)
    })
    holder.conc = conc
    return conc
  }
  const stopConc = async (): Promise<void> => {
    const c = holder.conc
    holder.conc = undefined
    if (c !== undefined) assert.equal(await c.stop(), 0, c.logTail())
  }

  before(async () => {
    holder.lab = await buildLab({ prefix: PREFIX, profiles })
    await useFullmeshEndpoints(lab())
    const s = plainServer()
    const m = mptcpServer()
    await lab().startScript('inet', PEER, ['serve', '--host', s.v4, '--host', s.v6, '--ports', [...PORTS, REFUSED_PORT].join(',')])
    await lab().startScript('inet', PEER, ['serve', '--mptcp', '--host', m.v4, '--host', m.v6, '--ports', '80'])
  })
  after(async () => {
    await holder.cpe?.stop(2000)
    await holder.conc?.stop(2000)
    await holder.lab?.teardown()
  })

  test('sysctl before start: joins to the initial address allowed (kernel default)', async () => {
    assert.equal((await lab().ns.hag.exec(['sysctl', '-n', 'net.mptcp.allow_join_initial_addr_port'])).trim(), '1')
  })

  test('every destination port: MPTCP with one subflow per access; join to the announced endpoint', async (t) => {
    const conc = await startConc()
    const dsl = lab().plan.access.dsl.cpeSide.cpe.v4
    const lte = lab().plan.access.lte.cpeSide.cpe.v4
    for (const port of PORTS) {
      const r = await get(plainServer().v4, port, 4_000_000)
      t.diagnostic(`port ${port}: ${r.protocol} fallback=${String(r.fallback)} subflows=${r.subflows} local=${r.subflowLocal.join(',')} ${r.mbps.toFixed(1)} Mbit/s peer=${r.peer ?? '?'}`)
      assert.equal(r.error, undefined)
      assert.equal(r.bytes > 4_000_000, true)
      assert.equal(r.fallback, false, `port ${port}: MPTCP end to end to the HAG`)
      assert.equal(r.subflows, 2, `port ${port}: two subflows`)
      assert.deepEqual(r.subflowLocal.sort(), [dsl, lte].sort())
      assert.equal(r.peer, lab().plan.internet.hag.v4, 're-originated from hag\'s address')
    }
    assert.equal(await conc.metric('hybrid_connections_accepted_total', { mode: 'transparent' }), PORTS.length)
    assert.equal(await conc.metric('hybrid_mptcp_fallbacks_total'), 0)
    const hagSysctl = (await lab().ns.hag.exec(['sysctl', '-n', 'net.mptcp.allow_join_initial_addr_port'])).trim()
    assert.equal(hagSysctl, '0')
  })

  test('IPv6 destination: MPTCP with two subflows', async () => {
    const r = await get(plainServer().v6, 8080, 4_000_000)
    assert.equal(r.error, undefined)
    assert.equal(r.fallback, false)
    assert.equal(r.subflows, 2)
    assert.equal(r.peer, lab().plan.internet.hag.v6)
  })

  test('a destination that speaks MPTCP itself still works (the HAG re-originates TCP)', async () => {
    const r = await get(mptcpServer().v4, 80, 4_000_000)
    assert.equal(r.error, undefined)
    assert.equal(r.fallback, false)
    assert.equal(r.subflows, 2)
  })

  test('a destination refused by the policy gets a reset, counted', async () => {
    const conc = holder.conc!
    const r = await get(plainServer().v4, REFUSED_PORT, 1000)
    assert.equal(r.error, 'ECONNRESET')
    assert.equal(r.bytes, 0)
    assert.equal(await conc.metric('hybrid_connections_rejected_total', { mode: 'transparent', reason: 'acl_denied' }), 1)
  })

  test('one download of ~10 s: goodput against the sum of the access rates', async (t) => {
    const bytes = Math.round(DOWN_SUM_MBPS * 1e6 / 8 * 10)
    const measure = async (label: string): Promise<{ r: Awaited<ReturnType<typeof get>>, ratio: number }> => {
      const r = await get(plainServer().v4, HIGH_PORT, bytes)
      const ratio = r.mbps / DOWN_SUM_MBPS
      t.diagnostic(`${label}download ${(r.bytes / 1e6).toFixed(1)} MB in ${r.seconds.toFixed(2)} s: ${r.mbps.toFixed(1)} Mbit/s = ${(ratio * 100).toFixed(1)} % of ${DOWN_SUM_MBPS}; subflows ${r.subflows}`)
      return { r, ratio }
    }
    // The links are a user-space delay line on a shared 2-core machine: a figure short of the bound
    // is measured once more (both reported, the second asserted), as in the lab and steering tests.
    let { r, ratio } = await measure('')
    if (ratio < 0.8) ({ r, ratio } = await measure('second run: '))
    assert.equal(r.subflows, 2)
    assert.ok(ratio >= 0.8, `goodput ${r.mbps.toFixed(1)} Mbit/s below 80 % of ${DOWN_SUM_MBPS}`)
  })

  test('setup latency (connect → first response byte) equals a direct TCP connection\'s', async (t) => {
    const host = plainServer().v4
    const N = '15'
    const direct = await peer<{ ttfbMs: number[], errors: string[] }>(['latency', '--host', host, '--port', '443', '--count', N])
    const transparent = await peer<{ ttfbMs: number[], errors: string[] }>(['latency', '--host', host, '--port', '443', '--count', N, '--mptcp'])
    assert.deepEqual(direct.errors, [])
    assert.deepEqual(transparent.errors, [])
    const d = median(direct.ttfbMs)
    const m = median(transparent.ttfbMs)
    t.diagnostic(`median of ${N}: direct plain TCP ${d.toFixed(2)} ms, transparent MPTCP ${m.toFixed(2)} ms (difference ${(m - d).toFixed(2)} ms)`)
    assert.ok(m - d < 10, `transparent setup ${m.toFixed(2)} ms vs direct ${d.toFixed(2)} ms`)
  })

  test('stop() restores the sysctl, removes endpoints, rules, routes and the table', async (t) => {
    await stopConc()
    const hag = lab().ns.hag
    t.diagnostic(`hag sockets on the join port after stop: ${(await hag.exec(['ss', '-tanH', 'sport = :7101'])).trim().split('\n').map((l) => l.split(/\s+/)[0]).join(' ')}`)
    assert.equal((await hag.exec(['sysctl', '-n', 'net.mptcp.allow_join_initial_addr_port'])).trim(), '1')
    assert.equal((await hag.exec(['ip', 'mptcp', 'endpoint', 'show'])).trim(), '')
    assert.doesNotMatch(await hag.exec(['ip', 'rule', 'show']), /fwmark/)
    assert.doesNotMatch(await hag.exec(['ip', '-6', 'rule', 'show']), /fwmark/)
    assert.doesNotMatch(await hag.exec(['nft', 'list', 'tables']), /hybrid_hag/)
  })

  test('fail-open: with the concentrator stopped the connection still works, single path, fallback', async () => {
    const r = await get(plainServer().v4, 8080, 2_000_000)
    assert.equal(r.error, undefined)
    assert.equal(r.fallback, true, 'the plain-TCP server answered the MPTCP SYN: fallback')
    assert.equal(r.subflows, 0)
    assert.equal(r.peer, lab().plan.access.dsl.cpeSide.cpe.v4, 'forwarded natively: the server sees the cpe')
  })

  test('sourceAddress subscriber: the destination sees the subscriber\'s DSL address, still bonded', async () => {
    await startConc({ sourceAddress: 'subscriber', joinPort: 7102 })
    const r = await get(plainServer().v4, 443, 4_000_000)
    assert.equal(r.error, undefined)
    assert.equal(r.fallback, false)
    assert.equal(r.subflows, 2)
    assert.equal(r.peer, lab().plan.access.dsl.cpeSide.cpe.v4)
    const r6 = await get(plainServer().v6, 443, 1_000_000)
    assert.equal(r6.error, undefined)
    assert.equal(r6.peer, lab().plan.access.dsl.cpeSide.cpe.v6)
    await stopConc()
  })

  test('under overload an intercepted connection gets a reset, counted (docs/overload.md)', async () => {
    // openFiles 1: the daemon's fds are far over 100 % of it, so every action starts at the first tick.
    const conc = await startConc({ joinPort: 7106, overload: { intervalMs: 100, releaseAfterMs: 60_000, resources: { openFiles: 1 } } })
    const deadline = Date.now() + 5000
    while (!(JSON.parse((await conc.get('/api/v1/status')).body) as { overload: { active: string[] } }).overload.active.includes('refuse_new')) {
      assert.ok(Date.now() < deadline, 'refuse_new within 5 s')
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const r = await get(plainServer().v4, 80, 1000)
    assert.equal(r.error, 'ECONNRESET')
    assert.equal(r.bytes, 0)
    assert.equal(await conc.metric('hybrid_connections_rejected_total', { mode: 'transparent', reason: 'overload' }), 1)
    await stopConc()
  })

  test('fail-closed: works while running; after stop the intercepted SYN is reset (plain TCP unaffected)', async () => {
    await startConc({ failMode: 'closed', joinPort: 7103 })
    const ok = await get(plainServer().v4, 80, 1_000_000)
    assert.equal(ok.fallback, false)
    await stopConc()
    assert.match(await lab().ns.hag.exec(['nft', 'list', 'tables']), /hybrid_hag/, 'the fail-closed table stays')
    const r = await get(plainServer().v4, 80, 1000)
    assert.equal(r.error, 'ECONNREFUSED')
    const plain = await get(plainServer().v4, 80, 1000, false)
    assert.equal(plain.error, undefined)
    await lab().ns.hag.exec(['nft', 'delete', 'table', 'inet', 'hybrid_hag'])
  })

  test('SIGKILL leaves the namespace changed; the next start (another join port) undoes it first, and its clean stop restores the original C flag',
    async () => {
      const hag = lab().ns.hag
      const C_FLAG = ['sysctl', '-n', 'net.mptcp.allow_join_initial_addr_port']
      assert.equal((await hag.exec(C_FLAG)).trim(), '1')
      const crashed = await startConc({ joinPort: 7104 })
      holder.conc = undefined
      process.kill(crashed.pid, 'SIGKILL')
      await crashed.stop(100)
      assert.equal((await hag.exec(C_FLAG)).trim(), '0', 'a SIGKILL leaves the C flag cleared')
      assert.match(await hag.exec(['ip', 'mptcp', 'endpoint', 'show']), /port 7104/)
      assert.match(await hag.exec(['ip', 'rule', 'show']), /fwmark/)
      const next = await startConc({ joinPort: 7105 })
      assert.match(next.logTail(64 * 1024), /did not stop cleanly: undoing what it left/)
      const endpoints = await hag.exec(['ip', 'mptcp', 'endpoint', 'show'])
      assert.doesNotMatch(endpoints, /port 7104/, 'the dead run\'s endpoints are gone')
      assert.match(endpoints, /port 7105/)
      assert.equal((await hag.exec(['ip', 'rule', 'show'])).split('\n').filter((l) => l.includes('fwmark')).length, 1, 'one fwmark rule, not two')
      // 4 MB, as in the first test: on a loaded host a 1 MB download can end before the LTE join is in place.
      const r = await get(plainServer().v4, 80, 4_000_000)
      assert.equal(r.error, undefined)
      assert.equal(r.subflows, 2, 'bonded again: the join reaches the new endpoint')
      await stopConc()
      assert.equal((await hag.exec(C_FLAG)).trim(), '1', 'the original value, not the leaked 0')
      assert.equal((await hag.exec(['ip', 'mptcp', 'endpoint', 'show'])).trim(), '')
      assert.doesNotMatch(await hag.exec(['ip', 'rule', 'show']), /fwmark/)
    })

  test('CPE agent in mode transparent: LAN downloads on several ports are bonded; fail-open counted by the agent', async (t) => {
    await startConc({ joinPort: 7104 })
    const cpe = await startDaemon({ daemon: 'cpe', config: cpeConfig(lab()), ns: lab().ns.cpe, spawn: (argv) => lab().spawn('cpe', argv) })
    holder.cpe = cpe
    for (const port of [80, 8080, HIGH_PORT]) {
      const out = await lab().ns.lan.exec(['curl', '-sS', '--max-time', '20', '-o', '/dev/null', '-w',
        '%{http_code} %{size_download} %{speed_download}', `http://${plainServer().v4}:${port}/20000000`], { timeoutMs: 25_000 })
      t.diagnostic(`LAN curl :${port}: ${out} (bytes/s)`)
      assert.match(out, /^200 20000000 /)
    }
    assert.equal(await eventually(async () => cpe.metric('hybrid_connections_closed_total', { mode: 'transparent', reason: 'normal' }), 3), 3)
    assert.equal(await cpe.metric('hybrid_mptcp_fallbacks_total'), 0)
    const dsl = await cpe.metric('hybrid_path_bytes_total', { path: 'dsl', direction: 'down' })
    const lte = await cpe.metric('hybrid_path_bytes_total', { path: 'lte', direction: 'down' })
    t.diagnostic(`path bytes down: dsl ${dsl}, lte ${lte}`)
    assert.ok(dsl > 5_000_000 && lte > 5_000_000, `dsl ${dsl} lte ${lte}`)
    assert.equal(await holder.conc!.metric('hybrid_connections_accepted_total', { mode: 'transparent' }), 3)
    await stopConc()
    const out = await lab().ns.lan.exec(['curl', '-sS', '--max-time', '20', '-o', '/dev/null', '-w', '%{http_code} %{size_download}',
      `http://${plainServer().v4}:443/1000000`], { timeoutMs: 25_000 })
    assert.equal(out, '200 1000000', 'fail-open: still works without the concentrator')
    assert.equal(await eventually(async () => cpe.metric('hybrid_mptcp_fallbacks_total', { reason: 'no_mpc_synack' }), 1), 1)
    assert.equal(await cpe.stop(), 0, cpe.logTail())
    holder.cpe = undefined
  })
})
