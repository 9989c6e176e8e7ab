/**
 * `npm run lab -- --scenario failover`, the run: per mode (daemons started with startModeSession;
 * `mptcp` = kernel MPTCP alone, cpe → hag's service address, as a reference) and per fault, one long
 * download (scenario-receiver.ts: byte arrivals with 1 ms resolution), a stream of new LAN
 * connections (curl, one every 200 ms, 2 s timeout), the access routers' byte counters every 100 ms
 * and the subflows per access (CPE metrics every 250 ms; mptcp: the receiver's MPTCP_FULL_INFO).
 * Timeline per fault: connect, quiet `preMs`, the fault's steps, `postMs` of observation. Every
 * access is set back to up after each fault (also on failure). Figures: scenario-failover.ts.
 */
import type { ChildProcess } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { LAB_PORTS } from './addresses.ts'
import { isDaemonMode, type LabMode } from './demo.ts'
import { readPathMetrics } from './live-view.ts'
import { startModeSession, type ModeSession } from './mode-runners.ts'
import {
  analyseFault, faultMs, netstatCounter, SCENARIO_TIMING as T, type Arrivals, type BytesSample, type FaultRecord, type FaultResult,
  type FaultSpec, type Fetch, type ScenarioReport, type ScenarioSelection, type SubflowSample
} from './scenario-failover.ts'
import type { Lab } from './topology.ts'

const now = (): number => performance.timeOrigin + performance.now()
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))) }

export interface ScenarioOptions extends ScenarioSelection {
  readonly log: (message: string) => void
}

/** Run the selection on a built lab (daemons built). */
export async function runFailoverScenario (lab: Lab, opts: ScenarioOptions): Promise<ScenarioReport> {
  const started = now()
  const results: FaultResult[] = []
  for (const mode of opts.modes) {
    const session = isDaemonMode(mode) ? await startModeSession(lab, mode, { log: opts.log }) : undefined
    let failed = false
    try {
      for (const fault of opts.faults) {
        opts.log(`${mode}: ${fault.description}`)
        const r = analyseFault(await runFault(lab, mode, fault, session))
        opts.log(`${mode} ${fault.name}: stall ${String(r.stallDuringMs)} ms, back stall ${String(r.stallAfterMs)} ms, reset ${String(r.reset)}, new connections ${r.during.ok}/${r.during.count} during, ${r.after.ok}/${r.after.count} after`)
        results.push(r)
      }
    } catch (err) {
      failed = true
      throw new Error(`${mode}: ${(err as Error).message}${session !== undefined ? `\n(daemon logs kept in ${session.dir})` : ''}`)
    } finally {
      await session?.stop({ keepLogs: failed || process.env.HYBRID_LAB_KEEP_LOGS === '1' })
    }
  }
  return {
    scenario: 'failover',
    prefix: lab.prefix,
    profiles: { dsl: lab.access.dsl.profile.name, lte: lab.access.lte.profile.name },
    timing: T,
    results,
    totalSeconds: Math.round((now() - started) / 100) / 10
  }
}

interface ReceiverState {
  connectedAt: number | undefined
  arrivals: { t: number[], b: number[] }
  subflows: SubflowSample[]
  end: FaultRecord['end']
  closed: Promise<void>
}

function startReceiver (lab: Lab, mode: LabMode, ms: number): { child: ChildProcess, state: ReceiverState } {
  const target = isDaemonMode(mode)
    ? { role: 'lan' as const, host: lab.plan.internet.servers[0]!.v4, protocol: 'tcp' }
    : { role: 'cpe' as const, host: lab.plan.service.v4, protocol: 'mptcp' }
  const child = lab.spawn(target.role, [process.execPath, '--import', 'tsx', 'lab/scenario-receiver.ts',
    '--host', target.host, '--port', String(LAB_PORTS.flow), '--protocol', target.protocol, '--ms', String(ms)])
  const state: ReceiverState = { connectedAt: undefined, arrivals: { t: [], b: [] }, subflows: [], end: null, closed: Promise.resolve() }
  createInterface({ input: child.stdout! }).on('line', (l) => {
    let m: Record<string, unknown>
    try { m = JSON.parse(l) as Record<string, unknown> } catch { return }
    if (m.type === 'connected') state.connectedAt = m.at as number
    if (m.type === 'arrivals') { state.arrivals.t.push(...(m.t as number[])); state.arrivals.b.push(...(m.b as number[])) }
    if (m.type === 'subflows') state.subflows.push({ at: m.at as number, dsl: m.dsl as number, lte: m.lte as number })
    if (m.type === 'end') state.end = m as unknown as FaultRecord['end']
  })
  child.stderr?.resume()
  state.closed = new Promise((resolve) => { child.once('close', () => { resolve() }) })
  return { child, state }
}

/** Poll `fn` every `everyMs` until `stop()`; bounded by `maxCount`. */
function poller (everyMs: number, maxCount: number, fn: () => Promise<void>): { stop: () => Promise<void> } {
  const state = { stopped: false }
  const loop = (async () => {
    for (let i = 0; i < maxCount && !state.stopped; i++) {
      const t0 = now()
      await fn().catch(() => undefined)
      await sleep(everyMs - (now() - t0))
    }
  })()
  return { stop: async () => { state.stopped = true; await loop } }
}

async function fetchOnce (lab: Lab): Promise<Fetch> {
  const at = now()
  const url = `http://${lab.plan.internet.servers[0]!.v4}:${LAB_PORTS.http}/1k`
  try {
    const out = await lab.ns.lan.exec(['curl', '-sS', '--max-time', String(T.fetchTimeoutS), '-o', '/dev/null', '-w', '%{time_starttransfer}', url],
      { timeoutMs: T.fetchTimeoutS * 1000 + 2000 })
    return { at, ok: true, ttfbMs: Math.round(Number(out.trim()) * 1e4) / 10 }
  } catch {
    return { at, ok: false, ttfbMs: null }
  }
}

/** MPTcpExtBlackhole of the CPE namespace. */
async function cpeBlackholes (lab: Lab): Promise<number> {
  return netstatCounter(await lab.ns.cpe.exec(['cat', '/proc/net/netstat']), 'Blackhole')
}

/**
 * Undo the kernel's MPTCP blackhole detection in cpe and hag: after unanswered MPTCP SYNs (a DSL
 * outage) it turns MPTCP off for new connections of the namespace for net.mptcp.blackhole_timeout
 * (3600 s), so every later run would measure plain TCP over DSL. Writing the sysctl (same value)
 * resets that state (net/mptcp/ctrl.c). Each fault thus starts from the same kernel state; the
 * detections a fault causes are counted (`mptcpBlackholes`).
 */
async function resetMptcpBlackhole (lab: Lab): Promise<void> {
  for (const role of ['cpe', 'hag'] as const) {
    const v = (await lab.ns[role].exec(['sysctl', '-n', 'net.mptcp.blackhole_timeout'])).trim()
    if (/^\d+$/.test(v)) await lab.ns[role].exec(['sysctl', '-qw', `net.mptcp.blackhole_timeout=${v}`])
  }
}

/** One fault on running daemons (`session`; undefined: kernel MPTCP alone), analysed: what the report card's failover row uses. */
export async function runOneFault (lab: Lab, mode: LabMode, fault: FaultSpec, session: ModeSession | undefined): Promise<FaultResult> {
  return analyseFault(await runFault(lab, mode, fault, session))
}

async function runFault (lab: Lab, mode: LabMode, fault: FaultSpec, session: ModeSession | undefined): Promise<FaultRecord> {
  await resetMptcpBlackhole(lab)
  const blackholesBefore = await cpeBlackholes(lab)
  const totalMs = T.preMs + faultMs(fault) + T.postMs
  const { child, state } = startReceiver(lab, mode, totalMs + 500)
  const bytes: BytesSample[] = []
  const subflows: SubflowSample[] = []
  const fetches: Array<Promise<Fetch>> = []
  const maxPolls = Math.ceil((totalMs + 20_000) / T.bytesEveryMs)
  let pollers: Array<{ stop: () => Promise<void> }> = []
  try {
    const deadline = now() + 15_000
    while (state.connectedAt === undefined && now() < deadline && child.exitCode === null) await sleep(20)
    if (state.connectedAt === undefined) throw new Error(`the scenario receiver did not connect (exit ${String(child.exitCode)})`)
    const start = state.connectedAt
    pollers = [
      poller(T.bytesEveryMs, maxPolls, async () => {
        const [d, l] = await Promise.all([lab.accessBytes('dsl'), lab.accessBytes('lte')])
        bytes.push({ at: now(), dsl: d.down, lte: l.down })
      }),
      poller(T.fetchEveryMs, Math.ceil(totalMs / T.fetchEveryMs) + 5, async () => { fetches.push(fetchOnce(lab)) })
    ]
    if (session !== undefined) {
      pollers.push(poller(T.metricsEveryMs, maxPolls, async () => {
        const m = readPathMetrics(await session.cpe.metricsText(), 0)
        subflows.push({ at: now(), dsl: m.subflows?.dsl ?? 0, lte: m.subflows?.lte ?? 0 })
      }))
    }
    await sleep(start + T.preMs - now())
    const faultStart = now()
    for (const step of fault.steps) {
      await sleep(faultStart + step.atMs - now())
      await lab.setAccessState(step.access, step.state)
    }
    const faultEnd = now()
    await sleep(faultEnd + T.postMs - now())
    const end = now()
    await Promise.all(pollers.map(async (p) => p.stop()))
    pollers = []
    const done = await Promise.all(fetches)
    await Promise.race([state.closed, sleep(5000)])
    return {
      fault,
      mode,
      t: { start, faultStart, faultEnd, end },
      arrivals: state.arrivals as Arrivals,
      end: state.end,
      bytes,
      subflows: session !== undefined ? subflows : state.subflows,
      subflowSource: session !== undefined ? 'cpe-metrics' : 'mptcp-full-info',
      fetches: done,
      mptcpBlackholes: (await cpeBlackholes(lab)) - blackholesBefore
    }
  } finally {
    await Promise.all(pollers.map(async (p) => p.stop()))
    if (child.exitCode === null && child.pid !== undefined) { try { process.kill(child.pid, 'SIGKILL') } catch { /* gone */ } }
    for (const a of ['dsl', 'lte'] as const) if (lab.access[a].state !== 'up') await lab.setAccessState(a, 'up')
  }
}
