/**
 * Test harness for in-process concentrator tests: a validated configuration (schema defaults,
 * listener ports patched to 0), a started concentrator with a fresh registry and a silent (or
 * captured) logger, an echo server on 127.0.0.2, and a raw SOCKS5 client that reads exact byte
 * counts.
 */
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { Registry } from 'prom-client'
import { stringify } from 'yaml'
import { loadConfig } from '../../shared/src/config/load-config.ts'
import { createLogger } from '../../shared/src/log.ts'
import type { Logger } from '../../shared/src/log.ts'
import { createConcentrator } from '../../concentrator/src/concentrator.ts'
import type { Concentrator, ConcentratorDeps } from '../../concentrator/src/concentrator.ts'
import { ConfigSchema } from '../../concentrator/src/config/config.ts'
import { testTempDir } from './temp-dir.ts'
import type { ConcentratorConfig } from '../../concentrator/src/config/config.ts'

export const ECHO_HOST = '127.0.0.2'

export function tempDir (): string {
  return testTempDir('hat-conc-')
}

let stateDir: string | undefined

/**
 * A validated config from a plain object; listener ports given as 0 are patched in after validation.
 * The crash journal (stateDir) goes to one temp dir per test process (one value, so reloads keep it).
 */
export function makeConfig (doc: Record<string, unknown>): ConcentratorConfig {
  const dir = tempDir()
  const file = join(dir, 'concentrator.yaml')
  const listeners = (doc['listeners'] as Array<Record<string, unknown>> | undefined) ?? [{
    host: '127.0.0.1',
    port: 0,
    mode: 'socks5',
    protocol: 'tcp'
  }]
  const withPorts = listeners.map((l) => ({ ...l, port: l['port'] === 0 ? 1 : l['port'] }))
  // Not the default /run/hybrid-concentrator: creating it needs root, and every checkout shared it.
  stateDir ??= testTempDir('hat-conc-state-')
  writeFileSync(file, stringify({ log: { level: 'fatal' }, stateDir, policy: { allowPrefixes: ['127.0.0.0/8'], hostAddresses: { except: ['127.0.0.0/8'] } }, auth: { trustedPrefixes: ['127.0.0.0/8'] }, ...doc, listeners: withPorts }))
  const loaded = structuredClone(loadConfig(ConfigSchema, { file })) as unknown as { listeners: Array<{ port: number }> }
  listeners.forEach((l, i) => { if (l['port'] === 0 && loaded.listeners[i] !== undefined) loaded.listeners[i].port = 0 })
  return loaded as unknown as ConcentratorConfig
}

export function silentLogger (): Logger {
  return createLogger({ level: 'silent', name: 'test' })
}

export interface Started {
  conc: Concentrator
  port: (i?: number) => number
}

export async function startConcentrator (t: TestContext, config: ConcentratorConfig, deps: Partial<ConcentratorDeps> = {}): Promise<Started> {
  const conc = createConcentrator(config, { log: silentLogger(), registry: new Registry(), listenManagement: false, kernelMib: false, ...deps })
  t.after(async () => { await conc.stop() })
  await conc.start()
  return { conc, port: (i = 0) => conc.listeners()[i]?.port ?? 0 }
}

export async function echoServer (t: TestContext, host = ECHO_HOST): Promise<{ server: net.Server, port: number, sockets: Set<net.Socket> }> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s)
    s.on('error', () => {})
    s.on('close', () => sockets.delete(s))
    s.pipe(s)
  })
  server.listen(0, host)
  await once(server, 'listening')
  t.after(() => { for (const s of sockets) s.destroy(); server.close() })
  return { server, port: (server.address() as net.AddressInfo).port, sockets }
}

/** A raw client: collects bytes; `read(n)` resolves with exactly the next n bytes. */
export class RawClient {
  readonly socket: net.Socket
  #buf = Buffer.alloc(0)
  #waiters: Array<() => void> = []
  #ended = false
  closed: Promise<void>

  constructor (socket: net.Socket) {
    this.socket = socket
    socket.on('data', (d: Buffer) => { this.#buf = Buffer.concat([this.#buf, d]); this.#wake() })
    socket.on('error', () => {})
    // "Closed by the peer": FIN ('end', the client runs allowHalfOpen) or 'close'.
    this.closed = new Promise((resolve) => {
      const done = (): void => { this.#ended = true; this.#wake(); resolve() }
      socket.on('end', done)
      socket.on('close', done)
    })
  }

  static async connect (port: number, host = '127.0.0.1', opts: { localAddress?: string } = {}): Promise<RawClient> {
    const socket = net.connect({ port, host, allowHalfOpen: true, ...opts })
    const c = new RawClient(socket)
    await once(socket, 'connect')
    return c
  }

  #wake (): void {
    const w = this.#waiters
    this.#waiters = []
    for (const f of w) f()
  }

  get buffered (): Buffer { return this.#buf }

  async read (n: number, timeoutMs = 3000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs
    while (this.#buf.length < n) {
      if ((this.socket.destroyed || this.#ended) && this.#buf.length < n) throw new Error(`closed after ${this.#buf.length} of ${n} bytes: ${this.#buf.toString('hex')}`)
      if (Date.now() > deadline) throw new Error(`timeout: ${this.#buf.length} of ${n} bytes`)
      await new Promise<void>((resolve) => { this.#waiters.push(resolve); setTimeout(resolve, 50) })
    }
    const out = this.#buf.subarray(0, n)
    this.#buf = this.#buf.subarray(n)
    return out
  }

  write (hex: string | Buffer): void {
    this.socket.write(typeof hex === 'string' ? Buffer.from(hex, 'hex') : hex)
  }

  async waitClosed (timeoutMs = 3000): Promise<void> {
    await Promise.race([this.closed,
      new Promise<void>((_resolve, reject) => setTimeout(() => { reject(new Error('not closed')) }, timeoutMs).unref())])
  }
}

/** CONNECT request for an IPv4 literal. */
export function connectRequest (host: string, port: number): Buffer {
  const parts = host.split('.').map(Number)
  return Buffer.from([5, 1, 0, 1, ...parts, port >> 8, port & 0xff])
}

export async function metricValue (conc: Concentrator, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await conc.registry.getSingleMetric(name)?.get()
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => String((x.labels as Record<string, unknown>)[k]) === val))
  return v?.value ?? 0
}

/** Polls `check` until it returns true (or throws after `timeoutMs`). */
export async function eventually (check: () => boolean | Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
