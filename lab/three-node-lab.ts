/**
 * Minimal client — router — server topology for testing and measuring the link emulation:
 *
 *   client eth0 192.0.2.2 / 2001:db8:1::2 ── cpe0 [router] core0 ── eth0 198.51.100.2 / 2001:db8:2::2 server
 *                                 192.0.2.1 / 2001:db8:1::1     198.51.100.1 / 2001:db8:2::1
 *
 * plus helpers to run the UDP prober and iperf3 inside it. Every process it starts is killed by PID.
 */
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import type { ChildProcess } from 'node:child_process'
import { createNamespace, removeNamespace, veth, type Netns } from './netns.ts'
import { quantile } from './summary.ts'

export { quantile }

export const ADDR = {
  client4: '192.0.2.2',
  router4cpe: '192.0.2.1',
  router4core: '198.51.100.1',
  server4: '198.51.100.2',
  client6: '2001:db8:1::2',
  router6cpe: '2001:db8:1::1',
  router6core: '2001:db8:2::1',
  server6: '2001:db8:2::2'
} as const

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url))
const PROBE = fileURLToPath(new URL('./udp-probe.ts', import.meta.url))

export interface ThreeNodeLab {
  client: Netns
  router: Netns
  server: Netns
  /** Router interfaces facing the client (CPE side) and the server (core side). */
  cpeSide: string
  coreSide: string
  /** Kill every process started through the lab and delete the namespaces. */
  destroy: () => Promise<void>
  /** Start a process in a namespace; it is killed (by PID) on destroy. */
  spawn: (ns: Netns, argv: readonly string[]) => ChildProcess
}

export async function createThreeNodeLab (prefix: string): Promise<ThreeNodeLab> {
  const names = [`${prefix}c`, `${prefix}r`, `${prefix}s`]
  const children: ChildProcess[] = []
  const destroy = async (): Promise<void> => {
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) {
        try { process.kill(c.pid, 'SIGKILL') } catch { /* gone */ }
      }
    }
    for (const n of names) await removeNamespace(n)
  }
  try {
    const [client, router, server] = await Promise.all(names.map(async (n) => createNamespace(n))) as [Netns, Netns, Netns]
    await router.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1'])
    await veth(client, 'eth0', router, 'cpe0')
    await veth(router, 'core0', server, 'eth0')
    const addr = async (ns: Netns, dev: string, v4: string, v6: string): Promise<void> => {
      await ns.exec(['ip', 'addr', 'add', `${v4}/24`, 'dev', dev])
      await ns.exec(['ip', '-6', 'addr', 'add', `${v6}/64`, 'dev', dev, 'nodad'])
    }
    await addr(client, 'eth0', ADDR.client4, ADDR.client6)
    await addr(router, 'cpe0', ADDR.router4cpe, ADDR.router6cpe)
    await addr(router, 'core0', ADDR.router4core, ADDR.router6core)
    await addr(server, 'eth0', ADDR.server4, ADDR.server6)
    await client.exec(['ip', 'route', 'add', 'default', 'via', ADDR.router4cpe])
    await client.exec(['ip', '-6', 'route', 'add', 'default', 'via', ADDR.router6cpe])
    await server.exec(['ip', 'route', 'add', 'default', 'via', ADDR.router4core])
    await server.exec(['ip', '-6', 'route', 'add', 'default', 'via', ADDR.router6core])
    const spawn = (ns: Netns, argv: readonly string[]): ChildProcess => {
      const c = ns.spawn(argv, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
      children.push(c)
      return c
    }
    return { client, router, server, cpeSide: 'cpe0', coreSide: 'core0', destroy, spawn }
  } catch (err) {
    await destroy()
    throw err
  }
}

/** Start the UDP echo (v4 and v6) on the server; resolves once both listen. */
export async function startEcho (lab: ThreeNodeLab, port = 7000): Promise<void> {
  const c = lab.spawn(lab.server, [process.execPath, '--import', 'tsx', PROBE, 'echo', '--port', String(port)])
  const rl = createInterface({ input: c.stdout! })
  const [line] = await once(rl, 'line', { signal: AbortSignal.timeout(20_000) }) as [string]
  if (!line.includes('listening')) throw new Error(`echo did not start: ${line}`)
}

export interface ProbeResult { sent: number, received: number, rttsMs: number[] }

/** Run the prober in the client namespace (bounded: count × interval + wait). */
export async function probe (lab: ThreeNodeLab, host: string,
  o: { count: number, intervalMs: number, size?: number, waitMs?: number, port?: number }): Promise<ProbeResult> {
  const out = await lab.client.exec([process.execPath, '--import', 'tsx', PROBE, 'probe', '--host', host,
    '--port', String(o.port ?? 7000), '--count', String(o.count), '--interval-ms', String(o.intervalMs),
    '--size', String(o.size ?? 64), '--wait-ms', String(o.waitMs ?? 500)],
  { timeoutMs: 30_000 + o.count * o.intervalMs + (o.waitMs ?? 500) })
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as ProbeResult
}

/** Start iperf3 servers (one-off) on the server namespace, port 5201. */
export async function startIperfServer (lab: ThreeNodeLab): Promise<void> {
  lab.spawn(lab.server, ['iperf3', '-s', '-p', '5201'])
  // iperf3 prints nothing machine-readable on start: poll until it accepts
  const deadline = Date.now() + 5_000
  while (Date.now() < deadline) {
    const ss = await lab.server.exec(['ss', '-ltnH', 'sport = :5201'])
    if (ss.trim() !== '') return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error('iperf3 server did not start')
}

/** TCP goodput in Mbit/s (receiver side) of an iperf3 run from the client; reverse = server sends. */
export async function iperf (lab: ThreeNodeLab, host: string, o: { seconds: number, reverse?: boolean }): Promise<number> {
  try {
    return await iperfOnce(lab, host, o)
  } catch (err) {
    // the one-test-at-a-time server may still be finishing the previous test: one retry
    if (!String(err).includes('busy')) throw err
    await new Promise((resolve) => setTimeout(resolve, 500))
    return iperfOnce(lab, host, o)
  }
}

async function iperfOnce (lab: ThreeNodeLab, host: string, o: { seconds: number, reverse?: boolean }): Promise<number> {
  const out = await lab.client.exec(['iperf3', '-c', host, '-p', '5201', '-t', String(o.seconds), '-J', '-O', '1',
    ...(o.reverse === true ? ['-R'] : [])], { timeoutMs: (o.seconds + 15) * 1000 })
  const j = JSON.parse(out) as { error?: string, end?: { sum_received?: { bits_per_second: number } } }
  const bps = j.end?.sum_received?.bits_per_second
  if (bps === undefined) throw new Error(`iperf3 to ${host}: ${j.error ?? 'no result'}`)
  return bps / 1e6
}
