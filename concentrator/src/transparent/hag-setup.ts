/**
 * Applies and removes the HAG's transparent-mode system state (plan: hag-plan.ts), remembering what
 * it changed so that `remove()` restores exactly that:
 *
 * - sysctl `net.mptcp.allow_join_initial_addr_port` → 0 (the C flag: peers must not join the
 *   initial address/port — the intercepted destination — but the announced join endpoints);
 *   the previous value is restored at stop;
 * - `ip mptcp limits`: subflows raised to `subflowsLimit` if lower; restored at stop;
 * - one `signal` endpoint with a port per join endpoint (an identical existing one is adopted);
 * - `ip rule fwmark … lookup T` + `route local default dev lo table T` (v4, v6), re-asserted at start;
 * - the nft table: failMode open → an owner table held by `nft -i` (gone with the daemon, even on
 *   SIGKILL: fail-open); failMode closed → a plain table that stays after stop and crashes (its
 *   reject rule keeps intercepted SYNs refused while no listener is there).
 *
 * Order: routing, endpoints and sysctl first, the nft rules last (nothing is intercepted before the
 * local delivery works); removal in reverse (rules first).
 */
import { HybridError } from '../../../shared/src/errors.ts'
import type { Logger } from '../../../shared/src/log.ts'
import { runCommand, runJsonArray, type CommandRunner } from '../../../shared/src/sys/command.ts'
import { NftOwner } from '../../../shared/src/sys/nft-owner.ts'
import type { JournalEntry } from '../../../shared/src/sys/crash-journal.ts'
import type { JournalRecorder } from '../../../shared/src/sys/crash-journal.ts'
import {
  endpointAddArgv, endpointDelArgv, families, hagRuleset, JOIN_SYSCTL, limitsArgv, localRouteArgv, parseEndpoints,
  parseLimits, plainTableBatch, ruleArgv, sysctlReadArgv, sysctlWriteArgv, type HagPlanInput, type JoinEndpoint, type MptcpLimits,
  type SystemEndpoint
} from './hag-plan.ts'

const ENDPOINT_RETRY_MS = 2000

export type HagSetupInput = HagPlanInput & { readonly subflowsLimit: number }

export interface HagSetupOptions {
  readonly config: HagSetupInput
  readonly log: Logger
  /** Runner of ip/sysctl/nft commands. Default runCommand. */
  readonly run?: CommandRunner
  /** Prepended to the `nft -i` holder and its `nft -c` check, which do not go through `run` (tests: `['ip', 'netns', 'exec', ns]`). */
  readonly commandPrefix?: readonly string[]
  /** The owner table's holder died (table gone: interception is off, fail-open). */
  readonly onHolderExit?: () => void
  /** Every change is recorded before it is made and forgotten when undone, so a crash cannot lose it. */
  readonly journal?: JournalRecorder
}

export class HagSetup {
  readonly #o: HagSetupOptions
  readonly #run: CommandRunner
  #owner: NftOwner | undefined
  #sysctlBefore: string | undefined
  #limitsBefore: MptcpLimits | undefined
  #endpointIds: number[] = []
  readonly #retries = new Set<NodeJS.Timeout>()
  #removed = false
  #routing = false

  constructor (options: HagSetupOptions) {
    this.#o = options
    this.#run = options.run ?? runCommand
  }

  /** The ruleset text this setup installs. */
  get ruleset (): string { return hagRuleset(this.#o.config, this.#o.config.failMode === 'open') }

  async apply (): Promise<void> {
    this.#removed = false
    try {
      await this.#applyRouting()
      await this.#applyLimits()
      await this.#applyEndpoints()
      await this.#applySysctl()
      await this.#applyRules()
    } catch (err) {
      await this.remove().catch(() => {})
      throw err
    }
  }

  /** Undo what apply() did; every step is attempted, the first failure is rethrown at the end. */
  async remove (): Promise<void> {
    this.#removed = true
    const errors: unknown[] = []
    const step = async (f: () => Promise<void>): Promise<void> => { try { await f() } catch (err) { errors.push(err) } }
    await step(async () => { await this.#removeRules() })
    await step(async () => { await this.#restoreSysctl() })
    await step(async () => { await this.#removeEndpoints() })
    await step(async () => { await this.#restoreLimits() })
    await step(async () => { await this.#removeRouting() })
    if (errors.length > 0) throw errors[0]
  }

  async #applyRouting (): Promise<void> {
    const c = this.#o.config
    this.#routing = true
    for (const f of families(c)) {
      await this.#deleteRules(f)
      this.#record({ kind: 'command', undo: localRouteArgv('del', f, c) })
      await this.#run(localRouteArgv('replace', f, c))
      this.#record({ kind: 'command', undo: ruleArgv('del', f, c) })
      await this.#run(ruleArgv('add', f, c))
    }
  }

  #record (e: JournalEntry): void { this.#o.journal?.record(e) }
  #forget (e: JournalEntry): void { this.#o.journal?.forget(e) }

  /** Remove every copy of our rule (a leftover from a crash would otherwise be duplicated). */
  async #deleteRules (f: 4 | 6): Promise<void> {
    for (let i = 0; i < 8; i++) {
      try { await this.#run(ruleArgv('del', f, this.#o.config)) } catch { return }
    }
  }

  async #removeRouting (): Promise<void> {
    if (!this.#routing) return
    this.#routing = false
    for (const f of families(this.#o.config)) {
      await this.#deleteRules(f)
      this.#forget({ kind: 'command', undo: ruleArgv('del', f, this.#o.config) })
      await this.#run(localRouteArgv('del', f, this.#o.config)).catch(() => '')
      this.#forget({ kind: 'command', undo: localRouteArgv('del', f, this.#o.config) })
    }
  }

  async #applyLimits (): Promise<void> {
    const before = parseLimits(await this.#run(['ip', 'mptcp', 'limits', 'show']))
    const want = this.#o.config.subflowsLimit
    if (before === undefined || before.subflows >= want) return
    this.#record({ kind: 'command', undo: limitsArgv(before) })
    this.#limitsBefore = before
    await this.#run(limitsArgv({ subflows: want, addAddrAccepted: before.addAddrAccepted }))
  }

  async #restoreLimits (): Promise<void> {
    const before = this.#limitsBefore
    this.#limitsBefore = undefined
    if (before === undefined) return
    await this.#run(limitsArgv(before))
    this.#forget({ kind: 'command', undo: limitsArgv(before) })
  }

  async #applyEndpoints (): Promise<void> {
    const existing = await this.#listEndpoints()
    for (const e of this.#o.config.joinEndpoints) {
      const same = existing.find((x) => x.address === e.address)
      if (same !== undefined && (same.port !== e.port || !same.signal)) {
        throw new HybridError('HYBRID_ERR_CONFIG_INVALID',
          `transparent.joinEndpoints: ${e.address} already is an MPTCP endpoint (id ${same.id}) with other flags or port; remove it first`)
      }
      if (same === undefined) await this.#addEndpoint(e)
      else this.#endpointIds.push(same.id)
    }
  }

  async #listEndpoints (): Promise<SystemEndpoint[]> {
    return parseEndpoints(await runJsonArray(this.#run, ['ip', '-j', 'mptcp', 'endpoint', 'show']))
  }

  /**
   * Add one signal endpoint and remember its id. EADDRINUSE: the kernel cannot bind its join
   * listener yet — join subflows of a previous run sit in TIME_WAIT on that address and port (the
   * kernel's listener has no SO_REUSEADDR) for up to 60 s after a restart. Start without it (new
   * connections stay single-path meanwhile) and retry every ENDPOINT_RETRY_MS until it works.
   */
  async #addEndpoint (e: JoinEndpoint): Promise<void> {
    if (this.#removed) return
    this.#record({ kind: 'mptcp-endpoint', address: e.address, port: e.port })
    try {
      await this.#run(endpointAddArgv(e))
    } catch (err) {
      const stderr = String((err as HybridError).detail?.['stderr'] ?? '')
      if (!/-98\b|in use/i.test(stderr)) {
        this.#forget({ kind: 'mptcp-endpoint', address: e.address, port: e.port })
        throw err
      }
      this.#o.log.warn({ address: e.address, port: e.port },
        'join endpoint port still in use (TIME_WAIT of a previous run?): retrying; connections stay single-path until then')
      const timer = setTimeout(() => {
        this.#retries.delete(timer)
        this.#addEndpoint(e).catch((err2: unknown) => { this.#o.log.error({ err: err2, address: e.address }, 'join endpoint could not be added') })
      }, ENDPOINT_RETRY_MS)
      timer.unref()
      this.#retries.add(timer)
      return
    }
    const id = (await this.#listEndpoints()).find((x) => x.address === e.address && x.port === e.port)?.id
    if (id !== undefined) this.#endpointIds.push(id)
    this.#o.log.info({ address: e.address, port: e.port, id }, 'join endpoint announced')
  }

  async #removeEndpoints (): Promise<void> {
    for (const t of this.#retries) clearTimeout(t)
    this.#retries.clear()
    const ids = this.#endpointIds
    this.#endpointIds = []
    for (const id of ids) await this.#run(endpointDelArgv(id))
    // Deleted, or never added (an endpoint still being retried): nothing left to undo.
    for (const e of this.#o.config.joinEndpoints) this.#forget({ kind: 'mptcp-endpoint', address: e.address, port: e.port })
  }

  async #applySysctl (): Promise<void> {
    const before = (await this.#run(sysctlReadArgv(JOIN_SYSCTL))).trim()
    this.#sysctlBefore = before
    if (before === '0') return
    this.#record({ kind: 'sysctl', key: JOIN_SYSCTL, before })
    await this.#run(sysctlWriteArgv(JOIN_SYSCTL, '0'))
  }

  async #restoreSysctl (): Promise<void> {
    const before = this.#sysctlBefore
    this.#sysctlBefore = undefined
    if (before === undefined || before === '0') return
    await this.#run(sysctlWriteArgv(JOIN_SYSCTL, before))
    this.#forget({ kind: 'sysctl', key: JOIN_SYSCTL, before })
  }

  async #applyRules (): Promise<void> {
    const c = this.#o.config
    if (c.failMode === 'closed') {
      await this.#run(['nft', '-f', '-'], { input: plainTableBatch(c, this.ruleset) })
      return
    }
    const owner = await NftOwner.start({
      family: 'inet',
      table: c.nftTable,
      ...(this.#o.commandPrefix === undefined ? {} : { commandPrefix: this.#o.commandPrefix })
    })
    this.#owner = owner
    owner.on('exit', () => {
      this.#o.log.error({ table: c.nftTable }, 'nft -i holder exited: the transparent table is gone (intercepted traffic is forwarded natively)')
      this.#o.onHolderExit?.()
    })
    await owner.apply(this.ruleset)
  }

  /** Open mode: end the holder (the table goes with it). Closed mode: the table stays (fail-closed). */
  async #removeRules (): Promise<void> {
    const owner = this.#owner
    this.#owner = undefined
    if (owner !== undefined) {
      await owner.close()
      return
    }
    if (this.#o.config.failMode === 'closed') {
      this.#o.log.info({ table: this.#o.config.nftTable },
        'fail-closed: the transparent table stays installed (intercepted SYNs are reset until the next start)')
    }
  }
}
