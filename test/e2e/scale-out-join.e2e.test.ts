/**
 * Scale-out join recipe for the explicit modes (docs/scale-out.md; issue: many concentrators behind
 * one service address), in the lab (prefix hat-sj-), daemons from dist/, the CPE in socks5 and then
 * convert mode (transparent mode: test/e2e/transparent.e2e.test.ts, the same JoinSetup). The
 * concentrator announces its own join endpoint (hag's LTE-facing address, port 7201) and sets the C
 * flag on the service address (`join.endpoints`); the CPE's LTE endpoint is `subflow fullmesh`
 * (`multipath.fullmesh: true`, what a CPE behind a scaled-out concentrator needs).
 *
 * Proves: (1) while the daemon runs the C flag is set and the signal endpoint is there; (2) a
 * download through the CPE is bonded, and its LTE subflow is the MP_JOIN to the announced
 * address and port — no subflow joins the service address, which behind an L4 balancer would
 * hash to a random instance (kernel MIB MPJoinNoTokenFound unchanged); (3) stop restores the
 * sysctl and removes the endpoint; (4) after SIGKILL the next start undoes the leftovers first and
 * its stop restores the original value (crash journal).
 * Needs `npx tsc -b` first.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { startDaemon, type DaemonHandle } from '../../lab/daemons.ts'
import { labCpeConfig, labModeConcentratorConfig } from '../../lab/lab-daemons-config.ts'
import { getProfile } from '../../lab/link-profile.ts'
import { e2eSkipReason } from '../../lab/netns.ts'
import { buildLab, type Lab } from '../../lab/topology.ts'
import { useFullmeshEndpoints } from '../../lab/transparent-setup.ts'
import { startPacedDownload, startPacedSource } from '../../lab/scenario-priority.ts'
import { parseMptcpMib } from '../../shared/src/metrics/kernel-mib.ts'
import { waitFor } from '../helpers/wait-for.ts'

const PREFIX = 'hat-sj-'
const skip = e2eSkipReason()
const JOIN_PORT = 7201
const C_FLAG = ['sysctl', '-n', 'net.mptcp.allow_join_initial_addr_port']
const sleep = async (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

describe('scale-out join endpoint and C flag (socks5, convert)', { skip: skip ?? false, concurrency: false, timeout: 180_000 }, () => {
  const h: { lab?: Lab, conc?: DaemonHandle | undefined, cpe?: DaemonHandle } = {}
  const lab = (): Lab => { assert.ok(h.lab); return h.lab }
  const hagRun = async (argv: string[]): Promise<string> => (await lab().ns.hag.exec(argv)).trim()
  const concConfig = (port = JOIN_PORT): Record<string, unknown> => {
    const lte = lab().plan.access.lte
    return { ...labModeConcentratorConfig('convert', { plan: lab().plan }), join: { endpoints: [{ address: lte.coreSide.hag.v4, interface: lte.hagIf, port }] } }
  }
  const startConc = async (port = JOIN_PORT): Promise<DaemonHandle> => {
    h.conc = await startDaemon({ daemon: 'concentrator', config: concConfig(port), ns: lab().ns.hag, spawn: (argv) => lab().spawn('hag', argv) })
    return h.conc
  }
  const startCpe = async (mode: 'socks5' | 'convert'): Promise<void> => {
    const cpeConfig = labCpeConfig(mode, { plan: lab().plan })
    h.cpe = await startDaemon({
      daemon: 'cpe',
      config: { ...cpeConfig, multipath: { ...(cpeConfig['multipath'] as object), fullmesh: true } },
      ns: lab().ns.cpe,
      spawn: (argv) => lab().spawn('cpe', argv)
    })
  }
  const signalEndpoints = async (): Promise<string[]> =>
    (JSON.parse(await hagRun(['ip', '-j', 'mptcp', 'endpoint', 'show'])) as Array<{ address: string, port?: number, signal?: boolean }>)
      .filter((e) => e.signal === true).map((e) => `${e.address}:${e.port ?? 0}`)
  const noTokenFound = async (): Promise<number> => parseMptcpMib(await hagRun(['cat', '/proc/net/netstat'])).get('MPJoinNoTokenFound') ?? 0

  before(async () => {
    h.lab = await buildLab({ prefix: PREFIX, profiles: { dsl: getProfile('vdsl'), lte: getProfile('lte') } })
    await useFullmeshEndpoints(lab())
    await startPacedSource(lab())
    assert.equal(await hagRun(C_FLAG), '1', 'the lab starts with the kernel default')
    await startConc()
    await startCpe('socks5')
  })
  after(async () => {
    await h.cpe?.stop(2000)
    await h.conc?.stop(2000)
    await h.lab?.teardown()
  })

  test('while running: C flag set, the instance\'s join endpoint announced', async () => {
    assert.equal(await hagRun(C_FLAG), '0')
    assert.deepEqual(await signalEndpoints(), [`${lab().plan.access.lte.coreSide.hag.v4}:${JOIN_PORT}`])
  })

  const bondedThroughJoin = async (mode: string): Promise<void> => {
    const lteCpe = lab().plan.access.lte.cpeSide.cpe.v4
    const joinAddress = lab().plan.access.lte.coreSide.hag.v4
    const service = lab().plan.service.v4
    const missesBefore = await noTokenFound()
    const lteBefore = await lab().accessBytes('lte')
    const seen = { join: false, service: false }
    const download = startPacedDownload(lab(), 2_000_000, 4)
    const started = Date.now()
    while (Date.now() - started < 3500) {
      const rows = (await hagRun(['ss', '-tnH', 'state', 'established'])).split('\n')
      for (const row of rows) {
        const [, , local = '', peer = ''] = row.trim().split(/\s+/)
        if (!peer.startsWith(`${lteCpe}:`)) continue
        if (local === `${joinAddress}:${JOIN_PORT}`) seen.join = true
        if (local.startsWith(`${service}:`)) seen.service = true
      }
      await sleep(200)
    }
    const d = await download
    const lteDown = (await lab().accessBytes('lte')).down - lteBefore.down
    const misses = (await noTokenFound()) - missesBefore
    console.log(`# scale-out join ${mode}: ${(d.bytes / 1e6).toFixed(1)} MB; LTE subflow to the join endpoint ${String(seen.join)}, to the service address ${String(seen.service)}; hag → CPE over LTE ${lteDown} B; MPJoinNoTokenFound +${misses}`)
    assert.equal(d.error, null)
    assert.ok(d.bytes > 4e6, `${d.bytes} B`)
    assert.ok(seen.join, 'an LTE subflow on the announced join endpoint')
    assert.ok(!seen.service, 'no subflow from LTE joined the service address')
    assert.ok(lteDown > 500_000, `LTE carried ${lteDown} B: bonded`)
    assert.equal(misses, 0)
  }

  test('socks5: a download through the CPE is bonded; its LTE subflow joins the announced endpoint, none joins the service address', async () => {
    await bondedThroughJoin('socks5')
  })

  test('convert (RFC 8803): the same', async () => {
    await h.cpe?.stop(2000)
    await startCpe('convert')
    await bondedThroughJoin('convert')
    assert.ok(await h.conc!.metric('hybrid_connections_accepted_total', { mode: 'convert' }) >= 1, 'the download went through the Convert listener')
  })

  test('stop restores the C flag and removes the endpoint', async () => {
    await h.cpe?.stop(2000)
    const c = h.conc
    h.conc = undefined
    assert.equal(await c?.stop(), 0, c?.logTail())
    assert.equal(await hagRun(C_FLAG), '1')
    assert.deepEqual(await signalEndpoints(), [])
  })

  test('SIGKILL leaves the namespace changed; the next start (another join port) undoes it first, its stop restores the original value', async () => {
    // A fresh join port: the first one's join subflows sit in TIME_WAIT (docs/transparent.md), and
    // the endpoint would only be added by a retry.
    const killed = await startConc(JOIN_PORT + 1)
    h.conc = undefined
    await waitFor('C flag set', 5000, async () => (await hagRun(C_FLAG)) === '0')
    process.kill(killed.pid, 'SIGKILL')
    await killed.stop(100)
    assert.equal(await hagRun(C_FLAG), '0', 'a SIGKILL cannot restore')
    assert.equal((await signalEndpoints()).length, 1)
    const next = await startConc(JOIN_PORT + 2)
    assert.match(next.logTail(64 * 1024), /did not stop cleanly: undoing what it left/)
    assert.deepEqual(await signalEndpoints(), [`${lab().plan.access.lte.coreSide.hag.v4}:${JOIN_PORT + 2}`], 'the crashed run\'s endpoint removed, the new one added')
    h.conc = undefined
    assert.equal(await next.stop(), 0, next.logTail())
    assert.equal(await hagRun(C_FLAG), '1', 'the original value, not the crashed run\'s 0')
    assert.deepEqual(await signalEndpoints(), [])
  })
})
