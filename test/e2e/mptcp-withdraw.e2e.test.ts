/**
 * The kernel fact failover relies on (docs/failover.md, "Mechanism"): while DSL is blackholed
 * (carrier up, every packet dropped in the DSL router), `ip mptcp endpoint delete id 0 <DSL
 * address>` on the CPE closes the running connection's initial subflow on the CPE *and* — through
 * REMOVE_ADDR carried by the live LTE subflow — on the concentrator side, which then stops sending
 * on the dead path. Kernel MPTCP alone (no daemons): an MPTCP download from hag's flow server to
 * the cpe namespace (lab/scenario-receiver.ts), subflows read with `ss` on both ends, MIB counters
 * from `nstat`. Lab prefix hat-wx-.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { LAB_PORTS } from '../../lab/addresses.ts'
import { getProfile } from '../../lab/link-profile.ts'
import { e2eSkipReason } from '../../lab/netns.ts'
import { buildLab, type Lab } from '../../lab/topology.ts'

const skip = e2eSkipReason()
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** Local and peer address of the established TCP sockets of the flow port in a namespace. */
async function flowSockets (lab: Lab, ns: 'cpe' | 'hag'): Promise<string[]> {
  const out = await lab.ns[ns].exec(['ss', '-tnH', 'state', 'established', `( sport = :${LAB_PORTS.flow} or dport = :${LAB_PORTS.flow} )`])
  return out.split('\n').map((l) => l.trim()).filter((l) => l !== '').map((l) => l.split(/\s+/).slice(2, 4).join(' '))
}

async function mib (lab: Lab, ns: 'cpe' | 'hag', name: string): Promise<number> {
  const out = await lab.ns[ns].exec(['nstat', '-az', name])
  const m = new RegExp(`^${name}\\s+(\\d+)`, 'm').exec(out)
  return m === null ? 0 : Number(m[1])
}

describe('kernel MPTCP: withdrawing a blackholed access from a running connection', { skip: skip ?? false, concurrency: false, timeout: 120_000 },
  () => {
    const h: { lab?: Lab, child?: ChildProcess } = {}
    before(async () => {
      h.lab = await buildLab({ prefix: 'hat-wx-', profiles: { dsl: getProfile('vdsl'), lte: getProfile('lte') } })
    })
    after(async () => {
      h.child?.kill()
      await h.lab?.teardown()
    })

    test('endpoint delete id 0 closes the DSL subflow on both ends; REMOVE_ADDR travels over LTE', async () => {
      const lab = h.lab!
      const dsl = lab.plan.access.dsl.cpeSide.cpe.v4
      const lte = lab.plan.access.lte.cpeSide.cpe.v4
      const child = h.child = lab.spawn('cpe', [process.execPath, '--import', 'tsx', 'lab/scenario-receiver.ts',
        '--host', lab.plan.service.v4, '--port', String(LAB_PORTS.flow), '--protocol', 'mptcp', '--ms', '15000'])
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => { reject(new Error('receiver did not connect within 20 s')) }, 20_000)
        child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('"connected"')) { clearTimeout(timer); resolve() } })
      })
      let before: string[] = []
      for (let i = 0; i < 50; i++) {
        before = await flowSockets(lab, 'hag')
        if (before.some((s) => s.includes(dsl)) && before.some((s) => s.includes(lte))) break
        await sleep(100)
      }
      assert.ok(before.some((s) => s.includes(dsl)) && before.some((s) => s.includes(lte)), `hag has a subflow from each access: ${before.join(' | ')}`)
      const rmAddrHag = await mib(lab, 'hag', 'MPTcpExtRmAddr')

      await lab.setAccessState('dsl', 'blackhole')
      try {
        await sleep(300)
        assert.ok((await flowSockets(lab, 'hag')).some((s) => s.includes(dsl)), 'a blackhole alone leaves the DSL subflow in place')
        await lab.ns.cpe.exec(['ip', 'mptcp', 'endpoint', 'delete', 'id', '0', dsl])
        const t0 = Date.now()
        let hag: string[] = []
        for (let i = 0; i < 30; i++) {
          hag = await flowSockets(lab, 'hag')
          if (!hag.some((s) => s.includes(dsl))) break
          await sleep(50)
        }
        const ms = Date.now() - t0
        console.log(`# withdraw: concentrator closed its DSL subflow ${ms} ms after the CPE's endpoint delete (DSL blackholed)`)
        assert.ok(!hag.some((s) => s.includes(dsl)), `concentrator still has the DSL subflow: ${hag.join(' | ')}`)
        assert.ok(hag.some((s) => s.includes(lte)), 'the LTE subflow carries on')
        const cpe = await flowSockets(lab, 'cpe')
        assert.ok(!cpe.some((s) => s.startsWith(dsl)) && cpe.some((s) => s.startsWith(lte)), `cpe: ${cpe.join(' | ')}`)
        assert.ok(await mib(lab, 'cpe', 'MPTcpExtRmAddrTx') >= 1, 'REMOVE_ADDR sent')
        assert.ok(await mib(lab, 'hag', 'MPTcpExtRmAddr') > rmAddrHag, 'REMOVE_ADDR received by the concentrator (only LTE delivers packets)')
        assert.ok(ms < 3000)
      } finally {
        await lab.setAccessState('dsl', 'up')
      }
    })
  })
