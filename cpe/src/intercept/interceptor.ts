/**
 * LAN interception at run time: IP_TRANSPARENT listeners (v4 on 0.0.0.0, v6 on ::), the fwmark
 * policy routing and the owner table `inet hybrid_cpe` held by an `nft -i` child (NftOwner).
 *
 * Start order: listeners, routing, nft table (a TPROXY rule without a listener would only fail
 * open). Stop: `stopAccepting()` closes the listeners — new LAN connections then flow natively while
 * intercepted ones keep working (their packets still match `socket transparent 1`); `stop()` then
 * removes the table (ends the holder) and the routing. If the agent dies, the holder reads EOF and
 * exits, and the kernel deletes the table: traffic is routed natively (fail-open).
 *
 * The original destination of an accepted connection is its local address and port. A connection
 * whose local address is one of the CPE's own (HostAddresses: a direct connection to the port from
 * the WAN, the LAN or the CPE itself, never a TPROXY'd one) is reset and reported through
 * `onRefused`: relaying it would send the concentrator back to this port — a loop. The nft table
 * drops such SYNs on every interface first; this check also holds with `rules: external` or while
 * the table is gone (fail-open).
 */
import { EventEmitter } from 'node:events'
import type net from 'node:net'
import type { Logger } from '../../../shared/src/log.ts'
import { listen } from '../../../shared/src/net/listen.ts'
import { HostAddresses, type AddressMembership } from '../../../shared/src/net/host-addresses.ts'
import { runCommand, type CommandRunner } from '../../../shared/src/sys/command.ts'
import type { JournalRecorder } from '../../../shared/src/sys/crash-journal.ts'
import { NftOwner } from '../../../shared/src/sys/nft-owner.ts'
import { localEndpoint, type Endpoint } from '../../../shared/src/net/endpoint.ts'
import { installRoutingPlan, removeRoutingPlan } from './routing-plan.ts'
import { buildInterceptRouting, buildInterceptRuleset, NFT_FAMILY, NFT_TABLE, type InterceptRulesetInput } from './intercept-ruleset.ts'

/** The address the LAN client connected to (the TPROXY socket's local side). */
export type OriginalDestination = Endpoint

/** Told about a connection addressed to the CPE itself (reset, never relayed). */
export type RefusedHandler = (destination: OriginalDestination, source: string | undefined) => void

export interface InterceptorOptions {
  config: InterceptRulesetInput
  log: Logger
  /** Called for each intercepted LAN connection with its original destination. */
  onConnection: (socket: net.Socket, destination: OriginalDestination) => void
  /** Runner of `ip` commands and the `nft -c` check. Default runCommand. */
  run?: CommandRunner
  /** Prefix of the `nft` commands (tests: `['ip', 'netns', 'exec', ns]`). */
  commandPrefix?: readonly string[]
  /** Stream high-water mark of accepted sockets; Node's default otherwise. */
  highWaterMark?: number
  /** A connection addressed to the CPE itself was reset (never relayed). */
  onRefused?: RefusedHandler
  /** Tests: the CPE's own addresses; default HostAddresses (read and watched) started with the listeners. */
  hostAddresses?: AddressMembership
  /** The fwmark rule and the local route are recorded before they are added (crash-journal.ts). */
  journal?: JournalRecorder
}

/** The socket's local side, IPv4-mapped prefix of a dual-stack socket stripped. */
export function originalDestinationOf (socket: net.Socket): OriginalDestination | undefined {
  return localEndpoint(socket)
}

export class Interceptor extends EventEmitter<{ holderExit: [code: number | null, signal: NodeJS.Signals | null] }> {
  #ruleset: string
  #opts: InterceptorOptions
  #run: CommandRunner
  #servers: net.Server[] = []
  #own: AddressMembership | undefined
  #ownWatch: HostAddresses | undefined
  #owner: NftOwner | undefined
  #routingInstalled = false
  #tableApplied = false

  private constructor (opts: InterceptorOptions) {
    super()
    this.#opts = opts
    this.#run = opts.run ?? runCommand
    this.#ruleset = buildInterceptRuleset(opts.config)
  }

  /** The ruleset installed (or, in `external` mode, to be installed by the operator). */
  get ruleset (): string { return this.#ruleset }

  /** Whether the owner table is installed and its holder alive. */
  get tableInstalled (): boolean { return this.#owner?.pid !== undefined && this.#tableApplied }

  /**
   * Replace the ruleset atomically (bypass lists, LAN interfaces, concentrator address) through the
   * holder; established intercepted connections keep matching `socket transparent 1`. Listener,
   * marks and routing cannot change here (restart). On failure the previous ruleset stays.
   */
  async updateRuleset (config: InterceptRulesetInput): Promise<void> {
    const ruleset = buildInterceptRuleset(config)
    if (ruleset === this.#ruleset) return
    if (this.#owner !== undefined) await this.#owner.apply(ruleset)
    this.#ruleset = ruleset
    this.#opts = { ...this.#opts, config }
  }

  /** Listen, install routing and the nft table (mode `managed`), or only listen (`external`). */
  static async start (opts: InterceptorOptions): Promise<Interceptor> {
    const ic = new Interceptor(opts)
    try {
      await ic.#watchOwnAddresses()
      await ic.#listen()
      if (opts.config.intercept.rules === 'managed') {
        await ic.#installRouting()
        await ic.#installTable()
      }
    } catch (err) {
      await ic.stop()
      throw err
    }
    return ic
  }

  /** PID of the `nft -i` holder (undefined in `external` mode or after stop). */
  get holderPid (): number | undefined { return this.#owner?.pid }
  get listening (): boolean { return this.#servers.length > 0 }

  async #listen (): Promise<void> {
    const c = this.#opts.config.intercept
    const hosts = c.ipv6 ? ['0.0.0.0', '::'] : ['0.0.0.0']
    for (const host of hosts) {
      const hwm = this.#opts.highWaterMark === undefined ? {} : { highWaterMark: this.#opts.highWaterMark }
      const server = await listen({
        host,
        port: c.port,
        protocol: 'tcp',
        transparent: true,
        allowHalfOpen: true,
        ...hwm,
        ...(host === '::' ? { v6Only: true } : {})
      },
      (socket) => { this.#accept(socket) })
      this.#servers.push(server)
    }
    this.#opts.log.info({ port: c.port, hosts }, 'transparent listeners up')
  }

  async #watchOwnAddresses (): Promise<void> {
    if (this.#opts.hostAddresses !== undefined) { this.#own = this.#opts.hostAddresses; return }
    this.#ownWatch = await HostAddresses.start({
      log: this.#opts.log,
      run: this.#run,
      ...(this.#opts.commandPrefix === undefined ? {} : { commandPrefix: this.#opts.commandPrefix })
    })
    this.#own = this.#ownWatch
  }

  #accept (socket: net.Socket): void {
    const dst = originalDestinationOf(socket)
    if (dst === undefined) { socket.destroy(); return }
    if (this.#own?.has(dst.address) === true) {
      socket.on('error', () => {})
      socket.resetAndDestroy()
      this.#opts.onRefused?.(dst, socket.remoteAddress)
      return
    }
    this.#opts.onConnection(socket, dst)
  }

  async #installRouting (): Promise<void> {
    const plan = buildInterceptRouting(this.#opts.config.intercept)
    this.#routingInstalled = true
    await installRoutingPlan(plan, this.#run, this.#opts.journal)
    this.#opts.log.info({ commands: plan.add.length }, 'interception policy routing installed')
  }

  async #installTable (): Promise<void> {
    const owner = await NftOwner.start({
      family: NFT_FAMILY,
      table: NFT_TABLE,
      run: this.#run,
      ...(this.#opts.commandPrefix === undefined ? {} : { commandPrefix: this.#opts.commandPrefix })
    })
    this.#owner = owner
    owner.on('exit', (code, signal) => {
      this.#tableApplied = false
      this.#opts.log.error({ code, signal }, 'nft -i holder exited: table inet hybrid_cpe is gone, LAN traffic is routed natively (fail-open)')
      this.emit('holderExit', code, signal)
    })
    await owner.apply(this.#ruleset)
    this.#tableApplied = true
    this.#opts.log.info({ holderPid: owner.pid, table: `${NFT_FAMILY} ${NFT_TABLE}` }, 'interception ruleset installed')
  }

  /** Close the listeners: new connections flow natively, intercepted ones keep working. */
  stopAccepting (): void {
    const servers = this.#servers
    this.#servers = []
    // close() stops listening at once; its callback would wait for every accepted connection.
    for (const s of servers) s.close()
  }

  /** Close the listeners, remove the nft table and the policy routing. Idempotent. */
  async stop (): Promise<void> {
    this.stopAccepting()
    this.#ownWatch?.close()
    this.#ownWatch = undefined
    const owner = this.#owner
    this.#owner = undefined
    this.#tableApplied = false
    if (owner !== undefined) await owner.close()
    if (this.#routingInstalled) {
      this.#routingInstalled = false
      await removeRoutingPlan(buildInterceptRouting(this.#opts.config.intercept), this.#run, this.#opts.journal)
    }
  }
}
