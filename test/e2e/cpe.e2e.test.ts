/**
 * End-to-end tests of the CPE agent (issue 5) in the lab, socks5 mode with TFO (namespaces
 * `hat-ce5-a-*`): the built agent in cpe, the built concentrator in hag, vdsl + lte profiles.
 *
 * - bypass: a destination in `intercept.bypass` is reached directly (neither daemon sees it);
 * - IPv6: a LAN client's v6 connection goes through the agent (CONNECT to a v6 literal);
 * - setup latency: connect → first response byte through the agent (pipelined SOCKS5 in the TFO SYN)
 *   vs. a direct connection over DSL (bypassed destination), medians of 15 runs each;
 * - throughput: the flow tool in lan (plain TCP) to inet through the agent: one MPTCP connection with
 *   one subflow on each access, goodput vs. the sum of the access rates, download and upload;
 * - leak loop: 300 short connections, then active connections, sessions and fds back to baseline.
 * Needs `npx tsc -b` first. Numbers are printed with `# cpe-e2e` (docs/cpe.md "Measured").
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { parse, stringify } from 'yaml'
import { e2eSkipReason } from '../../lab/netns.ts'
import { enableLabTfo, openFds, startCpeAgent } from '../../lab/cpe-setup.ts'
import { startConcentrator, type DaemonHandle } from '../../lab/daemons.ts'
import { runFlowIn } from '../../lab/flow-run.ts'
import type { FlowLine } from '../../lab/flow-tool.ts'
import { getProfile } from '../../lab/link-profile.ts'
import { buildLab, type Lab } from '../../lab/topology.ts'
import { CONN_LOOP_SCRIPT } from '../helpers/conn-loop-script.ts'
import { waitFor } from '../helpers/wait-for.ts'

const PREFIX = 'hat-ce5-a-'
const skip = e2eSkipReason()
const DSL = getProfile('vdsl')
const LTE = getProfile('lte')
/** The second inet server address: HTTP on it is bypassed (direct over DSL). */
const DIRECT = '203.0.113.11'
const RUNS = 15
const FLOW_SECONDS = 8

function report (what: string, value: unknown): void {
  process.stdout.write(`# cpe-e2e ${what}: ${JSON.stringify(value)}\n`)
}

function median (xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** connect and first-byte times (ms) of one curl fetch from lan. */
async function timeFetch (lab: Lab, url: string): Promise<{ connectMs: number, firstByteMs: number }> {
  const out = await lab.ns.lan.exec(['curl', '-sS', '-o', '/dev/null', '--max-time', '5', '-w', '%{time_connect} %{time_starttransfer}', url],
    { timeoutMs: 8000 })
  const [c, f] = out.trim().split(' ').map(Number)
  return { connectMs: (c ?? NaN) * 1000, firstByteMs: (f ?? NaN) * 1000 }
}

/** Rewrite the agent's config file through `edit` and SIGHUP it; waits for the successful reload. */
async function reloadWith (h: DaemonHandle, edit: (config: Record<string, unknown>) => void): Promise<void> {
  const config = parse(readFileSync(h.configFile, 'utf8')) as Record<string, unknown>
  edit(config)
  writeFileSync(h.configFile, stringify(config), { mode: 0o600 })
  const before = await h.metric('hybrid_config_reloads_total', { result: 'success' })
  process.kill(h.pid, 'SIGHUP')
  await waitFor('reload', 5000, async () => await h.metric('hybrid_config_reloads_total', { result: 'success' }) > before)
}

describe('CPE agent end to end (socks5)', { skip: skip ?? false, timeout: 300_000 }, () => {
  let lab: Lab
  let conc: DaemonHandle
  let cpe: DaemonHandle

  before(async () => {
    lab = await buildLab({ prefix: PREFIX, profiles: { dsl: DSL, lte: LTE } })
    await lab.startScript('inet', 'lab/flow-servers.ts', ['--http', '--listen', DIRECT])
    await enableLabTfo(lab)
    conc = await startConcentrator(lab)
    cpe = await startCpeAgent(lab, { bypass: { destinations: [`${DIRECT}/32`] } })
  })

  after(async () => {
    await cpe?.stop()
    await conc?.stop()
    await lab?.teardown()
  })

  test('bypassed destination goes direct; IPv4 and IPv6 destinations go through the agent', async () => {
    const accepted = async (): Promise<[number, number]> => [await cpe.metric('hybrid_connections_accepted_total'),
      await conc.metric('hybrid_connections_accepted_total')]
    const before0 = await accepted()
    const direct = await lab.ns.lan.exec(['curl', '-sS', '--max-time', '10', '-o', '/dev/null', '-w', '%{size_download}', `http://${DIRECT}/100k`],
      { timeoutMs: 15_000 })
    assert.equal(direct, '100000')
    assert.deepEqual(await accepted(), before0, 'a bypassed connection reached the agent or the concentrator')

    for (const url of ['http://203.0.113.10/100k', 'http://[2001:db8:ee::10]/100k']) {
      const size = await lab.ns.lan.exec(['curl', '-sS', '--max-time', '10', '-o', '/dev/null', '-w', '%{size_download}', url], { timeoutMs: 15_000 })
        .catch((err: unknown) => { throw new Error(`${String(err)}\n${cpe.logTail(4000)}`) })
      assert.equal(size, '100000', url)
    }
    const after0 = await accepted()
    assert.equal(after0[0] - before0[0], 2, 'agent accepted both (v4, v6)')
    assert.equal(after0[1] - before0[1], 2, 'concentrator accepted both')
    assert.equal(await cpe.metric('hybrid_connections_closed_total', { mode: 'socks5', reason: 'normal' }), 2)
    assert.equal(await cpe.metric('hybrid_mptcp_fallbacks_total'), 0)
  })

  test(`setup latency: connect → first byte through the agent (TFO, pipelined) vs direct over DSL, median of ${RUNS}`, async () => {
    const rttMs = DSL.up.delayMs + DSL.down.delayMs
    const synData0 = await cpe.metric('hybrid_tfo_outcomes_total', { path: 'dsl', result: 'syn_data_acked' })
    await timeFetch(lab, 'http://203.0.113.10/1k') // warm-up: the TFO cookie is cached (the first test fetched one already)
    const agent: number[] = []
    const direct: number[] = []
    const directConnect: number[] = []
    for (let i = 0; i < RUNS; i++) {
      agent.push((await timeFetch(lab, 'http://203.0.113.10/1k')).firstByteMs)
      const d = await timeFetch(lab, `http://${DIRECT}/1k`)
      direct.push(d.firstByteMs)
      directConnect.push(d.connectMs)
    }
    const synData = await cpe.metric('hybrid_tfo_outcomes_total', { path: 'dsl', result: 'syn_data_acked' }) - synData0
    // For comparison (reported, not asserted): the same through the agent with TFO off (reload).
    await reloadWith(cpe, (c) => { (c['concentrator'] as Record<string, unknown>)['fastOpen'] = false })
    const noTfo: number[] = []
    for (let i = 0; i < RUNS; i++) noTfo.push((await timeFetch(lab, 'http://203.0.113.10/1k')).firstByteMs)
    // TFO stays off for the bulk tests that follow: bulk transfers on TFO-opened MPTCP connections
    // can stall on this kernel (docs/mptcp-socket-layer.md, "Kernel issues").
    const r = {
      dslRttMs: rttMs,
      agentMedianMs: round(median(agent)),
      directMedianMs: round(median(direct)),
      differenceMs: round(median(agent) - median(direct)),
      directConnectMedianMs: round(median(directConnect)),
      agentWithoutTfoMedianMs: round(median(noTfo)),
      synDataAcked: synData,
      agent: agent.map((x) => round(x)),
      direct: direct.map((x) => round(x)),
      agentWithoutTfo: noTfo.map((x) => round(x))
    }
    report('setup latency', r)
    assert.ok(synData >= RUNS, `only ${synData} SYN-data handshakes`)
    assert.ok(r.differenceMs < 0.5 * rttMs, `agent ${r.agentMedianMs} ms vs direct ${r.directMedianMs} ms`)
  })

  test(`throughput lan → inet through the agent (${FLOW_SECONDS} s each way): MPTCP, one subflow per access, ≥ 80 % of the rate sum`, async () => {
    const subflowSamples: Array<{ dsl: number, lte: number }> = []
    let sampling: Promise<void> = Promise.resolve()
    let ssDuringDownload = ''
    const onLine = (l: FlowLine): void => {
      if (l.type !== 'tick' || l.t < 2) return
      if (l.direction === 'download' && l.t === 4) {
        // Diagnostics for a slow download: the concentrator's subflows towards the CPE (cwnd, rwnd, limits).
        lab.ns.hag.exec(['ss', '-tniH', 'state', 'established', 'sport', '=', ':1080']).then((o) => { ssDuringDownload = o }, () => {})
      }
      sampling = sampling.then(async () => {
        subflowSamples.push({
          dsl: await cpe.metric('hybrid_mptcp_subflows_active', { path: 'dsl' }),
          lte: await cpe.metric('hybrid_mptcp_subflows_active', { path: 'lte' })
        })
      }).catch(() => {})
    }
    const bytesBefore = {
      dsl: await cpe.metric('hybrid_path_bytes_total', { path: 'dsl', direction: 'down' }),
      lte: await cpe.metric('hybrid_path_bytes_total', { path: 'lte', direction: 'down' })
    }
    const lines = await runFlowIn(lab, { role: 'lan', host: '203.0.113.10', protocol: 'tcp', seconds: FLOW_SECONDS }, onLine)
    await sampling
    const results = lines.filter((l): l is Extract<FlowLine, { type: 'result' }> => l.type === 'result')
    const sums = { download: DSL.down.rateMbit + LTE.down.rateMbit, upload: DSL.up.rateMbit + LTE.up.rateMbit }
    const out = results.map((r) => ({
      direction: r.direction,
      goodputMbps: r.goodputMbps,
      steadyMbps: r.steadyMbps,
      sumOfAccessRatesMbps: sums[r.direction],
      bytes: r.bytes,
      seconds: r.seconds,
      ratio: round(r.goodputMbps / sums[r.direction], 3),
      steadyRatio: round(r.steadyMbps / sums[r.direction], 3)
    }))
    const pathDown = {
      dsl: await cpe.metric('hybrid_path_bytes_total', { path: 'dsl', direction: 'down' }) - bytesBefore.dsl,
      lte: await cpe.metric('hybrid_path_bytes_total', { path: 'lte', direction: 'down' }) - bytesBefore.lte
    }
    report('throughput', { results: out, subflowSamples, pathDownBytes: pathDown })
    assert.equal(out.length, 2)
    assert.ok(subflowSamples.length >= 3, 'subflow samples')
    for (const s of subflowSamples) assert.deepEqual(s, { dsl: 1, lte: 1 }, 'one subflow on each access')
    assert.ok(pathDown.dsl > 10e6 && pathDown.lte > 10e6, `per-path bytes ${JSON.stringify(pathDown)}`)
    for (const r of out) {
      assert.ok(r.ratio >= 0.8,
      `${r.direction}: ${r.goodputMbps} Mbit/s = ${r.ratio} of ${r.sumOfAccessRatesMbps}\nhag ss at t=4 s of the download:\n${ssDuringDownload}`)
    }
    assert.equal(await cpe.metric('hybrid_mptcp_fallbacks_total'), 0)
  })

  test('leak loop: 300 short connections through the agent, then connections, sessions and fds at baseline', async () => {
    const status = async (): Promise<{ active: number, relaying: number }> =>
      (JSON.parse((await cpe.get('/api/v1/status')).body) as { connections: { active: number, relaying: number } }).connections
    const sessions = async (): Promise<number> => (JSON.parse((await cpe.get('/api/v1/sessions')).body) as { total: number }).total
    await lab.ns.lan.exec([process.execPath, '-e', CONN_LOOP_SCRIPT, '203.0.113.10', '7', '10', '5'], { timeoutMs: 70_000 }) // warm-up
    await waitFor('idle after warm-up', 10_000, async () => (await status()).active === 0)
    const fds0 = await openFds(cpe.pid)
    const closed0 = await cpe.metric('hybrid_connections_closed_total', { mode: 'socks5' })
    const out = JSON.parse(await lab.ns.lan.exec([process.execPath, '-e', CONN_LOOP_SCRIPT, '203.0.113.10', '7', '300', '10'],
      { timeoutMs: 70_000 })) as { ok: number, failed: number, ms: number }
    let last = { active: -1, relaying: -1, sessions: -1, fds: -1 }
    await waitFor('back to baseline', 15_000, async () => {
      const s = await status()
      last = { ...s, sessions: await sessions(), fds: await openFds(cpe.pid) }
      return last.active === 0 && last.relaying === 0 && last.sessions === 0 && last.fds <= fds0
    }).catch((err: unknown) => { throw new Error(`${(err as Error).message}: ${JSON.stringify(last)}, fds at baseline ${fds0}`) })
    const closed = await cpe.metric('hybrid_connections_closed_total', { mode: 'socks5' }) - closed0
    report('leak loop', { ...out, fdsBaseline: fds0, after: last, closed })
    assert.equal(out.ok, 300, JSON.stringify(out))
    assert.equal(closed, 300)
  })
})

function round (x: number, digits = 1): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}
