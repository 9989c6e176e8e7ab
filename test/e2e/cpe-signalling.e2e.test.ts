/**
 * CPE signalling faults end to end (namespaces `hat-cs-*`): the built agent in cpe (TPROXY, MPTCP to
 * the built concentrator in hag), socks5 mode, vdsl + lte profiles.
 *
 * - half-close: LAN clients that write a request and FIN at once (`nc -N`), or FIN before any byte,
 *   towards the lab echo server (which answers and closes only on the client's FIN); every one must
 *   get its echo and the server's FIN, and the agent's relays must be gone (not left for the 1 h
 *   idle timeout);
 * - pipelining memory: a destination whose SYNs are dropped (nft in inet) fails by the reply
 *   deadline, and the concentrator is not switched to stepwise (GET /api/v1/status
 *   `concentrator.stepwise` stays empty) so other LAN connections keep the pipelined handshake.
 * - convert mode (agent restarted): the same half-close loop through the Transport Converter.
 * Needs `npx tsc -b` first.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { e2eSkipReason } from '../../lab/netns.ts'
import { enableLabTfo, startCpeAgent } from '../../lab/cpe-setup.ts'
import { convertConcentratorConfig, convertCpeConfig } from '../../lab/convert-setup.ts'
import { startDaemon, type DaemonHandle } from '../../lab/daemons.ts'
import { getProfile } from '../../lab/link-profile.ts'
import { buildLab, type Lab } from '../../lab/topology.ts'
import { CONN_LOOP_SCRIPT } from '../helpers/conn-loop-script.ts'
import { waitFor } from '../helpers/wait-for.ts'

const PREFIX = 'hat-cs-'
const skip = e2eSkipReason()
const COUNT = 60

function report (what: string, value: unknown): void {
  process.stdout.write(`# cpe-signalling-e2e ${what}: ${JSON.stringify(value)}\n`)
}

describe('CPE signalling end to end (socks5)', { skip: skip ?? false, timeout: 240_000 }, () => {
  let lab: Lab
  let conc: DaemonHandle
  let cpe: DaemonHandle

  before(async () => {
    lab = await buildLab({ prefix: PREFIX, profiles: { dsl: getProfile('vdsl'), lte: getProfile('lte') } })
    await enableLabTfo(lab)
    // socks5 and convert listeners (the convert test restarts the agent in mode convert)
    conc = await startDaemon({
      daemon: 'concentrator',
      config: convertConcentratorConfig({ plan: lab.plan }),
      ns: lab.ns.hag,
      spawn: (argv) => lab.spawn('hag', argv)
    })
    cpe = await startCpeAgent(lab, { socks5: { replyTimeoutMs: 1500, coalesceMs: 20 } })
  })

  after(async () => {
    await cpe?.stop()
    await conc?.stop()
    await lab?.teardown()
  })

  for (const bytes of [64, 0]) {
    test(`half-close right after connect (${bytes} bytes, then FIN): every client gets its echo and FIN, no relay left`, async () => {
      const closed0 = await cpe.metric('hybrid_connections_closed_total', { mode: 'socks5', reason: 'normal' })
      const out = await lab.ns.lan.exec([process.execPath, '-e', CONN_LOOP_SCRIPT, '203.0.113.10', '7', String(COUNT), '10', 'half-close',
        String(bytes)], { timeoutMs: 70_000 })
        .catch((err: unknown) => { throw new Error(`${String(err)}\n${cpe.logTail(4000)}`) })
      const r = JSON.parse(out) as { ok: number, failed: number, ms: number }
      report(`half-close ${bytes} B`, r)
      assert.equal(r.ok, COUNT, `${r.failed} of ${COUNT} clients got no echo + FIN within 5 s`)
      await waitFor('relays gone', 5000, async () => await cpe.metric('hybrid_connections_active', { mode: 'socks5' }) === 0)
      assert.equal(await cpe.metric('hybrid_connections_closed_total', { mode: 'socks5', reason: 'normal' }) - closed0, COUNT)
    })
  }

  test('a destination that drops SYNs fails by the reply deadline and does not switch the concentrator to stepwise', async () => {
    await lab.ns.inet.exec(['nft', '-f', '-'],
      { input: 'table inet hatcs {\n  chain in {\n    type filter hook input priority 0;\n    tcp dport 9 drop\n  }\n}\n' })
    try {
      const t0 = Date.now()
      await assert.rejects(lab.ns.lan.exec(['curl', '-sS', '--max-time', '10', 'http://203.0.113.10:9/'], { timeoutMs: 15_000 }))
      const ms = Date.now() - t0
      const status = JSON.parse((await cpe.get('/api/v1/status')).body) as { concentrator: { stepwise: string[] } }
      report('syn-drop', { ms, stepwise: status.concentrator.stepwise })
      assert.deepEqual(status.concentrator.stepwise, [], 'one destination switched the concentrator to stepwise')
      assert.ok(await cpe.metric('hybrid_upstream_connect_failures_total', { reason: 'timeout' }) >= 1)
      const small = await lab.ns.lan.exec(['curl', '-sS', '--max-time', '10', '-o', '/dev/null', '-w', '%{size_download}',
        'http://203.0.113.10/1k'], { timeoutMs: 15_000 })
      assert.equal(small, '1000')
    } finally {
      await lab.ns.inet.exec(['nft', 'delete', 'table', 'inet', 'hatcs'])
    }
  })

  test('convert mode (default coalesceMs): half-close right after connect, with and without bytes: every client answered, no relay left',
    async () => {
      await cpe.stop()
      // fallback none: a connection that did not go through the converter fails instead of hiding in socks5
      cpe = await startDaemon({
        daemon: 'cpe',
        config: convertCpeConfig(lab.plan, { fallback: 'none', logLevel: 'info' }),
        ns: lab.ns.cpe,
        spawn: (argv) => lab.spawn('cpe', argv)
      })
      for (const bytes of [64, 0]) {
        const closed0 = await cpe.metric('hybrid_connections_closed_total', { mode: 'convert', reason: 'normal' })
        const out = await lab.ns.lan.exec([process.execPath, '-e', CONN_LOOP_SCRIPT, '203.0.113.10', '7', String(COUNT), '10', 'half-close',
          String(bytes)], { timeoutMs: 70_000 })
          .catch((err: unknown) => { throw new Error(`${String(err)}\n${cpe.logTail(4000)}`) })
        const r = JSON.parse(out) as { ok: number, failed: number, ms: number }
        report(`convert half-close ${bytes} B`, r)
        assert.equal(r.ok, COUNT, `${r.failed} of ${COUNT} clients got no echo + FIN within 5 s`)
        await waitFor('relays gone', 5000, async () => await cpe.metric('hybrid_connections_active', { mode: 'convert' }) === 0)
        assert.equal(await cpe.metric('hybrid_connections_closed_total', { mode: 'convert', reason: 'normal' }) - closed0, COUNT)
      }
    })
})
