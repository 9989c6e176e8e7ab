/**
 * `npm run lab -- --scenario udp`: LAN UDP over the hybrid line (docs/udp.md). Socks5 mode with
 * `udp.enabled` on the CPE and the CONNECT-UDP proxy on the concentrator's service address; a UDP
 * echo server on inet (lab/udp-flow.ts serve). Runs, one after the other:
 *   native        a 50 pps, 160-byte flow (like a voice call) for 5 s to a port the CPE bypasses;
 *   baseline      the same flow through the concentrator: loss, longest gap, RTT;
 *   dsl-blackhole the same flow for 10 s, DSL blackholed from 3 s to 7 s: loss and longest gap;
 *   dsl-carrier   the same with DSL's carrier down instead;
 *   short-flows   200 DNS-like flows (a new 5-tuple each, one datagram and its echo), 20 at a time;
 *   bulk-down/up  one bulk flow like a QUIC download/upload for 5 s, offered at 90 % of the sum of
 *                 both accesses' rates (vdsl + lte: 81 Mbit/s down, 22.5 up): goodput, loss.
 * Also used by test/e2e/udp.e2e.test.ts (the helpers below). No redundant mode exists yet, so the
 * "with and without redundant mode" comparison of issue 14 is not part of it.
 */
import type { ChildProcess } from 'node:child_process'
import { startModeSession, type ModeSession } from './mode-runners.ts'
import type { Lab } from './topology.ts'
import type { BulkResult, FlowsResult, StreamResult } from './udp-flow.ts'

export const UDP_PROXY_PORT = 7400
export const UDP_ECHO_PORT = 9000
/** The same echo server on a port the CPE bypasses (udp.bypassPorts): the native path, for comparison. */
export const UDP_NATIVE_PORT = 9001

const sleep = async (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export interface UdpSource { readonly address: string, readonly port: number }

/** The echo server on inet (v4 and v6), with the sources it has seen so far. */
export async function startUdpEcho (lab: Lab): Promise<{ child: ChildProcess, sources: UdpSource[] }> {
  const inet = lab.plan.internet.servers[0] as { v4: string, v6: string }
  const child = await lab.startScript('inet', 'lab/udp-flow.ts', ['serve', '--listen', inet.v4, '--listen', inet.v6, '--port', String(UDP_ECHO_PORT), '--port', String(UDP_NATIVE_PORT)])
  const sources: UdpSource[] = []
  let buf = ''
  child.stdout?.on('data', (d: Buffer) => {
    buf += String(d)
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const l = JSON.parse(buf.slice(0, i)) as { type: string } & UdpSource
      buf = buf.slice(i + 1)
      if (l.type === 'source') sources.push({ address: l.address, port: l.port })
    }
  })
  // startScript's ready wait closed its line reader, which paused the stream.
  child.stdout?.resume()
  return { child, sources }
}

/** Both daemons in socks5 mode with UDP on (the CPE's udp section, the concentrator's proxy). */
export async function startUdpSession (lab: Lab, log?: (m: string) => void): Promise<ModeSession> {
  return startModeSession(lab, 'socks5', {
    ...(log === undefined ? {} : { log }),
    overrides: {
      cpe: { udp: { enabled: true, port: UDP_PROXY_PORT, bypassPorts: [UDP_NATIVE_PORT] } },
      concentrator: { udp: { listen: { host: lab.plan.service.v4, port: UDP_PROXY_PORT } } }
    }
  })
}

async function runTool<T> (lab: Lab, args: readonly string[], type: string): Promise<T> {
  const out = await lab.ns.lan.exec([process.execPath, '--import', 'tsx', 'lab/udp-flow.ts', ...args], { timeoutMs: 180_000 })
  const line = out.trim().split('\n').map((l) => JSON.parse(l) as { type: string }).find((l) => l.type === type)
  if (line === undefined) throw new Error(`udp-flow ${args[0] ?? ''}: no ${type} line in ${out}`)
  return line as unknown as T
}

/** A constant-rate flow from the LAN host to `host` (the echo port; `port` UDP_NATIVE_PORT for the native path). */
export async function udpStream (lab: Lab, host: string, args: readonly string[] = [], port = UDP_ECHO_PORT): Promise<StreamResult> {
  return runTool<StreamResult>(lab, ['stream', '--host', host, '--port', String(port), ...args], 'result')
}

/** Many short flows from the LAN host to `host`. */
export async function udpShortFlows (lab: Lab, host: string, args: readonly string[] = []): Promise<FlowsResult> {
  return runTool<FlowsResult>(lab, ['flows', '--host', host, '--port', String(UDP_ECHO_PORT), ...args], 'flows')
}

/** One bulk flow between the LAN host and `host` (`bulk` of the flow tool). */
export async function udpBulk (lab: Lab, host: string, direction: 'up' | 'down', mbps: number, seconds = 5): Promise<BulkResult> {
  return runTool<BulkResult>(lab, ['bulk', '--host', host, '--port', String(UDP_ECHO_PORT), '--direction', direction,
    '--mbps', String(mbps), '--seconds', String(seconds)], 'bulk')
}

/** A 10 s, 50 pps flow with DSL in `state` from 3 s to 7 s. */
export async function streamThroughFault (lab: Lab, host: string, state: 'blackhole' | 'down'): Promise<StreamResult> {
  const run = udpStream(lab, host, ['--seconds', '10'])
  try {
    await sleep(3000)
    await lab.setAccessState('dsl', state)
    await sleep(4000)
  } finally {
    await lab.setAccessState('dsl', 'up')
  }
  return run
}

export interface UdpScenarioReport {
  /** The same flow on the native path (a bypassed port: DSL only, no concentrator). */
  readonly native: StreamResult
  readonly baseline: StreamResult
  readonly dslBlackhole: StreamResult
  readonly dslCarrier: StreamResult
  readonly shortFlows: FlowsResult
  readonly bulkDown: BulkResult
  readonly bulkUp: BulkResult
  /** The accesses' shaped rates (Mbit/s), for the bulk figures. */
  readonly rates: { readonly down: { dsl: number, lte: number }, readonly up: { dsl: number, lte: number } }
  readonly concentratorFlows: number
}

export async function runUdpScenario (lab: Lab, log: (m: string) => void): Promise<UdpScenarioReport> {
  const echo = await startUdpEcho(lab)
  const session = await startUdpSession(lab, log)
  const host = (lab.plan.internet.servers[0] as { v4: string }).v4
  try {
    log('udp: native path (bypassed port), then through the concentrator: 50 pps for 5 s each')
    const native = await udpStream(lab, host, ['--seconds', '5'], UDP_NATIVE_PORT)
    const baseline = await udpStream(lab, host, ['--seconds', '5'])
    log('udp: DSL blackhole during a 50 pps flow')
    const dslBlackhole = await streamThroughFault(lab, host, 'blackhole')
    await sleep(2000)
    log('udp: DSL carrier loss during a 50 pps flow')
    const dslCarrier = await streamThroughFault(lab, host, 'down')
    await sleep(2000)
    log('udp: 200 short flows, 20 at a time')
    const shortFlows = await udpShortFlows(lab, host)
    const rates = {
      down: { dsl: lab.access.dsl.profile.down.rateMbit, lte: lab.access.lte.profile.down.rateMbit },
      up: { dsl: lab.access.dsl.profile.up.rateMbit, lte: lab.access.lte.profile.up.rateMbit }
    }
    log('udp: one bulk flow down, then up, 5 s each')
    const bulkDown = await udpBulk(lab, host, 'down', 0.9 * (rates.down.dsl + rates.down.lte))
    const bulkUp = await udpBulk(lab, host, 'up', 0.9 * (rates.up.dsl + rates.up.lte))
    const concentratorFlows = await session.concentrator.metric('hybrid_udp_flows_created_total')
    return { native, baseline, dslBlackhole, dslCarrier, shortFlows, bulkDown, bulkUp, rates, concentratorFlows }
  } finally {
    await session.stop()
    echo.child.kill('SIGTERM')
  }
}

export function formatUdpReport (r: UdpScenarioReport): string {
  const row = (name: string, s: StreamResult): string =>
    `| ${name} | ${s.sent} | ${s.lost} | ${s.duplicates} | ${s.reordered} | ${s.longestGapMs} | ${s.rttP50Ms} | ${s.rttP99Ms} | ${s.rttMaxMs} |`
  const f = r.shortFlows
  return [
    'UDP over the hybrid line (socks5 mode, CONNECT-UDP over MPTCP; 50 pps, 160-byte payloads)',
    '',
    '| Run | Sent | Lost | Dup | Reordered | Longest gap ms | RTT p50 ms | RTT p99 ms | RTT max ms |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    row('native path (bypassed port, DSL)', r.native),
    row('through the concentrator', r.baseline),
    row('DSL blackhole 4 s', r.dslBlackhole),
    row('DSL carrier loss 4 s', r.dslCarrier),
    '',
    `Short flows: ${f.answered}/${f.count} answered, RTT p50 ${f.rttP50Ms} ms, p99 ${f.rttP99Ms} ms, max ${f.rttMaxMs} ms`,
    '',
    '| Bulk flow | Offered Mbit/s | Goodput Mbit/s | Loss % | Best single access Mbit/s | Sum of accesses Mbit/s |',
    '|---|---:|---:|---:|---:|---:|',
    ...(['bulkDown', 'bulkUp'] as const).map((k) => {
      const b = r[k]
      const rate = b.direction === 'down' ? r.rates.down : r.rates.up
      return `| ${b.direction} | ${b.offeredMbps} | ${b.goodputMbps} | ${b.lossPct} | ${Math.max(rate.dsl, rate.lte)} | ${rate.dsl + rate.lte} |`
    }),
    `Concentrator: ${r.concentratorFlows} UDP flows created`,
    ''
  ].join('\n')
}
