/**
 * `workers: 2` end to end in the lab (namespaces `hat-wk-*`), the built daemon from dist/: one
 * supervisor, two workers binding the SOCKS5 listeners with SO_REUSEPORT (docs/scale-out.md, "Many
 * cores on one machine"). The lab's cpe has a `subflow` endpoint on LTE, so every MPTCP connection
 * to the service address (initial subflow over DSL) opens a second subflow by MP_JOIN over LTE.
 *
 * Proves: (1) the supervisor lists two workers with their PIDs, the kernel profile is applied once;
 * (2) 40 held SOCKS5 relays are spread over both workers (per-worker series in /metrics), every one
 * gets its LTE subflow although the join reaches a random worker's listener (MP_JOIN token lookup is
 * namespace-wide), MPJoinNoTokenFound does not move; /api/v1/sessions lists all 40; (3) SIGHUP
 * reloads every worker, a changed `workers` is refused (needs a restart); (4) a killed worker is
 * restarted and counted, the other worker's relays survive, the killed one's are gone; (5) SIGTERM with
 * relays open on both workers: they drain in parallel (stop ≈ one limits.drainTimeoutMs);
 * every worker drains, the supervisor exits 0, the kernel setting is restored once, no worker
 * process is left; (6) a SIGKILLed supervisor: its workers notice the closed IPC channel and exit,
 * the next start undoes what the killed one left (crash journal, kept by the supervisor).
 * Needs `npx tsc -b` first.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { parse, stringify } from 'yaml'
import { LAB_PORTS } from '../../lab/addresses.ts'
import { labConcentratorConfig, LAB_CONCENTRATOR_PORTS, startDaemon, type DaemonHandle } from '../../lab/daemons.ts'
import { getProfile } from '../../lab/link-profile.ts'
import { e2eSkipReason } from '../../lab/netns.ts'
import { buildLab, type Lab } from '../../lab/topology.ts'
import { transparentConcentratorConfig, useFullmeshEndpoints } from '../../lab/transparent-setup.ts'
import { parseMptcpMib } from '../../shared/src/metrics/kernel-mib.ts'
import { jsonLines, type JsonLines } from '../helpers/json-lines.ts'
import { waitFor } from '../helpers/wait-for.ts'

const PREFIX = 'hat-wk-'
const PEER = 'test/e2e/concentrator-workers-peer.ts'
const CONNECTIONS = 40
const DRAIN_MS = 2000
const RETRIES2 = ['sysctl', '-n', 'net.ipv4.tcp_retries2']
const skip = e2eSkipReason()

interface WorkerRow { index: number, pid: number | null, ready: boolean, restarts: number, status: { connections: { active: number } } | null }
interface Status { ready: boolean, pid: number, workers: WorkerRow[], connections: { active: number, relaying: number } }

const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true } catch { return false } }

describe('concentrator with workers: 2', { skip: skip ?? false, concurrency: false, timeout: 240_000 }, () => {
  const h: { lab?: Lab, conc?: DaemonHandle, peer?: ChildProcess, lines?: JsonLines, pids: number[] } = { pids: [] }
  const lab = (): Lab => { assert.ok(h.lab); return h.lab }
  const conc = (): DaemonHandle => { assert.ok(h.conc); return h.conc }
  const hag = async (argv: string[]): Promise<string> => (await lab().ns.hag.exec(argv)).trim()
  const mib = async (name: string): Promise<number> => parseMptcpMib(await hag(['cat', '/proc/net/netstat'])).get(name) ?? 0
  const status = async (): Promise<Status> => {
    const r = await conc().get('/api/v1/status')
    assert.equal(r.status, 200, r.body)
    return JSON.parse(r.body) as Status
  }
  const editConfig = (edit: (c: Record<string, unknown>) => void): void => {
    const c = parse(readFileSync(conc().configFile, 'utf8')) as Record<string, unknown>
    edit(c)
    writeFileSync(conc().configFile, stringify(c))
  }

  before(async () => {
    h.lab = await buildLab({ prefix: PREFIX, profiles: { dsl: getProfile('ideal'), lte: getProfile('ideal') } })
    assert.equal(await hag(RETRIES2), '15', 'the lab starts with the kernel default')
    h.conc = await startDaemon({
      daemon: 'concentrator',
      config: { ...labConcentratorConfig({ plan: lab().plan, limits: { drainTimeoutMs: DRAIN_MS } }), workers: 2, kernel: { tcpRetries2: 9 } },
      ns: lab().ns.hag,
      spawn: (argv) => lab().spawn('hag', argv)
    })
  })
  after(async () => {
    h.peer?.kill('SIGTERM')
    await h.conc?.stop(20_000)
    for (const pid of h.pids) if (alive(pid)) process.kill(pid, 'SIGKILL')
    await h.lab?.teardown()
  })

  test('the supervisor lists two ready workers with their PIDs; machine-wide setup applied once', async () => {
    const s = await status()
    assert.equal(s.ready, true)
    assert.equal(s.pid, conc().pid)
    assert.equal(s.workers.length, 2)
    h.pids = s.workers.map((w) => w.pid ?? 0)
    assert.ok(h.pids.every((p) => p > 0 && p !== conc().pid) && h.pids[0] !== h.pids[1], JSON.stringify(s.workers))
    assert.ok(s.workers.every((w) => w.ready && w.status !== null))
    assert.equal(await hag(RETRIES2), '9')
    assert.equal(conc().logTail(64 * 1024).match(/kernel setting net.ipv4.tcp_retries2=9/g)?.length, 1, 'applied by the supervisor only')
    assert.equal(await conc().metric('hybrid_concentrator_workers'), 2)
    assert.equal(await conc().metric('hybrid_concentrator_workers_up'), 2)
    assert.equal((await conc().get('/readyz')).status, 200)
    assert.equal((await conc().get('/livez')).status, 200)
  })

  test(`${CONNECTIONS} relays: spread over both workers, every one gets its LTE subflow, no join misses its token`, async () => {
    const p = lab().plan
    const before = { noToken: await mib('MPJoinNoTokenFound'), ackRx: await mib('MPJoinAckRx') }
    h.peer = lab().spawn('cpe', [process.execPath, '--import', 'tsx', PEER, 'hold',
      '--proxy', `${p.service.v4}:${LAB_CONCENTRATOR_PORTS.socks5}`, '--dest', `${p.internet.servers[0]!.v4}:${LAB_PORTS.echo}`, '--count', String(CONNECTIONS)])
    h.lines = jsonLines(h.peer, 'workers-peer')
    const ready = await h.lines.next('ready', 60_000)
    assert.equal(ready['ok'], CONNECTIONS, JSON.stringify(ready))
    // The LTE subflows: the join SYN hashes (SO_REUSEPORT) to either worker's listener.
    const lte = p.access.lte.cpeSide.cpe.v4
    const joined = async (): Promise<number> => (await lab().ns.cpe.exec(['ss', '-tnH', 'state', 'established', 'src', lte, 'dst', `${p.service.v4}:${LAB_CONCENTRATOR_PORTS.socks5}`]))
      .split('\n').filter((l) => l.trim() !== '').length
    await waitFor('an LTE subflow per connection', 10_000, async () => (await joined()) >= CONNECTIONS)
    const perWorker = [await conc().metric('hybrid_connections_accepted_total', { worker: '0' }), await conc().metric('hybrid_connections_accepted_total', { worker: '1' })]
    const misses = (await mib('MPJoinNoTokenFound')) - before.noToken
    const acks = (await mib('MPJoinAckRx')) - before.ackRx
    console.log(`# workers: accepted per worker ${perWorker.join(' / ')}; LTE subflows ${await joined()} of ${CONNECTIONS}; MPJoinAckRx +${acks}; MPJoinNoTokenFound +${misses}`)
    assert.equal(perWorker[0]! + perWorker[1]!, CONNECTIONS)
    assert.ok(perWorker[0]! > 0 && perWorker[1]! > 0, `both workers serve: ${perWorker.join(' / ')}`)
    assert.equal(await joined(), CONNECTIONS)
    assert.ok(acks >= CONNECTIONS, `MPJoinAckRx +${acks}`)
    assert.equal(misses, 0)
    assert.equal(await conc().metric('hybrid_connections_active', { worker: '0' }) + await conc().metric('hybrid_connections_active', { worker: '1' }), CONNECTIONS)
    const sessions = JSON.parse((await conc().get(`/api/v1/sessions?limit=${CONNECTIONS}`)).body) as { total: number, sessions: Array<{ worker: number }> }
    assert.equal(sessions.total, CONNECTIONS)
    assert.equal(new Set(sessions.sessions.map((x) => x.worker)).size, 2)
    const s = await status()
    assert.equal(s.connections.relaying, CONNECTIONS)
  })

  test('SIGHUP reloads every worker; a changed workers count is refused (needs a restart)', async () => {
    const base = await conc().metric('hybrid_config_reloads_total', { result: 'success' })
    editConfig((c) => { c['limits'] = { ...(c['limits'] as object), idleTimeoutMs: 600_000 } })
    process.kill(conc().pid, 'SIGHUP')
    await waitFor('both workers reloaded', 10_000, async () => (await conc().metric('hybrid_config_reloads_total', { result: 'success' })) - base === 2)
    assert.match(conc().logTail(16 * 1024), /configuration reloaded in every worker/)
    editConfig((c) => { c['workers'] = 3 })
    process.kill(conc().pid, 'SIGHUP')
    await waitFor('refusal logged', 10_000, async () => /workers: changed; this key needs a restart/.test(conc().logTail(16 * 1024)))
    editConfig((c) => { c['workers'] = 2 })
    assert.equal((await status()).workers.length, 2)
  })

  test('a killed worker is restarted and counted; the other worker\'s relays survive', async () => {
    const s = await status()
    const victim = s.workers[1]!
    const survivorActive = s.workers[0]!.status?.connections.active ?? -1
    const victimActive = victim.status?.connections.active ?? -1
    assert.equal(survivorActive + victimActive, CONNECTIONS)
    process.kill(victim.pid!, 'SIGKILL')
    await waitFor('worker 1 restarted and ready', 15_000, async () => {
      const w = (await status()).workers[1]!
      return w.ready && w.pid !== null && w.pid !== victim.pid
    })
    const after = await status()
    h.pids.push(after.workers[1]!.pid!)
    assert.equal(after.workers[1]!.restarts, 1)
    assert.equal(after.workers[0]!.pid, s.workers[0]!.pid, 'the other worker was not restarted')
    assert.equal(await conc().metric('hybrid_concentrator_worker_restarts_total', { worker: '1' }), 1)
    assert.equal(await conc().metric('hybrid_concentrator_workers_up'), 2)
    assert.equal((await conc().get('/readyz')).status, 200)
    process.kill(h.peer!.pid!, 'SIGUSR1')
    const check = await h.lines!.next('check', 15_000)
    console.log(`# workers: after SIGKILL of worker 1: ${String(check['alive'])} relays alive (worker 0 had ${survivorActive}), ${String(check['dead'])} gone (worker 1 had ${victimActive})`)
    assert.equal(check['alive'], survivorActive)
    assert.equal(check['dead'], victimActive)
  })

  test('SIGTERM with relays open: the workers drain in parallel, the supervisor exits 0, the kernel setting restored once, no worker left', async () => {
    // Worker 1 lost its relays to the SIGKILL: fresh ones, spread over both workers again.
    h.peer?.kill('SIGTERM')
    const p = lab().plan
    h.peer = lab().spawn('cpe', [process.execPath, '--import', 'tsx', PEER, 'hold',
      '--proxy', `${p.service.v4}:${LAB_CONCENTRATOR_PORTS.socks5}`, '--dest', `${p.internet.servers[0]!.v4}:${LAB_PORTS.echo}`, '--count', '20'])
    assert.equal((await jsonLines(h.peer, 'workers-peer').next('ready', 60_000))['ok'], 20)
    const c = conc()
    const started = Date.now()
    const code = await c.stop(20_000)
    const took = Date.now() - started
    h.peer.kill('SIGTERM')
    assert.equal(code, 0, c.logTail())
    // Each worker waits for its held relays up to limits.drainTimeoutMs; they start together.
    const drains = c.logTail(256 * 1024).split('\n').flatMap((l) => {
      try { const o = JSON.parse(l) as { msg?: string, worker?: number, time?: string, active?: number }; return o.msg === 'draining' ? [o] : [] } catch { return [] }
    })
    console.log(`# workers: stop took ${took} ms (drainTimeoutMs ${DRAIN_MS}); draining ${drains.map((d) => `worker ${String(d.worker)} active ${String(d.active)}`).join(', ')}`)
    assert.deepEqual(drains.map((d) => d.worker).sort(), [0, 1])
    assert.ok(drains.every((d) => (d.active ?? 0) > 0), 'both had relays to drain')
    assert.ok(Math.abs(Date.parse(drains[0]?.time ?? '') - Date.parse(drains[1]?.time ?? '')) < 1000, 'the drains started together')
    assert.ok(took >= DRAIN_MS - 100, `${took} ms: the relays were waited for`)
    assert.ok(took < 3 * DRAIN_MS + 2000, `${took} ms: the drains overlapped (one after the other would take twice drainTimeoutMs and more)`)
    assert.equal(await hag(RETRIES2), '15')
    assert.equal(c.logTail(64 * 1024).match(/kernel setting net.ipv4.tcp_retries2 restored/g)?.length, 1)
    assert.match(c.logTail(64 * 1024), /concentrator supervisor stopped/)
    for (const pid of h.pids) assert.equal(alive(pid), false, `worker ${pid} gone`)
  })

  test('SIGKILL of the supervisor: the workers exit by themselves; the next start undoes the leftovers', async () => {
    const start = async (): Promise<DaemonHandle> => startDaemon({
      daemon: 'concentrator',
      config: { ...labConcentratorConfig({ plan: lab().plan }), workers: 2, kernel: { tcpRetries2: 9 } },
      ns: lab().ns.hag,
      spawn: (argv) => lab().spawn('hag', argv)
    })
    h.conc = await start()
    const pids = (await status()).workers.map((w) => w.pid ?? 0)
    h.pids.push(...pids)
    process.kill(conc().pid, 'SIGKILL')
    await conc().stop(100)
    await waitFor('orphaned workers exit', 10_000, async () => pids.every((pid) => !alive(pid)))
    assert.equal(await hag(RETRIES2), '9', 'a SIGKILL cannot restore')
    h.conc = await start()
    assert.match(conc().logTail(64 * 1024), /did not stop cleanly: undoing what it left/)
    const c = conc()
    assert.equal(await c.stop(20_000), 0, c.logTail())
    assert.equal(await hag(RETRIES2), '15', 'the original value, not the killed run\'s 9')
  })
})

/**
 * Transparent mode with `workers: 2` (lab `hat-wk-tp-`): the supervisor applies the HAG setup (nft
 * TPROXY table, fwmark routes, the announced join endpoint, the C flag) once; each worker binds the
 * IP_TRANSPARENT MPTCP listeners with SO_REUSEPORT, and TPROXY's listener lookup picks one of the
 * group. Intercepted downloads are spread over both workers, each bonded (the join to the announced
 * endpoint attaches to its connection whichever worker owns it), and stop removes everything once.
 */
describe('transparent mode with workers: 2', { skip: skip ?? false, concurrency: false, timeout: 240_000 }, () => {
  const TP_PEER = 'test/e2e/transparent-peer.ts'
  const DOWNLOADS = 12
  const h: { lab?: Lab, conc?: DaemonHandle | undefined } = {}
  const lab = (): Lab => { assert.ok(h.lab); return h.lab }
  const hag = async (argv: string[]): Promise<string> => (await lab().ns.hag.exec(argv)).trim()
  const server = (): { v4: string } => lab().plan.internet.servers[1]!

  before(async () => {
    h.lab = await buildLab({ prefix: `${PREFIX}tp-`, profiles: { dsl: getProfile('ideal'), lte: getProfile('ideal') } })
    await useFullmeshEndpoints(lab())
    await lab().startScript('inet', TP_PEER, ['serve', '--host', server().v4, '--ports', '80'])
    h.conc = await startDaemon({
      daemon: 'concentrator',
      config: { ...transparentConcentratorConfig({ plan: lab().plan }), workers: 2 },
      ns: lab().ns.hag,
      spawn: (argv) => lab().spawn('hag', argv)
    })
  })
  after(async () => {
    await h.conc?.stop(20_000)
    await h.lab?.teardown()
  })

  // Long enough (≈ 1 s) that the LTE join is in place before the download ends: with 1 MB (0.23 s)
  // one download in 12 finished on its initial subflow alone on a loaded CI host.
  const DOWNLOAD_BYTES = 4_000_000
  test(`${DOWNLOADS} intercepted downloads: spread over both workers, each with two subflows, no join misses its token`, async () => {
    assert.equal(await hag(['sysctl', '-n', 'net.mptcp.allow_join_initial_addr_port']), '0', 'the C flag, set by the supervisor')
    assert.match(await hag(['nft', 'list', 'tables']), /hybrid_hag/)
    const noToken0 = parseMptcpMib(await hag(['cat', '/proc/net/netstat'])).get('MPJoinNoTokenFound') ?? 0
    const results: Array<{ fallback: boolean, subflows: number, error?: string }> = []
    for (let i = 0; i < DOWNLOADS; i++) {
      const child = lab().spawn('cpe', [process.execPath, '--import', 'tsx', TP_PEER, 'get', '--host', server().v4, '--port', '80', '--bytes', String(DOWNLOAD_BYTES), '--mptcp'])
      const lines = jsonLines(child, 'transparent-peer')
      results.push(await lines.next('result', 30_000) as unknown as { fallback: boolean, subflows: number })
    }
    const perWorker = [await h.conc!.metric('hybrid_connections_accepted_total', { worker: '0', mode: 'transparent' }),
      await h.conc!.metric('hybrid_connections_accepted_total', { worker: '1', mode: 'transparent' })]
    const misses = (parseMptcpMib(await hag(['cat', '/proc/net/netstat'])).get('MPJoinNoTokenFound') ?? 0) - noToken0
    console.log(`# workers transparent: accepted per worker ${perWorker.join(' / ')}; subflows ${results.map((r) => r.subflows).join(',')}; MPJoinNoTokenFound +${misses}`)
    assert.deepEqual(results.map((r) => r.error), results.map(() => undefined))
    assert.ok(results.every((r) => !r.fallback && r.subflows === 2), JSON.stringify(results))
    assert.equal(perWorker[0]! + perWorker[1]!, DOWNLOADS)
    assert.ok(perWorker[0]! > 0 && perWorker[1]! > 0, `both workers serve: ${perWorker.join(' / ')}`)
    assert.equal(misses, 0)
  })

  test('stop: exits 0, the C flag restored, endpoints, fwmark rules and the table removed', async () => {
    const c = h.conc!
    h.conc = undefined
    assert.equal(await c.stop(20_000), 0, c.logTail())
    assert.equal(await hag(['sysctl', '-n', 'net.mptcp.allow_join_initial_addr_port']), '1')
    assert.equal(await hag(['ip', 'mptcp', 'endpoint', 'show']), '')
    assert.doesNotMatch(await hag(['ip', 'rule', 'show']), /fwmark/)
    assert.doesNotMatch(await hag(['nft', 'list', 'tables']), /hybrid_hag/)
  })
})
