/**
 * Real loopback sockets around one CPE signalling object (Socks5Upstream / ConvertUpstream): a LAN
 * client connected to a listener whose accepted socket plays the TPROXY-accepted LAN leg, and a
 * scripted concentrator (or converter) listener. Only the dial is swapped: plain TCP on loopback
 * instead of MPTCP + SO_MARK (no MPTCP/mark needed to exercise the signalling state machine).
 */
import net from 'node:net'
import { once } from 'node:events'
import { Value } from 'typebox/value'
import { createRegistry } from '../../shared/src/metrics/registry.ts'
import { createLogger } from '../../shared/src/log.ts'
import { createCpeMetrics, type CpeMetrics } from '../../cpe/src/metrics.ts'
import { CpeLimitsSchema, type CpeLimits } from '../../cpe/src/config/limits.ts'
import { Socks5Schema, type Socks5Config } from '../../cpe/src/config/socks5.ts'
import { ConvertClientSchema, type ConvertClientConfig } from '../../cpe/src/config/convert.ts'
import { CpeSessionTable } from '../../cpe/src/mgmt/session-table.ts'
import { PathMonitor } from '../../cpe/src/paths/path-monitor.ts'
import type { DialFn } from '../../cpe/src/modes/upstream.ts'
import type { Registry } from 'prom-client'

export interface Peer {
  readonly server: net.Server
  readonly port: number
  /** Sockets accepted so far (one per attempt). */
  readonly accepted: net.Socket[]
  close: () => Promise<void>
}

/** A listener (allowHalfOpen, as the real ones) calling `onConn` for each accepted socket. */
export async function listenPeer (onConn: (s: net.Socket, index: number) => void): Promise<Peer> {
  const accepted: net.Socket[] = []
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {})
    accepted.push(s)
    onConn(s, accepted.length - 1)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as net.AddressInfo).port
  return {
    server,
    port,
    accepted,
    close: async () => {
      for (const s of accepted) s.destroy()
      await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    }
  }
}

/** A LAN client and the accepted (agent-side) socket of its connection. */
export async function lanPair (): Promise<{ client: net.Socket, lan: net.Socket, close: () => Promise<void> }> {
  const lanSide = await listenPeer(() => {})
  const client = net.connect({ host: '127.0.0.1', port: lanSide.port, allowHalfOpen: true })
  client.on('error', () => {})
  await once(client, 'connect')
  while (lanSide.accepted.length === 0) await new Promise((resolve) => setImmediate(resolve))
  const lan = lanSide.accepted[0] as net.Socket
  return { client, lan, close: async () => { client.destroy(); await lanSide.close() } }
}

export interface SignallingDeps {
  registry: Registry
  metrics: CpeMetrics
  sessions: CpeSessionTable
  paths: PathMonitor
  dial: DialFn
  /** Value of a counter with exactly these labels (0 when never incremented). */
  count: (name: string, labels: Record<string, string>) => Promise<number>
}

export function signallingDeps (): SignallingDeps {
  const registry = createRegistry({ daemon: 'cpe', version: 'test', commit: 'test', defaultMetrics: false })
  const metrics = createCpeMetrics(registry, { paths: ['dsl'], kernelMib: false })
  const paths = new PathMonitor({ metrics, paths: ['dsl'], primary: 'dsl' })
  const dial: DialFn = (o) => net.connect({ host: o.host, port: o.port, allowHalfOpen: true })
  const count = async (name: string, labels: Record<string, string>): Promise<number> => {
    const m = registry.getSingleMetric(name)
    if (m === undefined) throw new Error(`no metric ${name}`)
    const { values } = await m.get()
    const hit = values.find((v) => Object.entries(labels).every(([k,
      want]) => String(v.labels[k]) === want) && Object.keys(v.labels).length === Object.keys(labels).length)
    return hit?.value ?? 0
  }
  return { registry, metrics, sessions: new CpeSessionTable(), paths, dial, count }
}

export const silentLog = createLogger({ level: 'silent', name: 'test' })

export function socks5Config (over: Partial<Socks5Config> = {}): Socks5Config {
  return { ...(Value.Default(Socks5Schema, {}) as Socks5Config), ...over }
}

export function convertConfig (over: Partial<ConvertClientConfig> = {}): ConvertClientConfig {
  return { ...(Value.Default(ConvertClientSchema, {}) as ConvertClientConfig), ...over }
}

export function limitsConfig (over: Partial<CpeLimits> = {}): CpeLimits {
  return { ...(Value.Default(CpeLimitsSchema, {}) as CpeLimits), ...over }
}

export function endpoint (port: number): { host: string, port: number, fastOpen: boolean, fastOpenNoCookie: boolean } {
  return { host: '127.0.0.1', port, fastOpen: false, fastOpenNoCookie: false }
}

/** Resolves with everything the socket sent once it has ended (FIN) or closed. */
export function readAll (s: net.Socket): Promise<{ data: Buffer, how: 'end' | 'close' }> {
  const chunks: Buffer[] = []
  s.on('data', (c: Buffer) => { chunks.push(c) })
  return new Promise((resolve) => {
    s.once('end', () => { resolve({ data: Buffer.concat(chunks), how: 'end' }) })
    s.once('close', () => { resolve({ data: Buffer.concat(chunks), how: 'close' }) })
  })
}

/** Resolves with the ms from now until the LAN client's socket closes, and whether it was reset. */
export function lanClosed (client: net.Socket): Promise<{ ms: number, reset: boolean }> {
  const t0 = performance.now()
  let reset = false
  client.on('error', (err: Error & { code?: string }) => { if (err.code === 'ECONNRESET') reset = true })
  return new Promise((resolve) => { client.once('close', () => { resolve({ ms: performance.now() - t0, reset }) }) })
}

/** Waits until `pred` holds, polling every 5 ms, at most `ms`. */
export async function until (pred: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (!pred()) {
    if (Date.now() > end) return false
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return true
}
