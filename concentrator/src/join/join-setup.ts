/**
 * The stateless MPTCP join recipe (docs/scale-out.md, docs/transparent.md): make MP_JOINs reach
 * this instance directly instead of the address an L4 balancer (or, in transparent mode, the
 * intercepted destination) spreads initial subflows over.
 *
 * - sysctl `net.mptcp.allow_join_initial_addr_port` → 0: the C flag in every MP_CAPABLE this
 *   network namespace answers ("do not join my initial address and port"); the previous value is
 *   restored at remove;
 * - `ip mptcp limits`: subflows raised to `subflowsLimit` if lower; restored at remove;
 * - one `signal` endpoint (ADD_ADDR) with a port per join endpoint: the instance's own unicast
 *   address and join port (an identical existing endpoint is adopted, a conflicting one refused).
 *
 * Used for the explicit modes by the concentrator (`join:`) and for transparent mode by hag-setup.ts
 * (`transparent.joinEndpoints`): one mechanism. Every change is journalled before it is made
 * (crash-journal.ts), so a SIGKILL is undone at the next start.
 * Order: limits, endpoints, sysctl; removal in reverse.
 */
import { HybridError } from '../../../shared/src/errors.ts'
import type { Logger } from '../../../shared/src/log.ts'
import { runJsonArray, type CommandRunner } from '../../../shared/src/sys/command.ts'
import type { JournalEntry, JournalRecorder } from '../../../shared/src/sys/crash-journal.ts'
import {
  endpointAddArgv, endpointDelArgv, JOIN_SYSCTL, limitsArgv, parseEndpoints, parseLimits, sysctlReadArgv, sysctlWriteArgv,
  type JoinEndpoint, type MptcpLimits, type SystemEndpoint
} from '../modes/hag-plan.ts'

const ENDPOINT_RETRY_MS = 2000

export interface JoinSetupOptions {
  readonly endpoints: readonly JoinEndpoint[]
  readonly subflowsLimit: number
  /** Configuration key named in errors (`join.endpoints`, `transparent.joinEndpoints`). */
  readonly key: string
  readonly log: Logger
  readonly run: CommandRunner
  readonly journal?: JournalRecorder
}

export class JoinSetup {
  readonly #o: JoinSetupOptions
  readonly #run: CommandRunner
  #sysctlBefore: string | undefined
  #limitsBefore: MptcpLimits | undefined
  #endpointIds: number[] = []
  readonly #retries = new Set<NodeJS.Timeout>()
  #removed = false

  constructor (options: JoinSetupOptions) {
    this.#o = options
    this.#run = options.run
  }

  /** Limits, endpoints, C flag. On a failure what was done is undone and the error rethrown. */
  async apply (): Promise<void> {
    this.#removed = false
    try {
      await this.#applyLimits()
      await this.#applyEndpoints()
      await this.#applySysctl()
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
    await step(async () => { await this.#restoreSysctl() })
    await step(async () => { await this.#removeEndpoints() })
    await step(async () => { await this.#restoreLimits() })
    if (errors.length > 0) throw errors[0]
  }

  #record (e: JournalEntry): void { this.#o.journal?.record(e) }
  #forget (e: JournalEntry): void { this.#o.journal?.forget(e) }

  async #applyLimits (): Promise<void> {
    const before = parseLimits(await this.#run(['ip', 'mptcp', 'limits', 'show']))
    const want = this.#o.subflowsLimit
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
    for (const e of this.#o.endpoints) {
      const same = existing.find((x) => x.address === e.address)
      if (same !== undefined && (same.port !== e.port || !same.signal)) {
        throw new HybridError('HYBRID_ERR_CONFIG_INVALID', `${this.#o.key}: ${e.address} already is an MPTCP endpoint (id ${same.id}) with other flags or port; remove it first`)
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
      this.#o.log.warn({ address: e.address, port: e.port }, 'join endpoint port still in use (TIME_WAIT of a previous run?): retrying; connections stay single-path until then')
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
    for (const e of this.#o.endpoints) this.#forget({ kind: 'mptcp-endpoint', address: e.address, port: e.port })
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
}
