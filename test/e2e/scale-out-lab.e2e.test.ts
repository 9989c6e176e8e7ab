/**
 * The scale-out lab (docs/scale-out.md "The lab scenario"): three concentrator instances behind one
 * service address and an nftables L4 balancer in hag (prefix hat-lb-), the real CPE agent in cpe
 * (socks5, then convert; transparent in a lab of its own), long-lived echo connections from lan (lab/scale-out-load.ts).
 *
 * Proves: (a) 100 connections spread over the three instances (each instance's accepted count);
 * (b) every connection keeps both subflows on one instance: per instance as many LTE joins on its
 * own join address as initial subflows, and MPJoinNoTokenFound stays 0 in every instance (DSL
 * joins to the join address, which the CPE adds after a DSL path flap, are counted and logged);
 * (c) SIGKILL of one instance ends exactly its connections, the others keep
 * echoing, and after the health check new connections go to the survivors only; (d) a fourth
 * instance added to the balancer takes new connections without disturbing the running ones.
 * Needs `npm run build` first.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { getProfile } from '../../lab/link-profile.ts'
import { e2eSkipReason } from '../../lab/netns.ts'
import { bothAccesses, countSubflows, type SubflowCounts } from '../../lab/scale-out-demo.ts'
import { buildScaleOutLab, startEchoLoad, type ConcentratorInstance, type EchoConnStats, type EchoLoad, type ScaleOutLab } from '../../lab/scale-out.ts'
import { parseMptcpMib } from '../../shared/src/metrics/kernel-mib.ts'
import { waitFor } from '../helpers/wait-for.ts'

const PREFIX = 'hat-lb-'
const skip = e2eSkipReason()
const sleep = async (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

describe('scale-out lab: three concentrators behind an nft balancer', { skip: skip ?? false, concurrency: false, timeout: 420_000 }, () => {
  const h: { s?: ScaleOutLab, load?: EchoLoad } = {}
  const s = (): ScaleOutLab => { assert.ok(h.s); return h.s }
  const load = (): EchoLoad => { assert.ok(h.load); return h.load }
  const running = (): ConcentratorInstance[] => s().instances().filter((i) => i.daemon !== undefined)

  const accepted = async (i: ConcentratorInstance): Promise<number> => i.daemon?.metric('hybrid_connections_accepted_total') ?? 0
  const acceptedAll = async (): Promise<Map<number, number>> =>
    new Map(await Promise.all(running().map(async (i): Promise<[number, number]> => [i.plan.id, await accepted(i)])))
  const noTokenFound = async (i: ConcentratorInstance): Promise<number> =>
    parseMptcpMib(await i.ns.exec(['cat', '/proc/net/netstat'])).get('MPJoinNoTokenFound') ?? 0

  /** Established subflows from the CPE in an instance (countSubflows: initial ones, DSL and LTE joins to its join address). */
  const subflows = async (i: ConcentratorInstance): Promise<SubflowCounts> => {
    const p = s().lab.plan
    return countSubflows(await i.ns.exec(['ss', '-tnH', 'state', 'established']), {
      join: `${i.plan.address}:${s().joinPort()}`, dslCpe: p.access.dsl.cpeSide.cpe.v4, lteCpe: p.access.lte.cpeSide.cpe.v4
    })
  }
  /**
   * Waits (bounded) until every connection of every running instance (its hybrid_connections_active)
   * has a subflow over DSL and one over LTE on that same instance; returns the per-instance figures.
   * Normally these are the initial subflow and the LTE join (initial === lteJoins === active).
   */
  const bothSubflowsEverywhere = async (): Promise<Map<number, SubflowCounts & { active: number }>> => {
    let last = new Map<number, SubflowCounts & { active: number }>()
    await waitFor('a DSL and an LTE subflow on its own instance for every connection', 30_000, async () => {
      last = new Map(await Promise.all(running().map(async (i): Promise<[number, SubflowCounts & { active: number }]> =>
        [i.plan.id, { ...await subflows(i), active: await i.daemon?.metric('hybrid_connections_active') ?? 0 }])))
      return [...last.values()].every((f) => bothAccesses(f, f.active))
    }).catch(async (err: unknown) => {
      const rows = await Promise.all(running().map(async (i) => `hag${i.plan.id}:\n${(await i.ns.exec(['ss', '-tnH'])).split('\n').filter((r) => !r.includes(':7 ')).join('\n')}`))
      throw new Error(`${(err as Error).message}: ${JSON.stringify([...last])}\n${rows.join('\n')}`)
    })
    return last
  }
  const byId = async (): Promise<Map<number, EchoConnStats>> => new Map((await load().stats()).map((c) => [c.id, c]))
  /** Every connection of `ids` that is open echoed more bytes after `ms` than before. */
  const stillFlowing = async (ids: readonly number[], ms: number): Promise<{ open: number, flowing: number }> => {
    const t0 = await byId()
    await sleep(ms)
    const t1 = await byId()
    const open = ids.filter((id) => t1.get(id)?.state === 'open')
    return { open: open.length, flowing: open.filter((id) => (t1.get(id)?.echoed ?? 0) > (t0.get(id)?.echoed ?? 0)).length }
  }
  const delta = (a: Map<number, number>, b: Map<number, number>): Map<number, number> =>
    new Map([...b].map(([id, n]) => [id, n - (a.get(id) ?? 0)]))
  const fmt = (m: Map<number, unknown>): string => [...m].map(([id, n]) => `hag${id}=${JSON.stringify(n)}`).join(' ')

  before(async () => {
    h.s = await buildScaleOutLab({ prefix: PREFIX, profiles: { dsl: getProfile('vdsl'), lte: getProfile('lte') }, instances: 3, mode: 'socks5' })
    h.load = await startEchoLoad(s().lab)
  })
  after(async () => {
    h.load?.stop()
    await h.s?.teardown()
  })

  test('transparent mode: the balancer steers every TCP connection from the accesses; spread and joins the same (own lab)', async () => {
    // A lab of its own (transparent instances intercept instead of listening), built and removed here.
    const t = await buildScaleOutLab({ prefix: 'hat-lbt-', profiles: { dsl: getProfile('vdsl'), lte: getProfile('lte') }, instances: 3, mode: 'transparent' })
    try {
      const tload = await startEchoLoad(t.lab)
      const opened = await tload.open(30)
      const p = t.lab.plan
      type Row = [number, SubflowCounts, number]
      const rows = async (): Promise<Row[]> => Promise.all(t.instances().map(async (i) =>
        [i.plan.id, countSubflows(await i.ns.exec(['ss', '-tnH', 'state', 'established']),
          { join: `${i.plan.address}:${t.joinPort()}`, dslCpe: p.access.dsl.cpeSide.cpe.v4, lteCpe: p.access.lte.cpeSide.cpe.v4 }),
        await i.daemon?.metric('hybrid_connections_accepted_total', { mode: 'transparent' }) ?? 0] as Row))
      let last = await rows()
      await waitFor('an LTE join per connection on its own instance', 30_000, async () => {
        last = await rows()
        return last.every(([, f, n]) => bothAccesses(f, n))
      }).catch((err: unknown) => { throw new Error(`${(err as Error).message}: ${JSON.stringify(last)}`) })
      const misses = await Promise.all(t.instances().map(async (i) => noTokenFound(i)))
      console.log(`# scale-out transparent: 30 connections, failed ${opened.failed}; per instance [id, subflows, accepted] ${JSON.stringify(last)}; MPJoinNoTokenFound ${misses.join(' ')}`)
      tload.stop()
      assert.equal(opened.failed, 0, opened.errors.join('; '))
      assert.equal(last.reduce((a, [, , n]) => a + n, 0), 30, 'every connection intercepted by an instance')
      for (const [id, f, n] of last) assert.ok(n >= 5 && f.lteJoins >= 5, `hag${id}: ${n} accepted, ${f.lteJoins} LTE joins`)
      assert.deepEqual(misses, [0, 0, 0])
    } finally {
      await t.teardown()
    }
  })

  test('(a) 100 connections from lan through the CPE (socks5) spread over the three instances; (b) both subflows of each on one instance', async () => {
    const before = await acceptedAll()
    const opened = await load().open(100)
    assert.equal(opened.failed, 0, opened.errors.join('; '))
    const spread = delta(before, await acceptedAll())
    const joins = await bothSubflowsEverywhere()
    const misses = new Map(await Promise.all(running().map(async (i): Promise<[number, number]> => [i.plan.id, await noTokenFound(i)])))
    console.log(`# scale-out socks5: 100 connections, accepted ${fmt(spread)}; subflows ${fmt(joins)}; MPJoinNoTokenFound ${fmt(misses)}`)
    assert.equal([...spread.values()].reduce((a, b) => a + b, 0), 100)
    for (const [id, n] of spread) assert.ok(n >= 20, `hag${id} took ${n} of 100`)
    assert.equal([...joins.values()].reduce((a, f) => a + f.initial, 0), 100, 'one initial subflow per connection')
    for (const [id, n] of misses) assert.equal(n, 0, `hag${id}: misrouted joins`)
    await load().close()
  })

  test('convert (RFC 8803): the same spread and joins on 30 connections', async () => {
    await s().restartCpe('convert')
    const before = await acceptedAll()
    const convertBefore = await Promise.all(running().map(async (i) => i.daemon?.metric('hybrid_connections_accepted_total', { mode: 'convert' }) ?? 0))
    const opened = await load().open(30)
    assert.equal(opened.failed, 0, opened.errors.join('; '))
    const spread = delta(before, await acceptedAll())
    const joins = await bothSubflowsEverywhere()
    const convertAfter = await Promise.all(running().map(async (i) => i.daemon?.metric('hybrid_connections_accepted_total', { mode: 'convert' }) ?? 0))
    console.log(`# scale-out convert: 30 connections, accepted ${fmt(spread)}; subflows ${fmt(joins)}`)
    assert.equal(convertAfter.reduce((a, b) => a + b, 0) - convertBefore.reduce((a, b) => a + b, 0), 30, 'all through the Convert listeners')
    for (const [id, n] of spread) assert.ok(n >= 5, `hag${id} took ${n} of 30`)
    for (const i of running()) assert.equal(await noTokenFound(i), 0, `hag${i.plan.id}: misrouted joins`)
  })

  test('(c) SIGKILL of one instance ends only its connections; the others keep flowing; new ones go to the survivors', async () => {
    const victim = s().instance(2)
    const live = (await load().stats()).filter((c) => c.state === 'open').map((c) => c.id)
    const active = async (i: ConcentratorInstance): Promise<number> => i.daemon?.metric('hybrid_connections_active') ?? 0
    await waitFor('the instances count exactly the open connections (the closed ones gone)', 15_000,
      async () => (await Promise.all(running().map(active))).reduce((a, b) => a + b, 0) === live.length)
    const onVictim = await active(victim)
    assert.ok(onVictim >= 5, `hag2 holds ${onVictim} connections`)
    const pathChanges = async (): Promise<number> => s().cpe().metric('hybrid_path_state_changes_total')
    const changesBefore = await pathChanges()
    const pid = await s().killInstance(2)
    let ended: EchoConnStats[] = []
    await waitFor(`the ${onVictim} connections of hag2 end`, 15_000, async () => {
      ended = (await load().stats()).filter((c) => live.includes(c.id) && c.state !== 'open')
      return ended.length >= onVictim
    }).catch((err: unknown) => { throw new Error(`${(err as Error).message}: ${ended.length} ended`) })
    await sleep(1000)
    ended = (await load().stats()).filter((c) => live.includes(c.id) && c.state !== 'open')
    const survivors = live.filter((id) => !ended.some((c) => c.id === id))
    const flow = await stillFlowing(survivors, 2000)
    const removed = await s().balancer.checkHealth()
    const changes = await pathChanges() - changesBefore
    const before = await acceptedAll()
    const opened = await load().open(30)
    const spread = delta(before, await acceptedAll())
    const states = ended.reduce<Record<string, number>>((m, c) => ({ ...m, [c.err ?? c.state]: (m[c.err ?? c.state] ?? 0) + 1 }), {})
    console.log(`# scale-out kill: hag2 (PID ${pid}) held ${onVictim} of ${live.length}; ended ${ended.length} ${JSON.stringify(states)}; survivors ${flow.flowing}/${survivors.length} flowing; health check removed ${removed.map((id) => `hag${id}`).join(',')}; CPE path state changes +${changes}; 30 new: failed ${opened.failed}, accepted ${fmt(spread)}`)
    assert.equal(ended.length, onVictim, 'exactly the killed instance\'s connections ended')
    assert.equal(flow.open, survivors.length, 'no other connection ended')
    assert.equal(flow.flowing, survivors.length, 'every other connection kept echoing')
    assert.deepEqual(removed, [2])
    assert.deepEqual(s().balancer.members(), [1, 3])
    assert.equal(opened.failed, 0, opened.errors.join('; '))
    assert.equal([...spread.values()].reduce((a, b) => a + b, 0), 30, 'all new connections on the survivors')
    for (const [id, n] of spread) assert.ok(n >= 10, `hag${id} took ${n} of 30`)
    await bothSubflowsEverywhere()
    for (const i of running()) assert.equal(await noTokenFound(i), 0, `hag${i.plan.id}: misrouted joins`)
  })

  test('(d) an added instance takes new connections; the running ones are not disturbed', async () => {
    const live = (await load().stats()).filter((c) => c.state === 'open').map((c) => c.id)
    const added = await s().addInstance()
    assert.deepEqual(s().balancer.members(), [1, 3, 4])
    const before = await acceptedAll()
    const opened = await load().open(30)
    const spread = delta(before, await acceptedAll())
    const flow = await stillFlowing(live, 2000)
    const joins = await bothSubflowsEverywhere()
    console.log(`# scale-out add: hag${added.plan.id} joined; 30 new: failed ${opened.failed}, accepted ${fmt(spread)}; running ${flow.flowing}/${live.length} flowing; subflows ${fmt(joins)}`)
    assert.equal(opened.failed, 0, opened.errors.join('; '))
    assert.ok((spread.get(added.plan.id) ?? 0) >= 5, `hag${added.plan.id} took ${spread.get(added.plan.id) ?? 0} of 30`)
    assert.equal(flow.open, live.length, 'no running connection ended')
    assert.equal(flow.flowing, live.length, 'every running connection kept echoing')
    assert.equal(await noTokenFound(added), 0)
    assert.ok((joins.get(added.plan.id)?.lteJoins ?? 0) >= 5, 'the new instance\'s connections joined its own address')
    for (const i of running()) assert.equal(await noTokenFound(i), 0, `hag${i.plan.id}: misrouted joins`)
  })
})
