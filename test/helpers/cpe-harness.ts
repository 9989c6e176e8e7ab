/**
 * Test harness for in-process CPE tests (the CPE counterpart of concentrator-harness.ts): the
 * real agent (`createCpe`) with
 *   - a fake interceptor: a plain loopback listener instead of the TPROXY listeners and the nft
 *     table; each accepted LAN socket is handed to the agent with the original destination the test
 *     chose for it (`lan(destination)`), as Interceptor#accept does;
 *   - fake uplinks: one `dsl` uplink owning 127.0.0.1, so the agent's path accounting maps the
 *     upstream sockets to a path;
 *   - the real shared `dial` (MPTCP, TCP_FASTOPEN_CONNECT) minus SO_MARK, which needs
 *     CAP_NET_ADMIN and only keeps the agent's own packets out of an nft table that is not there.
 * No root, no namespaces, loopback only. Point `concentrator` / `convert` at an in-process
 * concentrator (concentrator-harness.ts) or at a scripted peer (`listenScripted`).
 */
import { EventEmitter, once } from 'node:events'
import { writeFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { Registry } from 'prom-client'
import { stringify } from 'yaml'
import { loadConfig } from '../../shared/src/config/load-config.ts'
import { createLogger } from '../../shared/src/log.ts'
import { dial, type DialOptions } from '../../shared/src/net/dial.ts'
import { createCpe, type Cpe, type InterceptorLike } from '../../cpe/src/cpe.ts'
import { ConfigSchema, type CpeConfig } from '../../cpe/src/config/config.ts'
import type { OriginalDestination } from '../../cpe/src/intercept/interceptor.ts'
import type { UplinkState } from '../../cpe/src/uplink/uplink-manager.ts'
import type { UplinkSource } from '../../cpe/src/paths/uplink-observer.ts'
import { testTempDir } from './temp-dir.ts'
import { RawClient } from './concentrator-harness.ts'

let stateDir: string | undefined

/**
 * A validated CPE config from a plain object: one `dsl` uplink, a management token, the crash
 * journal in one temp dir per test process (one value, so a reload keeps it).
 */
export function makeCpeConfig (doc: Record<string, unknown>): CpeConfig {
  const file = join(testTempDir('hat-cpi-'), 'cpe.yaml')
  stateDir ??= testTempDir('hat-cpi-state-')
  writeFileSync(file, stringify({
    log: { level: 'fatal' },
    stateDir,
    management: { token: 'test-token-0123456789' },
    uplinks: [{ name: 'dsl', interface: 'dsl0', role: 'dsl' }],
    multipath: { rules: 'off' },
    mptcp: { onUnavailable: 'fallback' },
    ...doc
  }))
  return loadConfig(ConfigSchema, { file }) as CpeConfig
}

const DSL: Omit<UplinkState, 'mode'> = {
  name: 'dsl',
  role: 'dsl',
  interface: 'dsl0',
  table: 100,
  addresses: ['127.0.0.1'],
  up: true,
  endpointId: undefined,
  endpointIds: [],
  admin: 'up'
}

class FakeUplinks extends EventEmitter<{ change: [UplinkState[]], problem: [Error] }> implements UplinkSource {
  mode: 'aggregate' | 'backup' = 'aggregate'
  uplinks = (): UplinkState[] => [
    { ...DSL, mode: this.mode }
  ]

  setMode = async (m: 'aggregate' | 'backup'): Promise<void> => { this.mode = m }
  setAdmin = async (): Promise<void> => {}
  refresh = async (): Promise<void> => {}
  stop = async (): Promise<void> => {}
}

/**
 * Loopback stand-in for Interceptor: accepts on 127.0.0.1 and hands each socket over with the
 * destination registered for the client's local port (whichever of accept and the client's
 * 'connect' comes second does the hand-over).
 */
class FakeInterceptor extends EventEmitter implements InterceptorLike {
  readonly server: net.Server
  readonly #onConnection: (s: net.Socket, d: OriginalDestination) => void
  readonly #destinations = new Map<number, OriginalDestination>()
  readonly #waiting = new Map<number, net.Socket>()
  listening = false
  readonly tableInstalled = true
  handedOver = 0

  constructor (onConnection: (s: net.Socket, d: OriginalDestination) => void) {
    super()
    this.#onConnection = onConnection
    this.server = net.createServer({ allowHalfOpen: true }, (s) => {
      const key = s.remotePort ?? 0
      const d = this.#destinations.get(key)
      if (d === undefined) { this.#waiting.set(key, s); return }
      this.#handOver(key, s, d)
    })
  }

  async listen (): Promise<void> {
    this.server.listen(0, '127.0.0.1')
    await once(this.server, 'listening')
    this.listening = true
  }

  get port (): number { return (this.server.address() as net.AddressInfo).port }

  /** The client `c` (connected) is to be handed over with `d`. */
  expect (c: net.Socket, d: OriginalDestination): void {
    const key = c.localPort ?? 0
    const s = this.#waiting.get(key)
    if (s === undefined) { this.#destinations.set(key, d); return }
    this.#handOver(key, s, d)
  }

  #handOver (key: number, s: net.Socket, d: OriginalDestination): void {
    this.#destinations.delete(key)
    this.#waiting.delete(key)
    this.handedOver++
    this.#onConnection(s, d)
  }

  updateRuleset = async (): Promise<void> => {}
  stopAccepting = (): void => { this.listening = false; this.server.close() }
  stop = async (): Promise<void> => {
    this.stopAccepting()
    for (const s of this.#waiting.values()) s.destroy()
  }
}

export interface CpeHarness {
  readonly cpe: Cpe
  /** Every dial the agent made (the options as the agent passed them, SO_MARK included). */
  readonly dials: DialOptions[]
  /** LAN connections handed to the agent so far. */
  handedOver: () => number
  /** A LAN client whose connection the agent receives with `destination` as its original destination. */
  lan: (address: string, port: number) => Promise<RawClient>
  /** Value of a CPE metric with these labels (0 when never set). */
  metric: (name: string, labels?: Record<string, string>) => Promise<number>
  /** The agent's clock (pipelining memory, converter back-off): `advance(ms)` moves it on. */
  advance: (ms: number) => void
}

export async function startCpe (t: TestContext, config: CpeConfig): Promise<CpeHarness> {
  const dials: DialOptions[] = []
  let offset = 0
  let interceptor: FakeInterceptor | undefined
  const registry = new Registry()
  const cpe = createCpe(config, {
    log: createLogger({ level: 'silent', name: 'test' }),
    registry,
    listenManagement: false,
    kernelMib: false,
    clock: () => Date.now() + offset,
    startUplinks: async () => new FakeUplinks(),
    startInterceptor: async (_c, _l, onConnection) => {
      interceptor = new FakeInterceptor(onConnection)
      await interceptor.listen()
      return interceptor
    },
    dial: (o) => {
      dials.push(o)
      const { mark: _mark, ...unmarked } = o
      return dial(unmarked)
    }
  })
  t.after(async () => { await cpe.stop() })
  await cpe.start()
  const ic = interceptor
  if (ic === undefined) throw new Error('the agent did not start its interceptor (intercept.rules: off?)')
  return {
    cpe,
    dials,
    handedOver: () => ic.handedOver,
    lan: async (address, port) => {
      const socket = net.connect({ host: '127.0.0.1', port: ic.port, allowHalfOpen: true })
      const c = new RawClient(socket)
      await once(socket, 'connect')
      ic.expect(socket, { address, port, family: net.isIPv6(address) ? 6 : 4 })
      t.after(() => { socket.destroy() })
      return c
    },
    metric: async (name, labels = {}) => {
      const m = await registry.getSingleMetric(name)?.get()
      const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => String((x.labels as Record<string, unknown>)[k]) === val))
      return v?.value ?? 0
    },
    advance: (ms) => { offset += ms }
  }
}

export interface Scripted {
  readonly port: number
  /** Sockets accepted so far, in order. */
  readonly accepted: net.Socket[]
  /** The first chunk each accepted connection sent (what a single read of a naive server sees). */
  readonly firstChunks: Buffer[]
}

/** A loopback listener whose connections a test scripts (`onConn(socket, index)`); closed after the test. */
export async function listenScripted (t: TestContext, onConn: (s: net.Socket, index: number) => void): Promise<Scripted> {
  const accepted: net.Socket[] = []
  const firstChunks: Buffer[] = []
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {})
    const i = accepted.length
    accepted.push(s)
    s.once('data', (d: Buffer) => { firstChunks[i] = d })
    onConn(s, i)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => { for (const s of accepted) s.destroy(); server.close() })
  return { port: (server.address() as net.AddressInfo).port, accepted, firstChunks }
}

/** A port with nothing listening on it (connects are refused at once). */
export async function closedPort (): Promise<number> {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as net.AddressInfo).port
  await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  return port
}

/** Pipes `s` (after `rest`) to a fresh connection to `host:port` (the scripted peers' "upstream"). */
export function pipeTo (s: net.Socket, host: string, port: number, rest: Buffer = Buffer.alloc(0)): void {
  const up = net.connect({ host, port, allowHalfOpen: true })
  up.on('error', () => { s.destroy() })
  s.on('close', () => { up.destroy() })
  if (rest.length > 0) up.write(rest)
  s.pipe(up)
  up.pipe(s)
}
