/**
 * Steering end to end (docs/steering.md), in the lab (prefix hat-st-), daemons from dist/ in socks5
 * mode, lab defaults (health + failover on, multipath.rules off) plus steering.mode priority-based
 * with the DSL profile's rates as capacity:
 * - priority-based: demand below the DSL rate → LTE < 5 % of the bytes; above → DSL + LTE ≥ 90 %
 *   of the sum of both rates (access routers' counters);
 * - smallest-delay: LTE backup while DSL's probe RTT is lower, cleared when DSL's delay is raised
 *   above LTE's (live profile change), set again when it is restored;
 * - run-time switch through PUT /api/v1/steering (400 + stable code on bad input), metrics, and
 *   MP_PRIO on the running connection (kernel MIB MPTcpExtMPPrioTx);
 * - active-standby: LTE ~0 bytes while DSL is up; takes over when DSL is blackholed;
 * - destination classes pinned to LTE: bypassed traffic follows the class rule; the initial subflow
 *   of proxied (socks5) traffic follows the upstream's source binding;
 * - failback (load-balancing): after DSL returns both accesses carry subflows and DSL carries the
 *   bulk again within 1.5 s, the running transfer never stalls > 300 ms on the way back (a run short
 *   of a bound is measured once more, both printed, the second asserted).
 * Figures are printed as `# steering` lines. Needs `npx tsc -b` first.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { startDaemon, type DaemonHandle } from '../../lab/daemons.ts'
import { labModeConcentratorConfig } from '../../lab/lab-daemons-config.ts'
import { getProfile } from '../../lab/link-profile.ts'
import { e2eSkipReason } from '../../lab/netns.ts'
import { buildLab, type Lab } from '../../lab/topology.ts'
import {
  bytesBetween, dslBulkAt, longestStall, measurePriority, putSteering, sampleAccessBytes, startPacedDownload, startPacedSource,
  steeringCpeConfig
} from '../../lab/scenario-priority.ts'
import { parseMptcpMib } from '../../shared/src/metrics/kernel-mib.ts'

const PREFIX = 'hat-st-'
const skip = e2eSkipReason()
const sleep = async (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

describe('steering in the lab', { skip: skip ?? false, concurrency: false, timeout: 300_000 }, () => {
  const h: { lab?: Lab, conc?: DaemonHandle, cpe?: DaemonHandle } = {}
  const lab = (): Lab => { assert.ok(h.lab); return h.lab }
  const cpe = (): DaemonHandle => { assert.ok(h.cpe); return h.cpe }

  before(async () => {
    const l = h.lab = await buildLab({ prefix: PREFIX, profiles: { dsl: getProfile('vdsl'), lte: getProfile('lte') } })
    h.conc = await startDaemon({
      daemon: 'concentrator',
      config: labModeConcentratorConfig('socks5', { plan: l.plan }),
      ns: l.ns.hag,
      spawn: (argv) => l.spawn('hag', argv)
    })
    const base = steeringCpeConfig(l, 'priority-based')
    // A class pinned to LTE for the second inet server, which LAN traffic reaches directly (bypass): forwarded traffic follows the class rule.
    const pinned = l.plan.internet.servers[1]?.v4 ?? ''
    // A second class pinned to LTE for the third server, reached through the proxy (socks5): the upstream to
    // the concentrator is bound to LTE's address.
    const proxied = l.plan.internet.servers[2]?.v4 ?? ''
    const classes = [{ name: 'pinned', destinations: [`${pinned}/32`], access: 'lte' },
      { name: 'proxied', destinations: [`${proxied}/32`], access: 'lte' }]
    const config = {
      ...base,
      intercept: { ...(base['intercept'] as object), bypass: { destinations: [pinned] } },
      steering: { ...(base['steering'] as object), classes }
    }
    h.cpe = await startDaemon({ daemon: 'cpe', config, ns: l.ns.cpe, spawn: (argv) => l.spawn('cpe', argv) })
    await startPacedSource(l) // paced HTTP sources in inet, killed at teardown
    await startPacedSource(l, pinned)
    await startPacedSource(l, proxied)
  })
  after(async () => {
    // HST_STEERING_LOG=<file>: keep the CPE log tail of a failed run.
    if (process.env['HST_STEERING_LOG'] !== undefined && h.cpe !== undefined) writeFileSync(process.env['HST_STEERING_LOG'], h.cpe.logTail(60_000))
    await h.cpe?.stop().catch(() => null)
    await h.conc?.stop().catch(() => null)
    await h.lab?.teardown()
  })

  const steering = async (): Promise<{ mode: string | null, backup: Record<string, boolean | null>, lteActive: boolean }> =>
    (JSON.parse((await cpe().get('/api/v1/steering')).body) as {
      steering: {
        mode: string | null,
        backup: Record<string, boolean | null>,
        lteActive: boolean
      }
    }).steering
  const healthState = async (path: string): Promise<string | undefined> =>
    (JSON.parse((await cpe().get('/api/v1/uplinks')).body) as {
      uplinks: Array<{
        name: string,
        health?: { state: string }
      }>
    }).uplinks.find((u) => u.name === path)?.health?.state
  const lteEndpointBackup = async (): Promise<boolean> => {
    const eps = JSON.parse(await lab().ns.cpe.exec(['ip', '-j', 'mptcp', 'endpoint', 'show'])) as Array<{
      address: string,
      flags?: string[],
      backup?: boolean
    }>
    const e = eps.find((x) => x.address === lab().plan.access.lte.cpeSide.cpe.v4)
    return e?.backup === true || (e?.flags ?? []).includes('backup')
  }
  const mib = async (): Promise<Map<string, number>> => parseMptcpMib(await lab().ns.cpe.exec(['cat', '/proc/net/netstat']))
  const waitFor = async (what: string, fn: () => Promise<boolean>, boundMs: number): Promise<number> => {
    const t0 = Date.now()
    while (Date.now() - t0 < boundMs) {
      if (await fn()) return Date.now() - t0
      await sleep(20)
    }
    const diag = await lab().ns.cpe.exec(['sh', '-c',
      'ip mptcp endpoint show; ss -tniMH dport = :1080 or sport = :1080 | head -40']).catch((e: unknown) => String(e))
    throw new Error(`${what}: not within ${boundMs} ms; ${diag}; ${cpe().logTail(1500)}`)
  }
  /** Local address and whether it is the initial (MP_CAPABLE) subflow, of each subflow to the concentrator. */
  const subflowKinds = async (): Promise<Array<{ local: string, initial: boolean }>> => {
    const out = await lab().ns.cpe.exec(['ss', '-tniH', 'state', 'established', 'dport', '=', ':1080'])
    const rows: Array<{ local: string, initial: boolean }> = []
    for (const line of out.split('\n')) {
      if (line.trim() === '') continue
      if (!/^\s/.test(line)) {
        rows.push({
          local: line.trim().split(/\s+/)[2]?.replace(/:\d+$/, '').replace(/%.*$/, '') ?? '',
          initial: false
        }); continue
      }
      const flags = /tcp-ulp-mptcp flags:(\S*)/.exec(line)?.[1]
      const last = rows[rows.length - 1]
      if (flags !== undefined && last !== undefined) last.initial = /[Mm]/.test(flags)
    }
    return rows
  }

  const subflowSources = async (): Promise<string[]> => (await subflowKinds()).map((r) => r.local)

  test('priority-based: below the DSL rate LTE carries < 5 %; above, DSL + LTE carry ≥ 90 % of the sum', async () => {
    await waitFor('dsl and lte up', async () => (await healthState('dsl')) === 'up' && (await healthState('lte')) === 'up', 8000)
    assert.equal(await lteEndpointBackup(), true, 'LTE endpoint flagged backup while DSL is not loaded')
    const measure = async (): Promise<Awaited<ReturnType<typeof measurePriority>>> => measurePriority(lab(), () => {},
      { sourceRunning: true, dslDowns: async () => cpe().metric('hybrid_path_state_changes_total', { path: 'dsl', to: 'down' }) })
    let r = await measure()
    if (r.above.ofSum < 0.9) {
      // The links are emulated in user space (the TUN delay line) on a shared 2-core machine: one CI
      // run measured 86.7 % (DSL 46.4 + LTE 31.6 of 90 Mbit/s) where a rerun minutes later gave
      // 98.8 %. A short figure is measured once more, after LTE is back to backup; both are reported.
      console.log(`# steering priority above: ${(r.above.ofSum * 100).toFixed(1)} % of the sum on the first try; measuring once more`)
      await waitFor('lte backup again', lteEndpointBackup, 8000)
      r = await measure()
    }
    console.log(`# steering priority below: ${r.below.demandMbps} Mbit/s demand${r.below.repeated ? ' (repeated once: path health declared dsl down during the first try)' : ''}, DSL ${r.below.dslMB} MB, LTE ${r.below.lteMB} MB, LTE share ${(r.below.lteShare * 100).toFixed(2)} %`)
    console.log(`# steering priority above: DSL ${r.above.dslMbps} + LTE ${r.above.lteMbps} Mbit/s over ${r.above.windowS} s = ${(r.above.ofSum * 100).toFixed(1)} % of ${r.above.sumOfRatesMbps}; LTE joined after ${String(r.above.lteJoinedAfterMs)} ms`)
    assert.ok(r.below.dslMB > 5, 'the paced download ran')
    assert.ok(r.below.lteShare < 0.05, `LTE share below the DSL rate ${r.below.lteShare}`)
    assert.ok(r.above.ofSum >= 0.9, `DSL + LTE above the DSL rate: ${r.above.ofSum} of the sum`)
    assert.ok(await cpe().metric('hybrid_steering_backup_changes_total', { path: 'lte', to: 'nobackup', reason: 'steering' }) >= 1)
    assert.equal(await cpe().metric('hybrid_steering_mode', { mode: 'priority-based' }), 1)
  })

  test('run-time switch: bad input → 400 with a stable code; load-balancing clears the flag with MP_PRIO on the running connection', async () => {
    await waitFor('lte backup again', lteEndpointBackup, 8000)
    const bad = await putSteering(lab(), cpe(), { mode: 'fastest' })
    assert.equal(bad.status, 400)
    assert.equal((JSON.parse(bad.body) as { error: { code: string } }).error.code, 'HYBRID_ERR_MGMT_BAD_REQUEST')
    const extra = await putSteering(lab(), cpe(), { mode: 'load-balancing', split: 50 })
    assert.equal(extra.status, 400)
    // From active-standby (LTE backup and nothing flips it back by itself, unlike priority-based's
    // load hysteresis), so the switch below must change the flag.
    assert.equal((await putSteering(lab(), cpe(), { mode: 'active-standby' })).status, 200)
    await waitFor('lte backup (active-standby)', lteEndpointBackup, 3000)
    const download = startPacedDownload(lab(), 1_500_000, 6)
    const lteAddress = lab().plan.access.lte.cpeSide.cpe.v4
    await waitFor('running download with an LTE subflow', async () => (await subflowSources()).includes(lteAddress), 5000)
    await sleep(300) // the join's handshake done on both ends
    const before = await mib()
    assert.equal(await lteEndpointBackup(), true, 'LTE still backup right before the switch')
    const ok = await putSteering(lab(), cpe(), { mode: 'load-balancing' })
    assert.equal(ok.status, 200, ok.body)
    await waitFor('LTE flag cleared (after a failback pulse that may be running)', async () => !(await lteEndpointBackup()), 3000)
    const deltaPrio = ((await mib()).get('MPPrioTx') ?? 0) - (before.get('MPPrioTx') ?? 0)
    if (deltaPrio < 1) console.log(`# steering switch diagnostics: ${await lab().ns.cpe.exec(['sh', '-c', 'ip mptcp endpoint show; ss -tniMH dport = :1080 | head -20']).catch((e: unknown) => String(e))}`)
    console.log(`# steering switch: PUT load-balancing → MPTcpExtMPPrioTx +${deltaPrio} on the running connection`)
    assert.ok(deltaPrio >= 1, 'endpoint change sent MP_PRIO on the running connection')
    assert.equal((await steering()).mode, 'load-balancing')
    assert.equal(await cpe().metric('hybrid_steering_mode', { mode: 'load-balancing' }), 1)
    assert.equal(await cpe().metric('hybrid_steering_mode', { mode: 'priority-based' }), 0)
    assert.equal(await cpe().metric('hybrid_steering_mode', { mode: 'active-standby' }), 0)
    assert.equal((await download).error, null)
  })

  test('active-standby: LTE ~0 bytes while DSL is up, takes over when DSL is blackholed', async () => {
    assert.equal((await putSteering(lab(), cpe(), { mode: 'active-standby' })).status, 200)
    assert.equal(await lteEndpointBackup(), true)
    const s = sampleAccessBytes(lab())
    const download = startPacedDownload(lab(), 1_500_000, 14)
    await sleep(5000)
    const upPhase = bytesBetween(s.series, Date.now() - 3500, Date.now())
    await lab().setAccessState('dsl', 'blackhole')
    let tDown = 0
    try {
      await waitFor('dsl down', async () => (await healthState('dsl')) === 'down', 4000)
      tDown = Date.now()
      await sleep(3000)
    } finally { await lab().setAccessState('dsl', 'up') }
    const downPhase = bytesBetween(s.series, tDown + 500, Date.now())
    const d = await download
    await s.stop()
    const share = (b: { dsl: number, lte: number }): number => b.lte / Math.max(b.dsl + b.lte, 1)
    console.log(`# steering active-standby: DSL up: LTE ${(upPhase.lte / 1e3).toFixed(0)} kB of ${((upPhase.dsl + upPhase.lte) / 1e6).toFixed(1)} MB (${(share(upPhase) * 100).toFixed(2)} %); DSL blackholed: LTE ${(share(downPhase) * 100).toFixed(1)} % of ${((downPhase.dsl + downPhase.lte) / 1e6).toFixed(1)} MB; download error ${String(d.error)}`)
    assert.ok(share(upPhase) < 0.05, `LTE share with DSL up ${share(upPhase)}`)
    assert.ok(share(downPhase) > 0.9 && downPhase.lte > 2e6, `LTE took over: ${share(downPhase)}`)
    assert.equal(d.error, null)
  })

  test('smallest-delay: LTE backup while DSL is faster; DSL slower than LTE → LTE carries traffic; back', async () => {
    const rtt = async (path: string): Promise<number | null> =>
      (JSON.parse((await cpe().get('/api/v1/uplinks')).body) as {
        uplinks: Array<{
          name: string,
          health?: { rttMs: number | null }
        }>
      }).uplinks.find((u) => u.name === path)?.health?.rttMs ?? null
    assert.equal((await putSteering(lab(), cpe(), { mode: 'smallest-delay' })).status, 200)
    assert.equal((await steering()).mode, 'smallest-delay')
    await waitFor('LTE backup while DSL has the smaller delay', lteEndpointBackup, 5000)
    const vdsl = getProfile('vdsl')
    // DSL one-way delay 10 → 60 ms: DSL's probe RTT (≈ 121 ms) above LTE's (≈ 61 ms)
    await lab().setProfile('dsl', { ...vdsl, name: 'vdsl-slow', up: { ...vdsl.up, delayMs: 60 }, down: { ...vdsl.down, delayMs: 60 } })
    try {
      const slower = await waitFor('LTE no longer backup once DSL is slower (hold 3 s)', async () => !(await lteEndpointBackup()), 15_000)
      console.log(`# steering smallest-delay: DSL delay raised: LTE flag cleared after ${slower} ms (rtt dsl ${String(await rtt('dsl'))} ms, lte ${String(await rtt('lte'))} ms)`)
      assert.ok((await rtt('dsl') ?? 0) > (await rtt('lte') ?? Infinity), 'probe RTT: DSL above LTE')
      assert.ok(await cpe().metric('hybrid_steering_backup_changes_total', { path: 'lte', to: 'nobackup', reason: 'steering' }) >= 1)
    } finally {
      await lab().setProfile('dsl', vdsl)
    }
    const back = await waitFor('LTE backup again once DSL is faster again', lteEndpointBackup, 15_000)
    console.log(`# steering smallest-delay: DSL delay restored: LTE backup again after ${back} ms`)
    assert.equal(await healthState('dsl'), 'up', 'a slower DSL is not a dead DSL')
  })

  test('class pinned to LTE: its rule is installed and bypassed traffic to it leaves over LTE', async () => {
    const pinned = lab().plan.internet.servers[1]?.v4 ?? ''
    assert.match(await lab().ns.cpe.exec(['ip', 'rule', 'show']), new RegExp(`31900:\\s+from all to ${pinned.replace(/\./g, '\\.')} lookup 200`))
    const view = (JSON.parse((await cpe().get('/api/v1/steering')).body) as { steering: { classes: unknown[] } }).steering.classes
    assert.deepEqual(view, [{ name: 'pinned', access: 'lte', active: true }, { name: 'proxied', access: 'lte', active: true }])
    const before = { dsl: await lab().accessBytes('dsl'), lte: await lab().accessBytes('lte') }
    const d = await startPacedDownload(lab(), 1_000_000, 3, pinned)
    const after = { dsl: await lab().accessBytes('dsl'), lte: await lab().accessBytes('lte') }
    const up = { dsl: after.dsl.up - before.dsl.up, lte: after.lte.up - before.lte.up }
    console.log(`# steering class pinned to lte: ${(d.bytes / 1e6).toFixed(1)} MB fetched directly (bypass); CPE → hag bytes (the ACKs): dsl ${up.dsl}, lte ${up.lte}`)
    assert.equal(d.error, null)
    assert.ok(d.bytes > 1e6)
    assert.ok(up.lte > 5 * Math.max(up.dsl, 1000), `upstream of the pinned class: dsl ${up.dsl} B, lte ${up.lte} B`)
  })

  test('class pinned to LTE, proxied (socks5): the initial subflow of the upstream to the concentrator leaves over LTE', async () => {
    const proxied = lab().plan.internet.servers[2]?.v4 ?? ''
    const dslAddress = lab().plan.access.dsl.cpeSide.cpe.v4
    const lteAddress = lab().plan.access.lte.cpeSide.cpe.v4
    await sleep(1500) // connections of the tests before have closed
    const before = { dsl: await lab().accessBytes('dsl'), lte: await lab().accessBytes('lte') }
    const initial = new Set<string>()
    const joins = new Set<string>()
    const download = startPacedDownload(lab(), 1_000_000, 4, proxied)
    const t0 = Date.now()
    while (Date.now() - t0 < 3500) {
      for (const r of await subflowKinds()) (r.initial ? initial : joins).add(r.local)
      await sleep(100)
    }
    const d = await download
    const after = { dsl: await lab().accessBytes('dsl'), lte: await lab().accessBytes('lte') }
    const down = { dsl: after.dsl.down - before.dsl.down, lte: after.lte.down - before.lte.down }
    console.log(`# steering class pinned to lte, proxied: ${(d.bytes / 1e6).toFixed(1)} MB through the concentrator; initial subflows from ${[...initial].join(', ')}; joins from ${[...joins].join(', ') || 'none'}; hag → CPE bytes: dsl ${down.dsl}, lte ${down.lte} (the share follows the steering mode's backup flags and the joins)`)
    assert.equal(d.error, null)
    assert.ok(d.bytes > 2e6)
    assert.ok(initial.has(lteAddress), `an initial subflow from the LTE address: ${[...initial].join(', ')}`)
    assert.ok(!initial.has(dslAddress), `no initial subflow from the DSL address: ${[...initial].join(', ')}`)
  })

  interface Failback { both: number, bulk: number | undefined, stall: number, dslShareAfter: number, error: string | null, pulses: number }
  /** A 12 Mbit/s source-paced download across a 4 s DSL blackhole in load-balancing; figures from DSL's return. */
  const failbackRun = async (label: string): Promise<Failback> => {
    await waitFor('dsl up', async () => (await healthState('dsl')) === 'up', 6000)
    assert.equal((await putSteering(lab(), cpe(), { mode: 'load-balancing' })).status, 200)
    await sleep(1500)
    const s = sampleAccessBytes(lab())
    const download = startPacedDownload(lab(), 1_500_000, 16)
    await waitFor('running download on both accesses', async () => (await subflowSources()).length >= 2, 5000)
    await sleep(1500)
    await lab().setAccessState('dsl', 'blackhole')
    try {
      await waitFor('dsl down', async () => (await healthState('dsl')) === 'down', 4000)
      await sleep(3000) // the bulk is on LTE now
    } finally { await lab().setAccessState('dsl', 'up') }
    const tBack = Date.now()
    const both = await waitFor('both accesses carry subflows again', async () => {
      const src = await subflowSources()
      return src.includes(lab().plan.access.dsl.cpeSide.cpe.v4) && src.includes(lab().plan.access.lte.cpeSide.cpe.v4)
    }, 4000)
    await sleep(4000)
    const d = await download
    await s.stop()
    const r: Failback = {
      both,
      bulk: ((t) => t === undefined ? undefined : t - tBack)(dslBulkAt(s.series, tBack, 300, 0.8)),
      stall: longestStall(d, tBack - 200, tBack + 4000),
      dslShareAfter: ((b) => b.dsl / Math.max(b.dsl + b.lte, 1))(bytesBetween(s.series, tBack + 1500, tBack + 4000)),
      error: d.error,
      pulses: await cpe().metric('hybrid_steering_backup_changes_total', { path: 'lte', to: 'backup', reason: 'failback' })
    }
    const bins = [...Array(15).keys()].map((i) => {
      const b = bytesBetween(s.series, tBack + i * 200,
        tBack + (i + 1) * 200); return `${Math.round(b.dsl / 1e3)}/${Math.round(b.lte / 1e3)}`
    }).join(' ')
    console.log(`# steering failback ${label}: both accesses carry subflows ${both} ms after DSL returned; DSL ≥ 80 % of the bytes (300 ms window) from ${r.bulk === undefined ? 'never' : `${r.bulk} ms`}; DSL share 1.5–4 s after: ${(r.dslShareAfter * 100).toFixed(1)} %; longest stall on the way back ${r.stall} ms; pulses ${r.pulses}; kB dsl/lte per 200 ms: ${bins}`)
    return r
  }

  test('failback (load-balancing): DSL carries the bulk again within 1.5 s, no stall > 300 ms on the way back', async () => {
    // The links are emulated in user space on a shared 2-core machine: a run short of a bound (one in
    // six in docs/steering.md, on a host at load average 12) is measured once more, both reported,
    // the second asserted — as the priority-based and aggregation figures are.
    const within = (x: Failback): boolean =>
      x.error === null && x.both <= 1500 && x.bulk !== undefined && x.bulk <= 1500 && x.stall <= 300 && x.pulses >= 1
    let r = await failbackRun('with the pulse')
    if (!within(r)) {
      console.log('# steering failback: a figure short of its bound; measured once more')
      r = await failbackRun('with the pulse, second run')
    }
    assert.equal(r.error, null)
    assert.ok(r.both <= 1500, `subflows on both accesses after ${r.both} ms`)
    assert.ok(r.bulk !== undefined && r.bulk <= 1500, `DSL carried the bulk from ${String(r.bulk)} ms`)
    assert.ok(r.stall <= 300, `stall ${r.stall} ms`)
    assert.ok(r.pulses >= 1)
  })

  test('stop puts the LTE endpoint flag back', async () => {
    await cpe().stop()
    assert.equal(await lteEndpointBackup(), false)
  })

  test('for comparison, failback without the pulse (failover.failbackBackupMs 0): figures only', async () => {
    const config = steeringCpeConfig(lab(), 'load-balancing')
    h.cpe = await startDaemon({
      daemon: 'cpe',
      config: { ...config, failover: { ...(config['failover'] as object), failbackBackupMs: 0 } },
      ns: lab().ns.cpe,
      spawn: (argv) => lab().spawn('cpe', argv)
    })
    const r = await failbackRun('without the pulse')
    assert.equal(r.error, null)
    assert.equal(r.pulses, 0)
  })
})
