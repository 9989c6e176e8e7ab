/**
 * Path health end to end (docs/path-health.md), in the lab (prefix hat-ph-), daemons from dist/ in
 * socks5 mode with the concentrator's probe responder and the CPE's health probing on
 * (labProbeConfig / labHealthConfig):
 * - baseline: dsl and lte up (hybrid_path_up 1, /api/v1/uplinks health up, an RTT);
 * - DSL blackhole in the dsl router (carrier up): dsl down within a bound, lte stays up (so the
 *   probes of each access really leave over that access); restored: dsl up again;
 * - DSL carrier loss (`ip link set dsl0 down` in cpe): dsl down at once; restored: up;
 * - the responder (IPv4 and IPv6) answers no untrusted source, drops oversized and malformed
 *   datagrams, and never sends a reply larger than the request.
 * Measured times are printed as `# path-health` lines. Needs `npx tsc -b` first.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { startDaemon, type DaemonHandle } from '../../lab/daemons.ts'
import { labCpeConfig, labHealthConfig, labModeConcentratorConfig, labProbeConfig, LAB_PROBE_PORT } from '../../lab/lab-daemons-config.ts'
import { getProfile } from '../../lab/link-profile.ts'
import { e2eSkipReason } from '../../lab/netns.ts'
import { buildLab, type Lab } from '../../lab/topology.ts'

const PREFIX = 'hat-ph-'
const skip = e2eSkipReason()
const profiles = { dsl: getProfile('vdsl'), lte: getProfile('lte') }
const INTERVAL_MS = 100
const TIMEOUT_MS = 300
const DOWN_AFTER = 3
/** Expected detection ≈ (downAfter − 1) × interval + timeout = 500 ms; asserted with a wide margin for a loaded 2-CPU host. */
const DETECT_BOUND_MS = 3000
const sleep = async (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

interface UplinkView { name: string, up: boolean, health?: { state: string, lossRatio: number, rttMs: number | null, since: string } }

/** Datagram sizes sent from `source` to the responder, and the sizes of the replies (node in the namespace). */
const probeScript = (source: string, target: string, port: number): string => `
const dgram = require('node:dgram')
const s = dgram.createSocket('${source.includes(':') ? 'udp6' : 'udp4'}')
const probe = (seq, pad) => { const b = Buffer.alloc(20 + pad); b.writeUInt32BE(0x48505242, 0); b[4] = 1; b[5] = 1; b.writeUInt32BE(seq, 8); return b }
const sent = [probe(1, 0), probe(2, 100), probe(3, 236), Buffer.alloc(300, 7), Buffer.alloc(1200, 1), Buffer.from('hello'), probe(4, 0).fill(9, 0, 4)]
const replies = []
s.on('message', (m) => replies.push({ seq: m.readUInt32BE(8), bytes: m.length, type: m[5] }))
s.bind(0, '${source}', () => {
  for (const d of sent) s.send(d, ${port}, '${target}')
  setTimeout(() => { console.log(JSON.stringify({ sent: sent.map((d) => d.length), replies })); s.close() }, 700)
})`

describe('path health in the lab', { skip: skip ?? false, concurrency: false, timeout: 300_000 }, () => {
  const h: { lab?: Lab, conc?: DaemonHandle, cpe?: DaemonHandle } = {}
  const lab = (): Lab => { assert.ok(h.lab); return h.lab }
  const cpe = (): DaemonHandle => { assert.ok(h.cpe); return h.cpe }

  before(async () => {
    const l = h.lab = await buildLab({ prefix: PREFIX, profiles })
    h.conc = await startDaemon({
      daemon: 'concentrator',
      config: { ...labModeConcentratorConfig('socks5', { plan: l.plan }), probe: labProbeConfig(l.plan) },
      ns: l.ns.hag,
      spawn: (argv) => l.spawn('hag', argv)
    })
    const health = labHealthConfig({ intervalMs: INTERVAL_MS, timeoutMs: TIMEOUT_MS, downAfter: DOWN_AFTER })
    h.cpe = await startDaemon({
      daemon: 'cpe',
      config: { ...labCpeConfig('socks5', { plan: l.plan }), health },
      ns: l.ns.cpe,
      spawn: (argv) => l.spawn('cpe', argv)
    })
  })
  after(async () => {
    await h.cpe?.stop().catch(() => null)
    await h.conc?.stop().catch(() => null)
    await h.lab?.teardown()
  })

  const uplinks = async (): Promise<Map<string, UplinkView>> => {
    const r = await cpe().get('/api/v1/uplinks')
    assert.equal(r.status, 200)
    return new Map((JSON.parse(r.body) as { uplinks: UplinkView[] }).uplinks.map((u) => [u.name, u]))
  }
  const pathUp = async (path: string): Promise<number> => cpe().metric('hybrid_path_up', { path })
  /** Polls until dsl's health state is `state`; returns the API view (bounded loop). */
  const waitState = async (path: string, state: string, boundMs: number): Promise<UplinkView> => {
    const deadline = Date.now() + boundMs + 2000
    while (Date.now() < deadline) {
      const u = (await uplinks()).get(path)
      if (u?.health?.state === state) return u
      await sleep(20)
    }
    throw new Error(`${path} not ${state} within ${boundMs + 2000} ms: ${cpe().logTail(2000)}`)
  }
  const assertUp = async (name: string, u: UplinkView | undefined): Promise<void> => {
    assert.equal(u?.up, true, name)
    assert.equal(u?.health?.state, 'up', name)
    assert.ok((u?.health?.rttMs ?? 0) > 0, `${name} rtt`)
    assert.equal(await pathUp(name), 1, name)
  }
  /** Time from t0 to the transition, from the agent's own `since` (not the polling delay). */
  const since = (u: UplinkView, t0: number): number => Date.parse(u.health?.since ?? '') - t0

  test('baseline: both accesses up with an RTT', async () => {
    const dsl = await waitState('dsl', 'up', 3000)
    for (let i = 0; i < 100 && ((await uplinks()).get('lte')?.health?.rttMs ?? null) === null; i++) await sleep(50)
    const all = await uplinks()
    for (const name of ['dsl', 'lte']) await assertUp(name, all.get(name))
    console.log(`# path-health baseline rtt dsl ${String(dsl.health?.rttMs)} ms, lte ${String(all.get('lte')?.health?.rttMs)} ms`)
  })

  test('DSL blackhole: dsl down within the bound, lte stays up; restored: up again', async () => {
    await lab().setAccessState('dsl', 'blackhole')
    const t0 = Date.now()
    try {
      const down = await waitState('dsl', 'down', DETECT_BOUND_MS)
      const detect = since(down, t0)
      console.log(`# path-health blackhole detection ${detect} ms (expected ≈ ${(DOWN_AFTER - 1) * INTERVAL_MS + TIMEOUT_MS} ms)`)
      assert.ok(detect <= DETECT_BOUND_MS, `detected after ${detect} ms`)
      assert.equal(down.up, false)
      assert.equal(await pathUp('dsl'), 0)
      assert.ok((down.health?.lossRatio ?? 0) > 0)
      await sleep(1000)
      const lte = (await uplinks()).get('lte')
      assert.equal(lte?.health?.state, 'up', 'lte probes do not leave over dsl')
      assert.equal(await pathUp('lte'), 1)
      assert.equal((await uplinks()).get('dsl')?.health?.state, 'down')
    } finally {
      await lab().setAccessState('dsl', 'up')
    }
    const t1 = Date.now()
    const up = await waitState('dsl', 'up', DETECT_BOUND_MS)
    console.log(`# path-health blackhole recovery ${since(up, t1)} ms after the restore (blackhole ${t1 - t0} ms, hold-down 1000 ms)`)
    assert.equal(await pathUp('dsl'), 1)
    assert.ok((await cpe().metric('hybrid_path_state_changes_total', { path: 'dsl', to: 'down' })) >= 1)
    assert.equal(await cpe().metric('hybrid_path_state_changes_total', { path: 'lte', to: 'down' }), 0)
  })

  test('DSL carrier loss: down at once; restored: up again', async () => {
    await sleep(1100) // past the hold-down of the previous test
    const t0 = Date.now() // before the call: the link is down before setAccessState returns
    await lab().setAccessState('dsl', 'down')
    const call = Date.now() - t0
    try {
      const down = await waitState('dsl', 'down', 1000)
      const detect = since(down, t0)
      console.log(`# path-health carrier-loss detection ${detect} ms from the start of setAccessState (the call took ${call} ms; one tick: ≤ ${INTERVAL_MS} ms expected)`)
      assert.ok(detect <= 1000, `carrier loss seen after ${detect} ms`)
      assert.equal(await pathUp('dsl'), 0)
      assert.equal((await uplinks()).get('lte')?.health?.state, 'up')
      await sleep(1200) // past the hold-down, so the recovery below is the probes' own time
    } finally {
      await lab().setAccessState('dsl', 'up') // link up, then the lab's routes back
    }
    const t1 = Date.now()
    const up = await waitState('dsl', 'up', DETECT_BOUND_MS)
    console.log(`# path-health carrier recovery ${since(up, t1)} ms after the link came back (down ${t1 - t0} ms)`)
  })

  test('responder: no reply to an untrusted source; trusted: oversized and malformed dropped, replies never larger than requests', async () => {
    const p = lab().plan
    // Untrusted: hag's own internet-side address is not in probe.trustedPrefixes.
    const untrusted = JSON.parse(await lab().ns.hag.exec(['node', '-e',
      probeScript(p.internet.hag.v4, p.service.v4, LAB_PROBE_PORT)])) as { replies: unknown[] }
    assert.deepEqual(untrusted.replies, [], 'untrusted source answered')
    // Trusted: the CPE's LTE address.
    const trusted = JSON.parse(await lab().ns.cpe.exec(['node', '-e',
      probeScript(p.access.lte.cpeSide.cpe.v4, p.service.v4, LAB_PROBE_PORT)])) as {
      sent: number[],
      replies: Array<{ seq: number, bytes: number, type: number }>
    }
    assert.deepEqual(trusted.replies.map((r) => r.seq).sort(), [1, 2, 3], 'only the three valid requests are answered')
    for (const r of trusted.replies) {
      assert.equal(r.type, 2)
      assert.equal(r.bytes, trusted.sent[r.seq - 1], 'reply exactly the request size')
    }
    // IPv6: the responder's v6 socket answers the CPE's DSL v6 address the same way.
    const v6 = JSON.parse(await lab().ns.cpe.exec(['node', '-e',
      probeScript(p.access.dsl.cpeSide.cpe.v6, p.service.v6, LAB_PROBE_PORT)])) as { sent: number[], replies: Array<{ seq: number, bytes: number }> }
    assert.deepEqual(v6.replies.map((r) => `${r.seq}:${r.bytes}`).sort(), ['1:20', '2:120', '3:256'])
    const conc = h.conc
    assert.ok(conc)
    assert.ok(await conc.metric('hybrid_probe_dropped_total', { reason: 'untrusted' }) >= 7)
    assert.ok(await conc.metric('hybrid_probe_dropped_total', { reason: 'oversized' }) >= 2)
    assert.ok(await conc.metric('hybrid_probe_dropped_total', { reason: 'malformed' }) >= 2)
    assert.ok(await conc.metric('hybrid_probe_replies_total') > 0)
  })
})
