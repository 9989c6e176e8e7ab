/**
 * LAN UDP over the hybrid line (docs/udp.md), in the lab (prefix hat-ud-; vdsl + lte), daemons
 * from dist/ in socks5 mode with `udp.enabled` on the CPE and the CONNECT-UDP proxy on the
 * concentrator's service address (lab/scenario-udp.ts). A UDP echo server on inet reports the
 * sources it sees, so every test knows which way its datagrams went:
 * - a 50 pps flow from the LAN host, IPv4 and IPv6, reaches the server from the concentrator's
 *   internet address (not the LAN host's) and every echo comes back; both daemons count it;
 * - 100 short DNS-like flows are all answered;
 * - UDP to the CPE itself is not intercepted;
 * - a DSL blackhole during a 50 pps flow: no datagram is lost (the MPTCP connection carries the
 *   stream over LTE) and the longest gap is bounded with margin (the figure itself comes from
 *   `npm run lab -- --scenario udp`, docs/udp.md);
 * - a destination the concentrator's policy refuses costs the flow, not the daemons;
 * - the CPE agent SIGKILLed: LAN UDP is routed natively (fail-open): the server sees the LAN host,
 *   the concentrator no new flow.
 * Needs `npx tsc -b` first.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { e2eSkipReason } from '../../lab/netns.ts'
import { getProfile } from '../../lab/link-profile.ts'
import type { ModeSession } from '../../lab/mode-runners.ts'
import { startUdpEcho, startUdpSession, streamThroughFault, UDP_ECHO_PORT, udpShortFlows, udpStream, type UdpSource } from '../../lab/scenario-udp.ts'
import { buildLab, type Lab } from '../../lab/topology.ts'

const PREFIX = 'hat-ud-'
const skip = e2eSkipReason()
const BLACKHOLE_GAP_BOUND_MS = 2500

describe('LAN UDP over CONNECT-UDP', { skip: skip ?? false, concurrency: false, timeout: 420_000 }, () => {
  let lab: Lab
  let session: ModeSession | undefined
  let echo: { child: ChildProcess, sources: UdpSource[] } | undefined
  const inet = (): { v4: string, v6: string } => lab.plan.internet.servers[0] as { v4: string, v6: string }
  const sourcesSince = (n: number): string[] => (echo?.sources ?? []).slice(n).map((s) => s.address)

  before(async () => {
    lab = await buildLab({ prefix: PREFIX, profiles: { dsl: getProfile('vdsl'), lte: getProfile('lte') } })
    echo = await startUdpEcho(lab)
    session = await startUdpSession(lab)
  })
  after(async () => {
    await session?.stop()
    echo?.child.kill('SIGTERM')
    await lab?.teardown()
  })

  test('IPv4 and IPv6: a 50 pps flow goes through the concentrator and every echo comes back', async () => {
    const p = lab.plan
    for (const [host, hagAddress] of [[inet().v4, p.internet.hag.v4], [inet().v6, p.internet.hag.v6]] as const) {
      const seen = echo?.sources.length ?? 0
      const r = await udpStream(lab, host, ['--seconds', '3'])
      assert.equal(r.lost, 0, `${host}: ${JSON.stringify(r)}`)
      assert.equal(r.duplicates, 0)
      assert.deepEqual(sourcesSince(seen), [hagAddress], `${host}: the server saw ${JSON.stringify(sourcesSince(seen))}`)
    }
    const s = session as ModeSession
    assert.ok(await s.cpe.metric('hybrid_udp_flows_created_total') >= 2)
    assert.ok(await s.cpe.metric('hybrid_udp_datagrams_total', { direction: 'down' }) >= 300)
    assert.ok(await s.concentrator.metric('hybrid_udp_flows_created_total') >= 2)
    const flows = JSON.parse((await s.cpe.get('/api/v1/udp/flows')).body) as { enabled: boolean, total: number }
    assert.equal(flows.enabled, true)
  })

  test('100 short DNS-like flows (a 5-tuple each) are all answered', async () => {
    const r = await udpShortFlows(lab, inet().v4, ['--count', '100'])
    assert.equal(r.answered, r.count, JSON.stringify(r))
  })

  test('UDP to the CPE itself is not intercepted', async () => {
    const s = session as ModeSession
    const before = await s.cpe.metric('hybrid_udp_flows_created_total')
    const cpeEcho = await lab.startScript('cpe', 'lab/udp-flow.ts', ['serve', '--listen', lab.plan.lan.cpe.v4, '--port', String(UDP_ECHO_PORT)])
    try {
      assert.equal((await udpStream(lab, lab.plan.lan.cpe.v4, ['--seconds', '1'])).lost, 0)
    } finally {
      cpeEcho.kill('SIGTERM')
    }
    assert.equal(await s.cpe.metric('hybrid_udp_flows_created_total'), before)
  })

  test('DSL blackhole during a 50 pps flow: nothing lost, the gap bounded', async (t) => {
    const r = await streamThroughFault(lab, inet().v4, 'blackhole')
    t.diagnostic(`blackhole: ${JSON.stringify(r)}`)
    assert.equal(r.lost, 0, JSON.stringify(r))
    assert.ok(r.longestGapMs <= BLACKHOLE_GAP_BOUND_MS, `longest gap ${r.longestGapMs} ms`)
  })

  test('a destination the concentrator\'s policy refuses costs the flow, not the daemons', async () => {
    const s = session as ModeSession
    // hag's internet-side address is one of the concentrator host's own: refused as a destination
    // (403). (Not the service address: the CPE never intercepts traffic to its concentrator.)
    const r = await udpStream(lab, lab.plan.internet.hag.v4, ['--seconds', '1'])
    assert.equal(r.received, 0)
    assert.ok(await s.cpe.metric('hybrid_udp_flows_refused_total', { reason: 'policy' }) >= 1)
    assert.equal((await udpStream(lab, inet().v4, ['--seconds', '1'])).lost, 0, 'the next flow works')
  })

  test('CPE agent SIGKILLed: LAN UDP flows natively (fail-open)', async () => {
    const s = session as ModeSession
    process.kill(s.cpe.pid, 'SIGKILL')
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const seen = echo?.sources.length ?? 0
    const flows = await s.concentrator.metric('hybrid_udp_flows_created_total')
    const r = await udpStream(lab, inet().v4, ['--seconds', '2'])
    assert.equal(r.lost, 0, JSON.stringify(r))
    // Plain routing (the lab has no NAT): the server sees the LAN host itself, the concentrator nothing.
    assert.deepEqual(sourcesSince(seen), [lab.plan.lan.host.v4])
    assert.equal(await s.concentrator.metric('hybrid_udp_flows_created_total'), flows)
  })
})
