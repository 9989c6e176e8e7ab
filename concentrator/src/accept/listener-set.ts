/**
 * The proxy listeners from `listeners:`: bound through the shared MPTCP `listen()` (TFO queue,
 * optional cookie-less TFO, IPV6_V6ONLY, `mptcp.onUnavailable`), reconciled on reload (only
 * changed entries are closed and re-bound), and closed at the end of a drain.
 *
 * MPTCP listeners stay open while their connections drain: once an MPTCP listener is closed the
 * kernel refuses the MP_JOINs of its connections (docs/mptcp-socket-layer.md). So "stop
 * accepting" is `setAccepting(false)`: arrivals are closed at once while the socket keeps
 * listening; `closeAll()` comes after the drain.
 */
import type net from 'node:net'
import type { Logger } from '../../../shared/src/log.ts'
import { listen } from '../../../shared/src/net/listen.ts'
import type { MptcpUnavailablePolicy } from '../../../shared/src/net/sockopt.ts'
import type { ConcentratorConfig } from '../config/config.ts'

type ListenerConfig = ConcentratorConfig['listeners'][number]

export interface BoundListener {
  readonly key: string
  readonly config: ListenerConfig
  readonly server: net.Server
  /** What the socket really is: 'tcp' after an MPTCP fallback at start-up. */
  readonly protocol: 'mptcp' | 'tcp'
  readonly address: { host: string, port: number }
}

export type ConnectionHandler = (socket: net.Socket, listener: BoundListener) => void

export interface ListenerSetOptions {
  log: Logger
  onUnavailable: MptcpUnavailablePolicy
  highWaterMark: number
  onConnection: ConnectionHandler
  /** SO_REUSEPORT on every listener (`workers` > 1: each worker binds the same addresses). */
  reusePort?: boolean
  /** A listener fell back to TCP because the kernel has no MPTCP. */
  onFallbackListener?: (config: ListenerConfig) => void
}

/** Identity of a listener entry: any change re-binds it. */
export function listenerKey (c: ListenerConfig): string {
  return [c.mode, c.protocol, c.host, c.port, c.fastOpenQueue, c.fastOpenNoCookie, c.v6Only].join('|')
}

export class ListenerSet {
  readonly #o: ListenerSetOptions
  readonly #bound = new Map<string, BoundListener>()
  #wanted: readonly ListenerConfig[] = []
  #accepting = true

  constructor (options: ListenerSetOptions) {
    this.#o = options
  }

  get listeners (): BoundListener[] { return [...this.#bound.values()] }
  /** Every configured listener is bound. */
  get allBound (): boolean { return this.#wanted.length > 0 && this.#wanted.every((c) => this.#bound.has(listenerKey(c))) }
  get accepting (): boolean { return this.#accepting }

  setAccepting (on: boolean): void {
    this.#accepting = on
  }

  /** Bind what is configured and not bound; close what is bound and no longer configured. */
  async reconcile (configs: readonly ListenerConfig[]): Promise<void> {
    this.#wanted = configs
    const keys = new Set(configs.map(listenerKey))
    for (const [key, l] of this.#bound) {
      if (keys.has(key)) continue
      this.#bound.delete(key)
      await closeServer(l.server)
      this.#o.log.info({ host: l.address.host, port: l.address.port, mode: l.config.mode }, 'listener closed (removed from config)')
    }
    for (const c of configs) {
      const key = listenerKey(c)
      if (!this.#bound.has(key)) this.#bound.set(key, await this.#bind(c, key))
    }
  }

  async closeAll (): Promise<void> {
    const all = [...this.#bound.values()]
    this.#bound.clear()
    await Promise.all(all.map(async (l) => { await closeServer(l.server) }))
  }

  async #bind (c: ListenerConfig, key: string): Promise<BoundListener> {
    let protocol: 'mptcp' | 'tcp' = c.protocol
    const holder: { listener?: BoundListener } = {}
    const server = await listen({
      host: c.host,
      port: c.port,
      protocol: c.protocol,
      onMptcpUnavailable: this.#o.onUnavailable,
      onFallback: () => { protocol = 'tcp' },
      ...(c.fastOpenQueue > 0 ? { fastOpenQueue: c.fastOpenQueue } : {}),
      ...(c.fastOpenNoCookie ? { fastOpenNoCookie: true } : {}),
      ...(c.host.includes(':') ? { v6Only: c.v6Only } : {}),
      highWaterMark: this.#o.highWaterMark,
      ...(this.#o.reusePort === true ? { reusePort: true } : {}),
      allowHalfOpen: true
    }, (socket) => { this.#accept(socket, holder.listener) })
    server.on('error', (err) => { this.#o.log.error({ err, host: c.host, port: c.port }, 'listener error') })
    const a = server.address()
    const address = a !== null && typeof a === 'object' ? { host: a.address, port: a.port } : { host: c.host, port: c.port }
    const listener: BoundListener = { key, config: c, server, protocol, address }
    holder.listener = listener
    if (c.protocol === 'mptcp' && protocol === 'tcp') {
      this.#o.log.warn({ host: c.host, port: c.port }, 'kernel MPTCP unavailable: listener runs plain TCP (no bonding)')
      this.#o.onFallbackListener?.(c)
    }
    this.#o.log.info({
      host: address.host,
      port: address.port,
      mode: c.mode,
      protocol,
      fastOpenQueue: c.fastOpenQueue,
      fastOpenNoCookie: c.fastOpenNoCookie
    }, 'listening')
    return listener
  }

  #accept (socket: net.Socket, listener: BoundListener | undefined): void {
    if (!this.#accepting || listener === undefined) {
      socket.on('error', () => {})
      socket.destroy()
      return
    }
    this.#o.onConnection(socket, listener)
  }
}

/**
 * Close the listening socket. Not awaiting `server.close`'s callback: Node calls it only after
 * every connection accepted from this server has ended, and established flows must not hold a
 * reload up. One turn of the loop lets libuv release the fd before the port is bound again.
 */
async function closeServer (server: net.Server): Promise<void> {
  server.close()
  await new Promise<void>((resolve) => { setImmediate(resolve) })
}
