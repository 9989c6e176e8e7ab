/**
 * Link emulation end to end: client — router — server namespaces, the delay line and tbf on the
 * router. Checks delay (v4 and v6), rate in both directions, loss, live profile change, blackhole
 * and teardown, each bounded to a few seconds. Longer measurements: lab/tools/measure-link-emulation.ts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { e2eSkipReason, removeNamespaces } from '../../lab/netns.ts'
import { emulateAccess, type EmulatedAccess } from '../../lab/link-emulation.ts'
import { getProfile, type AccessProfile } from '../../lab/link-profile.ts'
import { ADDR, createThreeNodeLab, iperf, probe, quantile, startEcho, startIperfServer, type ThreeNodeLab } from '../../lab/three-node-lab.ts'

const PREFIX = 'hat-tun-e'
/** TCP payload per IP packet with timestamps: 1448 of 1500 bytes (tbf counts IP bytes). */
const GOODPUT_FACTOR = 1448 / 1500

function median (xs: number[]): number {
  return quantile([...xs].sort((a, b) => a - b), 0.5)
}

const skip = e2eSkipReason()

test('link emulation: delay, rate, loss, live change, blackhole', { skip: skip ?? false, timeout: 120_000 }, async (t) => {
  await removeNamespaces(PREFIX)
  const lab: ThreeNodeLab = await createThreeNodeLab(PREFIX)
  const held: { em?: EmulatedAccess } = {}
  t.after(async () => {
    await held.em?.stop()
    await lab.destroy()
  })
  await startEcho(lab)
  await startIperfServer(lab)
  // the path's own RTT (two Node processes, veths) without emulation
  const base = median((await probe(lab, ADDR.server4, { count: 20, intervalMs: 5 })).rttsMs)
  const vdsl = getProfile('vdsl')
  const access = await emulateAccess(lab.router, { cpeSide: lab.cpeSide, coreSide: lab.coreSide, profile: vdsl, seed: 1 })
  held.em = access

  await t.test('added RTT = 2 × one-way delay (IPv4 and IPv6), within 10 %', async () => {
    for (const host of [ADDR.server4, ADDR.server6]) {
      const r = await probe(lab, host, { count: 40, intervalMs: 10 })
      assert.equal(r.received, r.sent, host)
      const added = median(r.rttsMs) - base
      t.diagnostic(`${host}: median RTT ${median(r.rttsMs).toFixed(2)} ms, base ${base.toFixed(2)}, added ${added.toFixed(2)} (profile 2 × ${vdsl.up.delayMs} ms)`)
      assert.ok(added >= 19.8 && added <= 22, `${host}: added RTT ${added}`)
    }
  })

  await t.test('TCP goodput within 5 % of the shaped rate, both directions', async () => {
    for (const [dir, reverse, d] of [['up', false, vdsl.up], ['down', true, vdsl.down]] as const) {
      const mbit = await iperf(lab, ADDR.server4, { seconds: 3, reverse })
      const expected = d.rateMbit * GOODPUT_FACTOR
      t.diagnostic(`${dir}: ${mbit.toFixed(2)} Mbit/s goodput, expected ${expected.toFixed(2)}`)
      assert.ok(Math.abs(mbit / expected - 1) <= 0.05, `${dir}: ${mbit} vs ${expected}`)
    }
    const s = await access.stats()
    t.diagnostic(`delay line CPU so far: ${((s.cpu.userUs + s.cpu.systemUs) / 1000).toFixed(0)} ms; up ${s.up.packets} / down ${s.down.packets} packets`)
  })

  await t.test('loss: 10 % each way → about 81 % of probes answered', async () => {
    const lossy: AccessProfile = {
      name: 'lossy',
      up: { rateMbit: 0, delayMs: 0, jitterMs: 0, lossPct: 10 },
      down: { rateMbit: 0, delayMs: 0, jitterMs: 0, lossPct: 10 }
    }
    await access.setProfile(lossy)
    const before = await access.stats()
    const r = await probe(lab, ADDR.server4, { count: 1000, intervalMs: 1, waitMs: 300 })
    const after = await access.stats()
    const frac = r.received / r.sent
    t.diagnostic(`answered ${r.received}/${r.sent}; up dropped ${after.up.dropped - before.up.dropped} of ${after.up.packets - before.up.packets}`)
    // sigma of the answered fraction ≈ 1.2 %; 5 % is > 4 sigma
    assert.ok(Math.abs(frac - 0.81) <= 0.05, `answered fraction ${frac}`)
  })

  await t.test('live profile change and blackhole take effect; carrier stays up', async () => {
    await access.setProfile(getProfile('lte'))
    const lte = await probe(lab, ADDR.server4, { count: 30, intervalMs: 20 })
    const m = median(lte.rttsMs)
    t.diagnostic(`lte: median RTT ${m.toFixed(2)} ms, answered ${lte.received}/${lte.sent}`)
    assert.ok(m >= 55 && m <= 66, `lte median ${m}`)
    await access.setBlackhole(true)
    const dark = await probe(lab, ADDR.server6, { count: 20, intervalMs: 5, waitMs: 300 })
    assert.equal(dark.received, 0)
    const link = await lab.router.exec(['ip', '-br', 'link', 'show', lab.cpeSide])
    assert.match(link, /\bUP\b/)
    await access.setBlackhole(false)
    const back = await probe(lab, ADDR.server6, { count: 20, intervalMs: 5 })
    assert.ok(back.received >= 18, `after blackhole: ${back.received}/20`)
  })

  await t.test('a dead delay line fails closed (blackhole fallback route), not open', async () => {
    const gone = new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        try { process.kill(access.pid, 0) } catch { clearInterval(poll); resolve() }
      }, 20)
    })
    process.kill(access.pid, 'SIGKILL')
    await gone
    const r = await probe(lab, ADDR.server4, { count: 10, intervalMs: 5, waitMs: 200 })
    assert.equal(r.received, 0)
    await assert.rejects(access.setBlackhole(false), /not running|exited/)
  })

  await t.test('stop removes rules and tables and is idempotent', async () => {
    await access.stop()
    await access.stop()
    assert.doesNotMatch(await lab.router.exec(['ip', 'rule']), /lookup 10[01]/)
    assert.doesNotMatch(await lab.router.exec(['ip', '-6', 'rule']), /lookup 10[01]/)
    assert.doesNotMatch(await lab.router.exec(['ip', 'link']), /dl100/)
    await assert.rejects(access.stats(), /not running/)
    const direct = await probe(lab, ADDR.server4, { count: 10, intervalMs: 5 })
    assert.equal(direct.received, 10)
    assert.ok(median(direct.rttsMs) < 5)
  })
})
