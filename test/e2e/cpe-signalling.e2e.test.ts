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
 * Needs `npx tsc -b` first.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { e2eSkipReason } from '../../lab/netns.ts'
import { enableLabTfo, startCpeAgent } from '../../lab/cpe-setup.ts'
import { startConcentrator, type DaemonHandle } from '../../lab/daemons.ts'
import { getProfile } from '../../lab/link-profile.ts'
import { buildLab, type Lab } from '../../lab/topology.ts'

const PREFIX = 'hat-cs-'
const skip = e2eSkipReason()
const COUNT = 60

function report (what: string, value: unknown): void {
  process.stdout.write(`# cpe-signalling-e2e ${what}: ${JSON.stringify(value)}\n`)
}

/**
 * Node script run in lan: `count` connections to host:port (`parallel` at a time); each writes
 * `bytes` bytes and half-closes at once (bytes 0: FIN before any byte), then waits ≤ 5 s for the echo
 * and the server's FIN. Prints {ok, failed, ms}. Bounded by a 60 s deadline.
 */
const HALF_CLOSE_SCRIPT = `
const net = require('node:net')
const [host, port, count, parallel, bytes] = process.argv.slice(1)
let started = 0, ok = 0, failed = 0
const t0 = Date.now()
setTimeout(() => { console.log(JSON.stringify({ ok, failed, ms: Date.now() - t0, timeout: true })); process.exit(1) }, 60000).unref()
function one () {
  if (started >= Number(count)) return Promise.resolve()
  started++
  return new Promise((resolve) => {
    const s = net.connect({ host, port: Number(port), allowHalfOpen: true })
    let got = 0
    let done = false
    const fin = (good) => { if (done) return; done = true; if (good) ok++; else failed++; s.destroy(); resolve() }
    s.setTimeout(5000, () => fin(false))
    s.on('error', () => fin(false))
    s.on('connect', () => { if (Number(bytes) > 0) s.end(Buffer.alloc(Number(bytes), 120)); else s.end() })
    s.on('data', (b) => { got += b.length })
    s.on('end', () => fin(got === Number(bytes)))
  }).then(one)
}
Promise.all(Array.from({ length: Number(parallel) }, one)).then(() => console.log(JSON.stringify({ ok, failed, ms: Date.now() - t0 })))
`

async function waitFor (what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  throw new Error(`${what}: not reached within ${timeoutMs} ms`)
}

describe('CPE signalling end to end (socks5)', { skip: skip ?? false, timeout: 240_000 }, () => {
  let lab: Lab
  let conc: DaemonHandle
  let cpe: DaemonHandle

  before(async () => {
    lab = await buildLab({ prefix: PREFIX, profiles: { dsl: getProfile('vdsl'), lte: getProfile('lte') } })
    await enableLabTfo(lab)
    conc = await startConcentrator(lab)
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
      const out = await lab.ns.lan.exec([process.execPath, '-e', HALF_CLOSE_SCRIPT, '203.0.113.10', '7', String(COUNT), '10', String(bytes)], { timeoutMs: 70_000 })
        .catch((err: unknown) => { throw new Error(`${String(err)}\n${cpe.logTail(4000)}`) })
      const r = JSON.parse(out) as { ok: number, failed: number, ms: number }
      report(`half-close ${bytes} B`, r)
      assert.equal(r.ok, COUNT, `${r.failed} of ${COUNT} clients got no echo + FIN within 5 s`)
      await waitFor('relays gone', 5000, async () => await cpe.metric('hybrid_connections_active', { mode: 'socks5' }) === 0)
      assert.equal(await cpe.metric('hybrid_connections_closed_total', { mode: 'socks5', reason: 'normal' }) - closed0, COUNT)
    })
  }

  test('a destination that drops SYNs fails by the reply deadline and does not switch the concentrator to stepwise', async () => {
    await lab.ns.inet.exec(['nft', '-f', '-'], { input: 'table inet hatcs {\n  chain in {\n    type filter hook input priority 0;\n    tcp dport 9 drop\n  }\n}\n' })
    try {
      const t0 = Date.now()
      await assert.rejects(lab.ns.lan.exec(['curl', '-sS', '--max-time', '10', 'http://203.0.113.10:9/'], { timeoutMs: 15_000 }))
      const ms = Date.now() - t0
      const status = JSON.parse((await cpe.get('/api/v1/status')).body) as { concentrator: { stepwise: string[] } }
      report('syn-drop', { ms, stepwise: status.concentrator.stepwise })
      assert.deepEqual(status.concentrator.stepwise, [], 'one destination switched the concentrator to stepwise')
      assert.ok(await cpe.metric('hybrid_upstream_connect_failures_total', { reason: 'timeout' }) >= 1)
      const small = await lab.ns.lan.exec(['curl', '-sS', '--max-time', '10', '-o', '/dev/null', '-w', '%{size_download}', 'http://203.0.113.10/1k'], { timeoutMs: 15_000 })
      assert.equal(small, '1000')
    } finally {
      await lab.ns.inet.exec(['nft', 'delete', 'table', 'inet', 'hatcs'])
    }
  })
})
