/**
 * Interop: the CPE agent (socks5 mode, `pipelining: auto`, TFO on) against Debian's dante-server
 * as the upstream SOCKS5 server instead of our concentrator (namespaces `hat-ce5-d-*`). danted runs
 * in hag under `mptcpize run` (its sockets become MPTCP) with a minimal config: internal = the
 * service address port 1081, external = hag's internet address, no authentication, pass rules for
 * the CPE's access prefixes. The test finds out whether dante accepts the pipelined handshake or the
 * agent's stepwise fallback kicked in (log line, `/api/v1/status` concentrator.stepwise, the
 * session's `pipelined` flag), and checks that a LAN download works over MPTCP on both accesses.
 * Needs `npx tsc -b` and /usr/sbin/danted.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { e2eSkipReason } from '../../lab/netns.ts'
import { enableLabTfo, startCpeAgent } from '../../lab/cpe-setup.ts'
import type { DaemonHandle } from '../../lab/daemons.ts'
import { getProfile } from '../../lab/link-profile.ts'
import { buildLab, type Lab } from '../../lab/topology.ts'
import type { AddressPlan } from '../../lab/addresses.ts'

const PREFIX = 'hat-ce5-d-'
const DANTED = '/usr/sbin/danted'
const DANTE_PORT = 1081
const skip = e2eSkipReason() ?? (existsSync(DANTED) ? undefined : `${DANTED} missing (apt-get install dante-server)`)

function report (what: string, value: unknown): void {
  process.stdout.write(`# cpe-e2e ${what}: ${JSON.stringify(value)}\n`)
}

/** A minimal danted.conf for hag. Pure. */
export function danteConfig (p: AddressPlan, port: number): string {
  const prefixes = [p.access.dsl.cpeSide.net.v4, p.access.lte.cpeSide.net.v4]
  return [
    'logoutput: stderr',
    `internal: ${p.service.v4} port = ${port}`,
    `external: ${p.internet.hag.v4}`,
    'clientmethod: none',
    'socksmethod: none',
    'user.privileged: root',
    'user.unprivileged: nobody',
    ...prefixes.map((net) => `client pass {\n  from: ${net} to: 0.0.0.0/0\n  log: error\n}`),
    ...prefixes.map((net) => `socks pass {\n  from: ${net} to: 0.0.0.0/0\n  command: connect\n  log: error\n}`),
    'socks block {\n  from: 0.0.0.0/0 to: 0.0.0.0/0\n  log: connect error\n}',
    ''
  ].join('\n')
}

async function waitListening (lab: Lab, port: number, dante: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    if (dante.exitCode !== null) throw new Error(`danted exited ${dante.exitCode}: ${stderr()}`)
    const ss = await lab.ns.hag.exec(['ss', '-Hltn', `sport = :${port}`])
    if (ss.trim() !== '') return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`danted not listening on ${port}: ${stderr()}`)
}

describe('CPE agent against dante-server (mptcpize) as the SOCKS5 upstream', { skip: skip ?? false, timeout: 180_000 }, () => {
  let lab: Lab
  let cpe: DaemonHandle
  let dante: ChildProcess
  let danteErr = ''

  before(async () => {
    lab = await buildLab({ prefix: PREFIX, profiles: { dsl: getProfile('vdsl'), lte: getProfile('lte') } })
    await enableLabTfo(lab)
    const dir = mkdtempSync(join(tmpdir(), 'hat-ce5-dante-'))
    const conf = join(dir, 'danted.conf')
    writeFileSync(conf, danteConfig(lab.plan, DANTE_PORT))
    dante = lab.spawn('hag', ['mptcpize', 'run', DANTED, '-f', conf, '-p', join(dir, 'danted.pid'), '-N', '1'])
    dante.stdout?.on('data', (b: Buffer) => { danteErr = (danteErr + b.toString()).slice(-8000) })
    dante.stderr?.on('data', (b: Buffer) => { danteErr = (danteErr + b.toString()).slice(-8000) })
    await waitListening(lab, DANTE_PORT, dante, () => danteErr)
    cpe = await startCpeAgent(lab, { concentrator: { port: DANTE_PORT }, pipelining: 'auto', logLevel: 'debug' })
  })

  after(async () => {
    await cpe?.stop()
    if (dante?.pid !== undefined && dante.exitCode === null) process.kill(dante.pid, 'SIGTERM')
    await lab?.teardown()
  })

  test('LAN downloads through the agent and dante: pipelining detected or stepwise fallback, MPTCP on both accesses', async () => {
    const fetch = async (path: string): Promise<string> =>
      lab.ns.lan.exec(['curl', '-sS', '--max-time', '30', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', `http://203.0.113.10${path}`],
        { timeoutMs: 35_000 })
        .catch((err: unknown) => { throw new Error(`${String(err)}\n--- cpe ---\n${cpe.logTail(4000)}\n--- danted ---\n${danteErr}`) })
    const first = await fetch('/100k') // the first connection decides: pipelined or stepwise
    const big = await fetch('/10M')
    const [size, seconds] = big.split(' ').map(Number)
    const log = readFileSync(cpe.logFile, 'utf8')
    const fellBack = log.includes('does not accept a pipelined SOCKS5 handshake')
    const status = JSON.parse((await cpe.get('/api/v1/status')).body) as { concentrator: { stepwise: string[] } }
    const pipelinedFlags = [...log.matchAll(/"pipelined":(true|false)/g)].map((m) => m[1] === 'true')
    const metrics = {
      fallbacks: await cpe.metric('hybrid_mptcp_fallbacks_total'),
      dslDown: await cpe.metric('hybrid_path_bytes_total', { path: 'dsl', direction: 'down' }),
      lteDown: await cpe.metric('hybrid_path_bytes_total', { path: 'lte', direction: 'down' }),
      closedNormal: await cpe.metric('hybrid_connections_closed_total', { mode: 'socks5', reason: 'normal' }),
      tfo: Object.fromEntries(await Promise.all(['syn_data_acked', 'cookie_unavailable', 'data_not_acked', 'syn_retransmitted']
        .map(async (r) => [r, await cpe.metric('hybrid_tfo_outcomes_total', { path: 'dsl', result: r })])))
    }
    const result = {
      pipelining: fellBack ? 'stepwise fallback' : 'pipelined accepted',
      first,
      size,
      seconds,
      mbps: Math.round((size ?? 0) * 8 / (seconds ?? 1) / 1e4) / 100,
      stepwise: status.concentrator.stepwise,
      pipelinedFlags,
      ...metrics
    }
    report('dante interop', result)
    assert.equal(first.split(' ')[0], '100000')
    assert.equal(size, 10_000_000)
    assert.equal(metrics.closedNormal, 2)
    if (fellBack) {
      assert.deepEqual(status.concentrator.stepwise, [`${lab.plan.service.v4}:${DANTE_PORT}`])
      assert.deepEqual(pipelinedFlags, [false, false], 'both relays went stepwise')
    } else {
      assert.deepEqual(status.concentrator.stepwise, [])
      assert.deepEqual(pipelinedFlags, [true, true], 'both relays pipelined')
    }
    assert.equal(metrics.fallbacks, 0, 'MPTCP towards dante')
    assert.ok(metrics.dslDown > 1e6 && metrics.lteDown > 1e6, `per-path bytes dsl ${metrics.dslDown} lte ${metrics.lteDown}`)
  })
})
