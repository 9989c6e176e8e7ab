/**
 * Read-only view of the uplinks for `multipath.rules: off` (the operator owns routing and endpoints):
 * every `pollIntervalMs` it reads `ip -j addr show` and `ip -j mptcp endpoint show` and reports the
 * same `UplinkState` list as the UplinkManager, changing nothing. `setMode`/`setAdmin` are refused.
 */
import { EventEmitter } from 'node:events'
import { HybridError } from '../../../shared/src/errors.ts'
import type { Logger } from '../../../shared/src/log.ts'
import { runCommand, runJsonArray, type CommandRunner } from '../../../shared/src/sys/command.ts'
import type { MultipathConfig, UplinkConfig } from '../config/uplinks.ts'
import { uplinkState, type UplinkState } from '../uplink/uplink-manager.ts'
import { parseEndpoints, parseLinks, uplinkSpecs, type MultipathMode } from '../uplink/uplink-plan.ts'

/** What the agent needs from an uplink manager (implemented by UplinkManager and UplinkObserver). */
export interface UplinkSource extends EventEmitter<{ change: [UplinkState[]], problem: [Error] }> {
  readonly mode: MultipathMode
  uplinks: () => UplinkState[]
  setMode: (mode: MultipathMode) => Promise<void>
  setAdmin: (name: string, admin: 'up' | 'down') => Promise<void>
  refresh: () => Promise<void>
  stop: () => Promise<void>
}

export class UplinkObserver extends EventEmitter<{ change: [UplinkState[]], problem: [Error] }> implements UplinkSource {
  readonly #uplinks: readonly UplinkConfig[]
  readonly #mp: MultipathConfig
  readonly #run: CommandRunner
  readonly #log: Logger
  #states: UplinkState[] = []
  #timer: NodeJS.Timeout | undefined

  private constructor (uplinks: readonly UplinkConfig[], mp: MultipathConfig, log: Logger, run: CommandRunner) {
    super()
    this.#uplinks = uplinks
    this.#mp = mp
    this.#log = log
    this.#run = run
  }

  static async start (opts: {
    uplinks: readonly UplinkConfig[],
    multipath: MultipathConfig,
    log: Logger,
    run?: CommandRunner
  }): Promise<UplinkObserver> {
    const o = new UplinkObserver(opts.uplinks, opts.multipath, opts.log, opts.run ?? runCommand)
    await o.refresh()
    o.#timer = setInterval(() => { o.refresh().catch(() => {}) }, opts.multipath.pollIntervalMs).unref()
    return o
  }

  get mode (): MultipathMode { return this.#mp.mode }
  uplinks (): UplinkState[] { return this.#states.map((s) => ({ ...s, addresses: [...s.addresses], endpointIds: [...s.endpointIds] })) }

  async setMode (): Promise<void> {
    throw new HybridError('HYBRID_ERR_UPLINK_CONFIG',
      'multipath.rules is off: the operator owns the MPTCP endpoints')
  }

  async setAdmin (): Promise<void> {
    throw new HybridError('HYBRID_ERR_UPLINK_CONFIG',
      'multipath.rules is off: the operator owns the MPTCP endpoints')
  }

  async refresh (): Promise<void> {
    try {
      const links = parseLinks(await runJsonArray(this.#run, ['ip', '-j', 'addr', 'show']))
      const endpoints = parseEndpoints(await runJsonArray(this.#run, ['ip', '-j', 'mptcp', 'endpoint', 'show']))
      const idsOn = (addresses: string[]): number[] => endpoints.filter((e) => addresses.includes(e.address)).map((e) => e.id)
      const states = uplinkSpecs(this.#uplinks, this.#mp).map((s) => uplinkState(s, links.get(s.interface), idsOn, this.#mp.mode, 'up'))
      const changed = JSON.stringify(states) !== JSON.stringify(this.#states)
      this.#states = states
      if (changed) this.emit('change', this.uplinks())
    } catch (err) {
      this.#log.warn({ err }, 'uplink observation failed')
      this.emit('problem', err as Error)
      throw err
    }
  }

  async stop (): Promise<void> {
    clearInterval(this.#timer)
  }
}
