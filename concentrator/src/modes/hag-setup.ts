/**
 * Applies and removes the HAG's transparent-mode system state (plan: hag-plan.ts), remembering what
 * it changed so that `remove()` restores exactly that:
 *
 * - the join recipe (../join/join-setup.ts, the mechanism scale-out uses for the other modes): the
 *   C flag (`net.mptcp.allow_join_initial_addr_port` → 0: peers must not join the initial
 *   address/port — the intercepted destination — but the announced join endpoints), `ip mptcp
 *   limits` raised to `subflowsLimit`, one `signal` endpoint with a port per join endpoint;
 * - `ip rule fwmark … lookup T` + `route local default dev lo table T` (v4, v6), re-asserted at start;
 * - the nft table: failMode open → an owner table held by `nft -i` (gone with the daemon, even on
 *   SIGKILL: fail-open); failMode closed → a plain table that stays after stop and crashes (its
 *   reject rule keeps intercepted SYNs refused while no listener is there).
 *
 * Order: routing, endpoints and sysctl first, the nft rules last (nothing is intercepted before the
 * local delivery works); removal in reverse (rules first).
 */
import type { Logger } from '../../../shared/src/log.ts'
import { runCommand, type CommandRunner } from '../../../shared/src/sys/command.ts'
import { NftOwner } from '../../../shared/src/sys/nft-owner.ts'
import type { JournalEntry } from '../../../shared/src/sys/crash-journal.ts'
import type { JournalRecorder } from '../../../shared/src/sys/crash-journal.ts'
import { JoinSetup } from '../join/join-setup.ts'
import { families, hagRuleset, localRouteArgv, plainTableBatch, ruleArgv, type HagPlanInput } from './hag-plan.ts'

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
  readonly #join: JoinSetup
  #owner: NftOwner | undefined
  #routing = false

  constructor (options: HagSetupOptions) {
    this.#o = options
    this.#run = options.run ?? runCommand
    this.#join = new JoinSetup({
      endpoints: options.config.joinEndpoints,
      subflowsLimit: options.config.subflowsLimit,
      key: 'transparent.joinEndpoints',
      log: options.log,
      run: this.#run,
      ...(options.journal === undefined ? {} : { journal: options.journal })
    })
  }

  /** The ruleset text this setup installs. */
  get ruleset (): string { return hagRuleset(this.#o.config, this.#o.config.failMode === 'open') }

  async apply (): Promise<void> {
    try {
      await this.#applyRouting()
      await this.#join.apply()
      await this.#applyRules()
    } catch (err) {
      await this.remove().catch(() => {})
      throw err
    }
  }

  /** Undo what apply() did; every step is attempted, the first failure is rethrown at the end. */
  async remove (): Promise<void> {
    const errors: unknown[] = []
    const step = async (f: () => Promise<void>): Promise<void> => { try { await f() } catch (err) { errors.push(err) } }
    await step(async () => { await this.#removeRules() })
    await step(async () => { await this.#join.remove() })
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
