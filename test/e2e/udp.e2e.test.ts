/**
 * LAN UDP over the hybrid line (docs/udp.md), in the lab (prefix hat-ud-; vdsl + lte), daemons
 * from dist/ in socks5 mode with `udp.enabled` on the CPE and the CONNECT-UDP proxy on the
 * concentrator's service address. A UDP echo server on inet (lab/udp-flow.ts serve) reports the
 * sources it sees, so every test knows which way its datagrams went:
 * - a 50 pps flow from the LAN host, IPv4 and IPv6, reaches the server from the concentrator's
 *   internet address (not the CPE's DSL address) and every echo comes back; both daemons count it;
 * - UDP to the CPE itself is not intercepted;
 * - a DSL blackhole during a 50 pps flow: no datagram is lost (the MPTCP connection carries the
 *   stream over LTE), the longest gap is reported and bounded with margin (target ≤ 300 ms,
 *   measured with `npm run lab` numbers in docs/udp.md);
 * - a concentrator that refuses the destination (policy) costs the flow, not the daemon;
 * - the CPE agent SIGKILLed: LAN UDP is routed natively (fail-open): the server sees the LAN host,
 *   the concentrator no new flow.
 * Needs `npx tsc -b` first.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { e2eSkipReason } from '../../lab/netns.ts'
import { getProfile } from '../../lab/link-profile.ts'
import { startModeSession, type ModeSession } from '../../lab/mode-runners.ts'
import { buildLab, type Lab } from '../../lab/topology.ts'
import type { StreamResult } from '../../lab/udp-flow.ts'

const PREFIX = 'hat-ud-'
const skip = e2eSkipReason()
const UDP_PORT = 7400
const ECHO = 9000
const BLACKHOLE_GAP_BOUND_MS = 2500

interface Source { address: string, port: number }

describe('LAN UDP over CONNECT-UDP', { skip: skip ?? false, concurrency: false, timeout: 420_000 }, () => {
  let lab: Lab
  let session: ModeSession | undefined
  let server: ChildProcess
  const sources: Source[] = []

  const streamFrom = async (host: string, args: readonly string[] = []): Promise<StreamResult> => {
    const out = await lab.ns.lan.exec([process.execPath, '--import', 'tsx', 'lab/udp-flow.ts', 'stream', '--host', host, '--port', String(ECHO), ...args],
      { timeoutMs: 120_000 })
    const line = out.trim().split('\n').map((l) => JSON.parse(l) as { type: string }).find((l) => l.type === 'result')
    assert.ok(line !== undefined, `no result from udp-flow: ${out}`)
    return line as unknown as StreamResult
  }
  const sourcesAfter = (n: number): Source[] => sources.slice(n)

  before(async () => {
    lab = await buildLab({ prefix: PREFIX, profiles: { dsl: getProfile('vdsl'), lte: getProfile('lte') } })
    const inet = lab.plan.internet.servers[0] as { v4: string, v6: string }
    server = await lab.startScript('inet', 'lab/udp-flow.ts', ['serve', '--listen', inet.v4, '--listen', inet.v6, '--port', String(ECHO)])
    let buf = ''
    server.stdout?.on('data', (d: Buffer) => {
      buf += String(d)
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const l = JSON.parse(buf.slice(0, i)) as { type: string } & Source
        buf = buf.slice(i + 1)
        if (l.type === 'source') sources.push({ address: l.address, port: l.port })
      }
    })
    const p = lab.plan
    session = await startModeSession(lab, 'socks5', {
      overrides: {
        cpe: { udp: { enabled: true, port: UDP_PORT } },
        concentrator: { udp: { listen: { host: p.service.v4, port: UDP_PORT } } }
      }
    })
  })
  after(async () => {
    await session?.stop()
    await lab?.teardown()
  })

  test('IPv4 and IPv6: a 50 pps flow goes through the concentrator and every echo comes back', async () => {
    const p = lab.plan
    const inet = p.internet.servers[0] as { v4: string, v6: string }
    for (const [host, hagAddress] of [[inet.v4, p.internet.hag.v4], [inet.v6, p.internet.hag.v6]] as const) {
      const seen = sources.length
      const r = await streamFrom(host, ['--seconds', '3'])
      assert.equal(r.lost, 0, `${host}: ${JSON.stringify(r)}`)
      assert.equal(r.duplicates, 0)
      assert.deepEqual(sourcesAfter(seen).map((s) => s.address), [hagAddress], `${host}: the server saw ${JSON.stringify(sourcesAfter(seen))}`)
    }
    const s = session as ModeSession
    assert.ok(await s.cpe.metric('hybrid_udp_flows_created_total') >= 2)
    assert.ok(await s.cpe.metric('hybrid_udp_datagrams_total', { direction: 'down' }) >= 300)
    assert.ok(await s.concentrator.metric('hybrid_udp_flows_created_total') >= 2)
  })

  test('UDP to the CPE itself is not intercepted', async () => {
    const s = session as ModeSession
    const before = await s.cpe.metric('hybrid_udp_flows_created_total')
    const cpeEcho = await lab.startScript('cpe', 'lab/udp-flow.ts', ['serve', '--listen', lab.plan.lan.cpe.v4, '--port', String(ECHO)])
    try {
      const r = await streamFrom(lab.plan.lan.cpe.v4, ['--seconds', '1'])
      assert.equal(r.lost, 0)
    } finally {
      cpeEcho.kill('SIGTERM')
    }
    assert.equal(await s.cpe.metric('hybrid_udp_flows_created_total'), before)
  })

  test('DSL blackhole during a 50 pps flow: nothing lost, the gap bounded', async (t) => {
    const inet = lab.plan.internet.servers[0] as { v4: string }
    const run = streamFrom(inet.v4, ['--seconds', '8'])
    await new Promise((resolve) => setTimeout(resolve, 3000))
    await lab.setAccessState('dsl', 'blackhole')
    await new Promise((resolve) => setTimeout(resolve, 3000))
    await lab.setAccessState('dsl', 'up')
    const r = await run
    t.diagnostic(`blackhole: ${JSON.stringify(r)}`)
    assert.equal(r.lost, 0, JSON.stringify(r))
    assert.ok(r.longestGapMs <= BLACKHOLE_GAP_BOUND_MS, `longest gap ${r.longestGapMs} ms`)
  })

  test('a destination the concentrator\'s policy refuses costs the flow, not the daemons', async () => {
    const s = session as ModeSession
    // The service address is in policy.ownAddresses: refused as a destination (403).
    const r = await streamFrom(lab.plan.service.v4, ['--seconds', '1'])
    assert.equal(r.received, 0)
    assert.ok(await s.cpe.metric('hybrid_udp_flows_refused_total', { reason: 'policy' }) >= 1)
    const inet = lab.plan.internet.servers[0] as { v4: string }
    assert.equal((await streamFrom(inet.v4, ['--seconds', '1'])).lost, 0, 'the next flow works')
  })

  test('CPE agent SIGKILLed: LAN UDP flows natively (fail-open)', async () => {
    const s = session as ModeSession
    process.kill(s.cpe.pid, 'SIGKILL')
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const inet = lab.plan.internet.servers[0] as { v4: string }
    const seen = sources.length
    const flows = await s.concentrator.metric('hybrid_udp_flows_created_total')
    const r = await streamFrom(inet.v4, ['--seconds', '2'])
    assert.equal(r.lost, 0, JSON.stringify(r))
    // Plain routing (the lab has no NAT): the server sees the LAN host itself, the concentrator nothing.
    assert.deepEqual(sourcesAfter(seen).map((x) => x.address), [lab.plan.lan.host.v4])
    assert.equal(await s.concentrator.metric('hybrid_udp_flows_created_total'), flows)
  })
})
