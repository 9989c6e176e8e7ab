/**
 * The overload manager (docs/overload.md) driven by real load in the lab (namespaces `hat-ov-*`).
 * The resource is real — the daemon's own open fds, read from /proc — and its limit
 * (`overload.resources.openFiles`) is set low, so a bounded number of connections (≤ 200 per step)
 * takes the daemon through every step:
 *
 * Concentrator (SOCKS5 clients in cpe, two sources: the DSL and the LTE address):
 *   1. source A holds relays to ≥ 56 % → stop_accept_busiest: A's next request gets REP 01, B's is relayed;
 *   2. B holds handshakes to ≥ 74 % → refuse_new: B's next request gets REP 01 too;
 *   3. bursts of handshakes push it over 85 % → shed_idle: every idle relay is reset (reason overload);
 *   4. the pressure falls, the actions are released after releaseAfterMs, A is relayed again.
 * CPE agent (LAN clients, two sources: the LAN host's IPv4 and IPv6 address): the same steps,
 * with a reset as the answer (an intercepted connection has no signalling to answer in).
 * Throughout, /livez is polled every 200 ms from inside the daemon's namespace: every probe must
 * answer 200 within 1 s.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { readdir, readlink } from 'node:fs/promises'
import { LAB_PORTS } from '../../lab/addresses.ts'
import { LAB_CONCENTRATOR_PORTS, startConcentrator, type DaemonHandle } from '../../lab/daemons.ts'
import { getProfile } from '../../lab/link-profile.ts'
import { startModeSession, type ModeSession } from '../../lab/mode-runners.ts'
import { e2eSkipReason } from '../../lab/netns.ts'
import { buildLab, type Lab } from '../../lab/topology.ts'
import type { LabRole } from '../../lab/addresses.ts'
import { jsonLines, type JsonLines, type Line } from '../helpers/json-lines.ts'

const PEER = 'test/e2e/overload-peer.ts'
const skip = e2eSkipReason()

/** A peer process and its JSON lines. */
interface Peer extends JsonLines { child: ChildProcess, stop: () => Promise<Line | undefined> }

function peer (lab: Lab, role: LabRole, args: readonly string[]): Peer {
  const child = lab.spawn(role, [process.execPath, '--import', 'tsx', PEER, ...args])
  const lines = jsonLines(child, `overload-peer ${args[0] ?? ''}`)
  return {
    child,
    ...lines,
    stop: async () => {
      if (child.exitCode !== null || child.pid === undefined) return undefined
      child.kill('SIGTERM')
      return lines.next('result', 10_000).catch(() => undefined)
    }
  }
}

const sleep = async (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

interface OverloadView { active: string[], pressure: Record<string, number>, readings: { openFiles: number } }

async function overloadOf (d: DaemonHandle): Promise<OverloadView> {
  return (JSON.parse((await d.get('/api/v1/status')).body) as { overload: OverloadView }).overload
}

/** Poll the status until `ok(view)` (every 100 ms, bounded). */
async function waitOverload (d: DaemonHandle, what: string, ok: (v: OverloadView) => boolean, timeoutMs = 15_000): Promise<OverloadView> {
  const deadline = Date.now() + timeoutMs
  let v = await overloadOf(d)
  while (!ok(v)) {
    if (Date.now() > deadline) assert.fail(`${what} within ${timeoutMs} ms; last status ${JSON.stringify(v)}`)
    await sleep(100)
    v = await overloadOf(d)
  }
  return v
}

/** The daemon's open fds by kind (socket, pipe, anon_inode:[eventfd] …), for a failure message. */
async function fdKinds (pid: number): Promise<string> {
  const kinds = new Map<string, number>()
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [])) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '?')
    const kind = target.replace(/:\[\d+\]$/, '').replace(/^\/.*/, 'file')
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
  }
  return JSON.stringify(Object.fromEntries(kinds))
}

const has = (...actions: string[]) => (v: OverloadView): boolean => actions.every((a) => v.active.includes(a))

/** Connections that take the fd count from `fds` to `fraction` of `limit` at `perConnection` fds each (≥ 1, ≤ 200). */
function connectionsFor (fds: number, limit: number, fraction: number, perConnection: number): number {
  const n = Math.ceil((fraction * limit - fds) / perConnection)
  assert.ok(n >= 1 && n <= 200, `${n} connections needed (fds ${fds}, limit ${limit}); the baseline is too high for this limit`)
  return n
}

/**
 * Connections a `hold` peer got open: at least `min` (a source crossing a threshold while it opens
 * is refused from the next tick on: the rest of its burst may be refused).
 */
async function opened (p: Peer, min: number): Promise<number> {
  const ready = await p.next('ready', 60_000)
  const ok = ready['ok'] as number
  assert.ok(ok >= min - 1, `only ${ok} of the ${min} connections needed were opened: ${JSON.stringify(ready)}`)
  return ok
}

function assertResponsive (probe: Line | undefined): Line {
  assert.ok(probe !== undefined, 'the /livez prober reported')
  assert.ok((probe['count'] as number) >= 10, `only ${String(probe['count'])} probes`)
  assert.equal(probe['ok'], probe['count'], `every /livez answered 200: ${JSON.stringify(probe)}`)
  assert.ok((probe['maxMs'] as number) < 1000, `slowest /livez ${String(probe['maxMs'])} ms`)
  return probe
}

describe('overload manager end to end', { skip: skip ?? false, concurrency: false }, () => {
  const state: { lab?: Lab, peers: Peer[] } = { peers: [] }
  const lab = (): Lab => { assert.ok(state.lab); return state.lab }
  const start = (role: LabRole, args: readonly string[]): Peer => { const p = peer(lab(), role, args); state.peers.push(p); return p }
  const stopPeers = async (): Promise<void> => {
    await Promise.all(state.peers.map(async (p) => p.stop()))
    state.peers = []
  }

  before(async () => {
    state.lab = await buildLab({ prefix: 'hat-ov-', profiles: { dsl: getProfile('ideal'), lte: getProfile('ideal') } })
  })
  after(async () => {
    await stopPeers().catch(() => undefined)
    await state.lab?.teardown()
  })

  test('concentrator: stop_accept_busiest → refuse_new (REP 01) → shed_idle → recovered; /livez stays responsive', { timeout: 180_000 },
    async (t) => {
      const LIMIT = 240
      const conc = await startConcentrator(lab(), {
        limits: { handshakeTimeoutMs: 10_000, drainTimeoutMs: 2000 },
        overload: {
          intervalMs: 250,
          releaseAfterMs: 2000,
          resources: { openFiles: LIMIT },
          thresholds: { stopAcceptBusiest: 50, refuseNew: 70, shedIdle: 85 },
          hysteresisPercent: 10,
          shedIdleAfterMs: 1500
        }
      })
      try {
        const p = lab().plan
        const svc = `${p.service.v4}:${LAB_CONCENTRATOR_PORTS.socks5}`
        const echo = `${p.internet.servers[0]!.v4}:${LAB_PORTS.echo}`
        const A = p.access.dsl.cpeSide.cpe.v4
        const B = p.access.lte.cpeSide.cpe.v4
        const via = (local: string, more: readonly string[] = []): string[] => ['--proxy', svc, '--dest', echo, '--local', local, ...more]
        const attempt = async (local: string): Promise<string> => String((await start('cpe', ['try', ...via(local)]).next('result'))['outcome'])
        const prober = start('hag', ['probe', '--url', `${conc.mgmtUrl}/livez`])
        await prober.next('ready')
        const base = (await overloadOf(conc)).readings.openFiles
        assert.deepEqual((await overloadOf(conc)).active, [], 'no action at rest')

        // 1. A's relays (2 fds each) to 56 %: only the busiest source is refused.
        const holdA = start('cpe', ['hold', ...via(A, ['--count', String(connectionsFor(base, LIMIT, 0.56, 2))])])
        const nA = await opened(holdA, connectionsFor(base, LIMIT, 0.5, 2))
        await waitOverload(conc, 'stop_accept_busiest', has('stop_accept_busiest'))
        const atA = await overloadOf(conc)
        assert.ok(!atA.active.includes('refuse_new'), `refuse_new too early: ${JSON.stringify(atA)}; fds ${await fdKinds(conc.pid)}`)
        const rejected0 = await conc.metric('hybrid_connections_rejected_total', { mode: 'socks5', reason: 'overload' })
        assert.equal(await attempt(A), 'rep1', 'the busiest source gets REP 01 (general failure)')
        assert.equal(await attempt(B), 'ok', 'a quiet source is still relayed')

        // 2. B's handshakes (1 fd each, greeting only) to 74 %: everyone is refused.
        const nB = connectionsFor((await overloadOf(conc)).readings.openFiles, LIMIT, 0.74, 1)
        const silentB = start('cpe', ['hold', ...via(B, ['--count', String(nB), '--silent'])])
        assert.equal((await silentB.next('ready', 60_000))['ok'], nB)
        await waitOverload(conc, 'refuse_new', has('stop_accept_busiest', 'refuse_new'))
        assert.equal(await attempt(B), 'rep1', 'refuse_new: the quiet source gets REP 01 too')
        assert.ok(await conc.metric('hybrid_connections_rejected_total', { mode: 'socks5', reason: 'overload' }) - rejected0 >= 2)

        // 3. Handshakes accepted under overload hold their fd ≤ 1 s (their short deadline): bursts of
        //    them cross 85 % → shed_idle resets every relay idle for 1.5 s.
        const closed0 = await conc.metric('hybrid_connections_closed_total', { reason: 'overload' })
        for (let burst = 0; burst < 5 && !(await overloadOf(conc)).active.includes('shed_idle'); burst++) {
          const n = connectionsFor((await overloadOf(conc)).readings.openFiles, LIMIT, 0.95, 1)
          const b = start('cpe', ['hold', ...via(B, ['--count', String(n), '--silent'])])
          await b.next('ready', 60_000)
          await sleep(600)
        }
        await waitOverload(conc, 'shed_idle', has('shed_idle'), 5000).catch(async (err: unknown) => {
        // It may already have run and been released while the last burst drained.
          if (await conc.metric('hybrid_overload_activations_total', { action: 'shed_idle' }) < 1) throw err
          return overloadOf(conc)
        })
        const deadline = Date.now() + 10_000
        while (holdA.count('closed') < nA && Date.now() < deadline) await sleep(100)
        assert.equal(holdA.count('closed'), nA, 'every idle relay of A was closed')
        const closedA = await holdA.next('closed')
        assert.equal(closedA['error'], 'ECONNRESET', 'shed with RST, never a FIN')
        assert.ok(await conc.metric('hybrid_connections_closed_total', { reason: 'overload' }) - closed0 >= nA)

        // 4. Recovered: the actions are released and A is relayed again.
        const shedAt = performance.now()
        const calm = await waitOverload(conc, 'every action released', (v) => v.active.length === 0, 30_000)
        const releasedAfterMs = Math.round(performance.now() - shedAt)
        assert.ok(calm.pressure['fds']! < 0.4, JSON.stringify(calm))
        assert.equal(await attempt(A), 'ok')
        for (const action of ['stop_accept_busiest', 'refuse_new', 'shed_idle']) {
          assert.ok(await conc.metric('hybrid_overload_activations_total', { action }) >= 1, action)
          assert.equal(await conc.metric('hybrid_overload_active', { action }), 0, action)
        }
        const livez = assertResponsive(await prober.stop())
        t.diagnostic(JSON.stringify({ baseFds: base, limit: LIMIT, relaysA: nA, handshakesB: nB, releasedAfterMs, livez }))
      } finally {
        await stopPeers()
        const code = await conc.stop()
        assert.equal(code, 0, `the concentrator exited ${String(code)}: ${conc.logTail()}`)
      }
    })

  test('CPE agent: the busiest LAN host is reset, then everyone; idle relays are shed; recovered; /livez stays responsive', { timeout: 180_000 },
    async (t) => {
      const LIMIT = 300
      const session: ModeSession = await startModeSession(lab(), 'socks5', {
        overrides: {
          cpe: {
            overload: {
              intervalMs: 250,
              releaseAfterMs: 2000,
              resources: { openFiles: LIMIT },
              thresholds: { stopAcceptBusiest: 50, refuseNew: 80, shedIdle: 80 },
              hysteresisPercent: 10,
              shedIdleAfterMs: 1500
            }
          }
        }
      })
      try {
        const cpe = session.cpe
        const p = lab().plan
        const echo4 = `${p.internet.servers[0]!.v4}:${LAB_PORTS.echo}`
        const echo6 = `[${p.internet.servers[0]!.v6}]:${LAB_PORTS.echo}`
        const A = ['--dest', echo4, '--local', p.lan.host.v4]
        const B = ['--dest', echo6, '--local', p.lan.host.v6]
        const attempt = async (args: readonly string[]): Promise<string> => String((await start('lan', ['try', ...args]).next('result'))['outcome'])
        const prober = start('cpe', ['probe', '--url', `${cpe.mgmtUrl}/livez`])
        await prober.next('ready')
        const base = (await overloadOf(cpe)).readings.openFiles
        assert.deepEqual((await overloadOf(cpe)).active, [])

        // 1. A (the LAN host's IPv4 address) holds relays (LAN socket + MPTCP socket) to 56 %.
        const holdA = start('lan', ['hold', ...A, '--count', String(connectionsFor(base, LIMIT, 0.56, 2))])
        const nA = await opened(holdA, connectionsFor(base, LIMIT, 0.5, 2))
        await waitOverload(cpe, 'stop_accept_busiest', has('stop_accept_busiest'))
        const rejected0 = await cpe.metric('hybrid_connections_rejected_total', { reason: 'overload' })
        assert.match(await attempt(A), /^(ECONNRESET|EOF)$/, 'the busiest LAN host is reset')
        assert.equal(await attempt(B), 'ok', 'the other LAN source is relayed')

        // 2. B holds relays past 80 %: refuse_new and shed_idle together (this test's thresholds).
        const nB = connectionsFor((await overloadOf(cpe)).readings.openFiles, LIMIT, 0.86, 2)
        assert.ok(nB < nA, `B (${nB}) stays under A (${nA}), so B is never the busiest`)
        const holdB = start('lan', ['hold', ...B, '--count', String(nB)])
        await holdB.next('ready', 60_000)
        await waitOverload(cpe, 'refuse_new and shed_idle', (v) => has('refuse_new', 'shed_idle')(v) || v.active.length === 0, 10_000)
        const deadline = Date.now() + 10_000
        while (holdA.count('closed') < nA && Date.now() < deadline) await sleep(100)
        assert.equal(holdA.count('closed'), nA, 'every idle relay of A was shed')
        assert.equal((await holdA.next('closed'))['error'], 'ECONNRESET', 'shed with RST, never a FIN')
        assert.ok(await cpe.metric('hybrid_connections_rejected_total', { reason: 'overload' }) - rejected0 >= 1)
        assert.ok(await cpe.metric('hybrid_connections_closed_total', { reason: 'overload' }) >= nA)

        // 3. Recovered.
        const shedAt = performance.now()
        await waitOverload(cpe, 'every action released', (v) => v.active.length === 0, 30_000)
        const releasedAfterMs = Math.round(performance.now() - shedAt)
        assert.equal(await attempt(A), 'ok')
        assert.equal(await attempt(B), 'ok')
        for (const action of ['stop_accept_busiest', 'refuse_new',
          'shed_idle']) assert.ok(await cpe.metric('hybrid_overload_activations_total', { action }) >= 1, action)
        const livez = assertResponsive(await prober.stop())
        t.diagnostic(JSON.stringify({ baseFds: base, limit: LIMIT, relaysA: nA, relaysB: nB, releasedAfterMs, livez }))
      } finally {
        await stopPeers()
        const { logsKept } = await session.stop()
        assert.equal(logsKept, false, `a daemon exited non-zero: ${session.logTail('cpe')}`)
      }
    })
})
