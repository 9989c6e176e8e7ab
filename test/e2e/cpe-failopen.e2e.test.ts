/**
 * The CPE agent's footprint in the lab (namespaces `hat-ce5-f-*`), built agent + concentrator:
 * - clean stop: with `multipath.rules: managed` (and MPTCP limits different from the lab's) the agent
 *   changes nft, v4/v6 rules, routes, endpoints and limits; after SIGTERM `nft list ruleset`,
 *   `ip rule`, `ip -6 rule`, all route tables, `ip mptcp endpoint` and `ip mptcp limits` in cpe equal
 *   the snapshot taken before the start;
 * - fail-open: after `kill -9` the owner table vanishes with the agent's nft holder and LAN clients
 *   (v4 and v6) reach inet by plain routing over DSL; the concentrator sees none of it.
 * Needs `npx tsc -b` first.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { e2eSkipReason } from '../../lab/netns.ts'
import { enableLabTfo, kernelStateSnapshot, startCpeAgent } from '../../lab/cpe-setup.ts'
import { startConcentrator, type DaemonHandle } from '../../lab/daemons.ts'
import { getProfile } from '../../lab/link-profile.ts'
import { buildLab, type Lab } from '../../lab/topology.ts'

const PREFIX = 'hat-ce5-f-'
const skip = e2eSkipReason()
const URLS = ['http://203.0.113.10/100k', 'http://[2001:db8:ee::10]/100k']

function report (what: string, value: unknown): void {
  process.stdout.write(`# cpe-e2e ${what}: ${JSON.stringify(value)}\n`)
}

describe('CPE agent: clean stop restores the kernel state, kill -9 fails open', { skip: skip ?? false, timeout: 180_000 }, () => {
  let lab: Lab
  let conc: DaemonHandle
  const agents: DaemonHandle[] = []

  before(async () => {
    lab = await buildLab({ prefix: PREFIX, profiles: { dsl: getProfile('vdsl'), lte: getProfile('lte') } })
    await enableLabTfo(lab)
    conc = await startConcentrator(lab)
  })

  after(async () => {
    for (const a of agents) await a.stop(1000)
    await conc?.stop()
    await lab?.teardown()
  })

  const fetchAll = async (): Promise<void> => {
    for (const url of URLS) {
      const size = await lab.ns.lan.exec(['curl', '-sS', '--max-time', '10', '-o', '/dev/null', '-w', '%{size_download}', url], { timeoutMs: 15_000 })
      assert.equal(size, '100000', url)
    }
  }
  const concAccepted = async (): Promise<number> => conc.metric('hybrid_connections_accepted_total')

  test('SIGTERM: nft ruleset, ip rule / ip -6 rule, routes, MPTCP endpoints and limits exactly as before the start', async () => {
    const before0 = await kernelStateSnapshot(lab)
    const cpe = await startCpeAgent(lab, { multipathRules: 'managed', multipath: { subflows: 3 } })
    agents.push(cpe)
    const running = await kernelStateSnapshot(lab)
    const changed = Object.keys(before0).filter((k) => before0[k] !== running[k])
    report('state changed while running', changed)
    assert.match(running['nft'] ?? '', /table inet hybrid_cpe/)
    assert.match(running['rule4'] ?? '', /fwmark 0x1 lookup 300/)
    assert.match(running['limits'] ?? '', /subflows 3/)
    const accepted0 = await concAccepted()
    await fetchAll()
    assert.equal(await concAccepted() - accepted0, 2, 'both fetches went through the concentrator')
    assert.equal(await cpe.stop(), 0)
    const after0 = await kernelStateSnapshot(lab)
    for (const key of Object.keys(before0)) assert.equal(after0[key], before0[key], `${key} differs after the stop`)
  })

  test('kill -9: the owner table vanishes, LAN clients reach inet directly over DSL (v4, v6)', async () => {
    const cpe = await startCpeAgent(lab)
    agents.push(cpe)
    const accepted0 = await concAccepted()
    await fetchAll()
    assert.equal(await concAccepted() - accepted0, 2)
    const killedAt = Date.now()
    process.kill(cpe.pid, 'SIGKILL')
    let goneMs = -1
    while (Date.now() - killedAt < 5000) {
      if (!(await lab.ns.cpe.exec(['nft', 'list', 'tables'])).includes('hybrid_cpe')) { goneMs = Date.now() - killedAt; break }
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    assert.ok(goneMs >= 0, 'table still there 5 s after the kill')
    const accepted1 = await concAccepted()
    const dslDown0 = (await lab.accessBytes('dsl')).down
    const lteDown0 = (await lab.accessBytes('lte')).down
    await fetchAll()
    const viaDsl = (await lab.accessBytes('dsl')).down - dslDown0
    const viaLte = (await lab.accessBytes('lte')).down - lteDown0
    report('fail-open', { tableGoneMs: goneMs, dslDownBytes: viaDsl, lteDownBytes: viaLte })
    assert.equal(await concAccepted(), accepted1, 'the concentrator saw the fail-open connections')
    assert.ok(viaDsl > 200_000, `dsl carried ${viaDsl} bytes`)
    assert.ok(viaLte < 20_000, `lte carried ${viaLte} bytes`)
    assert.equal(await cpe.stop(), null) // exit status of a SIGKILLed process
  })
})
