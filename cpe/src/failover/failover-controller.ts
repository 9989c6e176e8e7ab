/**
 * Failover and failback on path-health transitions (docs/failover.md). Owns, from start to stop:
 * - the steering rules (failover-plan.ts) that send new unbound connections over the preferred live
 *   access: the primary while healthy, else the first healthy uplink;
 * - the kernel settings of `failover.kernel` (net.mptcp.blackhole_timeout, and the optional
 *   stale_loss_cnt / tcp_rto_max_ms / tcp_retries2 profile), each saved at start and restored at stop;
 * - MPTCP endpoints it adds for a primary access on failback (removed again at stop).
 * On `down`: steer, then withdraw the path from running MPTCP connections (its endpoint removed,
 * or for the primary `ip mptcp endpoint delete id 0 <address>`: the peer gets REMOVE_ADDR over the
 * live subflow). On `up`: steer back, then re-add the path's endpoint so running connections get its
 * subflow again (the in-kernel PM does not re-create closed subflows by itself).
 * Also watches the kernel MIB: MPTcpExtBlackhole rising means the kernel turned MPTCP off for new
 * connections (hybrid_mptcp_blackhole_detected_total, a warning naming the sysctl).
 * Actions run one at a time in arrival order; a failing command is logged and counted, never thrown.
 */
import { readFile } from 'node:fs/promises'
import { performance } from 'node:perf_hooks'
import type { Logger } from '../../../shared/src/log.ts'
import { parseMptcpMib } from '../../../shared/src/metrics/kernel-mib.ts'
import { runCommand, runJsonArray, type CommandRunner } from '../../../shared/src/sys/command.ts'
import { SysctlProfile } from '../../../shared/src/sys/sysctl-profile.ts'
import type { JournalRecorder } from '../../../shared/src/sys/crash-journal.ts'
import type { FailoverConfig } from '../config/failover.ts'
import type { HealthStateName, Transition } from '../health/health-state.ts'
import type { CpeMetrics } from '../metrics.ts'
import type { UplinkSource } from '../paths/uplink-observer.ts'
import { endpointAddArgv, endpointDelArgv, parseEndpoints } from '../uplink/uplink-plan.ts'
import {
  actionsFor, dropIdZeroArgv, failoverTarget, ipBatchArgv, kernelSettings, staleSteeringBatch, steeringBatch, steeringDiff, steeringRuleArgv,
  steeringRules, type FailoverAction, type FailoverUplink, type SteeringRule
} from './failover-plan.ts'

export interface HealthLike {
  isUp: (path: string) => boolean
  on: (event: 'change', fn: (path: string, state: HealthStateName, transition: Transition) => void) => unknown
  off: (event: 'change', fn: (path: string, state: HealthStateName, transition: Transition) => void) => unknown
}

export interface FailoverOptions {
  config: FailoverConfig
  /** Uplinks in configuration order with their routing table; the primary marked. */
  uplinks: ReadonlyArray<{ name: string, table: number, primary: boolean }>
  source: UplinkSource
  /** `multipath.rules: managed`: non-primary endpoints are the uplink manager's (setAdmin). */
  managed: boolean
  /** Endpoints added on failback get `fullmesh` (transparent mode). */
  fullmesh: boolean
  health: HealthLike
  metrics: CpeMetrics
  log: Logger
  run?: CommandRunner
  /** The kernel profile's changes are recorded before they are made (crash-journal.ts). */
  journal?: JournalRecorder
  readMib?: () => Promise<string>
  mibPollMs?: number
  /** Monotonic ms, the clock of the health transitions (default performance.now). */
  now?: () => number
  /**
   * Called once per transition when new connects are steered, before the path is withdrawn (the
   * withdraw resets the path's SYN_SENT connects): pending connects re-dial here (pending-dials.ts).
   */
  onSteered?: (path: string, state: HealthStateName) => void
}

export interface FailoverView { steeredTo: string | null, blackholeDetections: number, lastBlackholeAt: string | null }

const readNetstat = async (): Promise<string> => readFile('/proc/net/netstat', 'utf8')

export class FailoverController {
  readonly #o: FailoverOptions
  readonly #run: CommandRunner
  readonly #now: () => number
  #rules: SteeringRule[] = []
  #steeredTo: string | undefined
  readonly #kernel: SysctlProfile
  /** Endpoints this controller added, by address. */
  readonly #ownEndpoints = new Map<string, number>()
  /** Uplinks this controller took down in the uplink manager. */
  readonly #adminTaken = new Set<string>()
  #queue: Promise<void> = Promise.resolve()
  #mibTimer: NodeJS.Timeout | undefined
  #mibLast: Map<string, number> | undefined
  #blackholes = 0
  #lastBlackholeAt: number | undefined
  #stopped = false
  #failbackPulse: ((ms: number) => Promise<void>) | undefined
  readonly #onChange = (path: string, state: HealthStateName, t: Transition): void => { this.#enqueue(async () => this.#transition(path, state, t)) }

  private constructor (o: FailoverOptions) {
    this.#o = o
    this.#run = o.run ?? runCommand
    this.#now = o.now ?? (() => performance.now())
    this.#kernel = new SysctlProfile({
      run: this.#run,
      ...(o.journal === undefined ? {} : { journal: o.journal }),
      onChange: (c) => {
        if (c.phase === 'apply') {
          this.#log('info', { sysctl: c.key, from: c.from, to: c.to },
          `kernel setting ${c.key}=${c.to} (was ${c.from}; restored at stop)`)
        }
      }
    })
  }

  /** Apply the kernel settings and the steering for the current health; on failure everything set is undone. */
  static async start (o: FailoverOptions): Promise<FailoverController> {
    const c = new FailoverController(o)
    try {
      await c.#kernel.apply(kernelSettings(o.config.kernel))
      await c.#removeStaleRules()
      await c.#steer(actionsFor({ path: '', to: 'up' }, c.#view(), undefined).find((a) => a.kind === 'steer'))
    } catch (err) {
      await c.stop()
      throw err
    }
    o.health.on('change', c.#onChange)
    await c.#pollMib()
    c.#mibTimer = setInterval(() => { c.#pollMib().catch(() => {}) }, o.mibPollMs ?? 1000).unref()
    return c
  }

  /**
   * The failback pulse (the steering controller, owner of the backup flags): after the primary's
   * subflow is re-created, the other uplinks are flagged backup for `failover.failbackBackupMs`,
   * then get the steering mode's flag again, so long-lived flows move back to the primary (#581).
   */
  useFailbackPulse (pulse: (ms: number) => Promise<void>): void { this.#failbackPulse = pulse }

  view (): FailoverView {
    return {
      steeredTo: this.#steeredTo ?? null,
      blackholeDetections: this.#blackholes,
      lastBlackholeAt: this.#lastBlackholeAt === undefined ? null : new Date(this.#lastBlackholeAt).toISOString()
    }
  }

  /** Remove the steering rules and own endpoints, give taken uplinks back, restore the kernel settings. Idempotent. */
  async stop (): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    this.#o.health.off('change', this.#onChange)
    if (this.#mibTimer !== undefined) clearInterval(this.#mibTimer)
    await this.#queue
    await this.#applyRules([], this.#rules).catch((err: unknown) => { this.#log('warn', { err }, 'failover cleanup: steering rules not removed') })
    this.#rules = []
    this.#steeredTo = undefined
    for (const id of this.#ownEndpoints.values()) await this.#attempt(endpointDelArgv(id))
    this.#ownEndpoints.clear()
    for (const name of this.#adminTaken) {
      await this.#o.source.setAdmin(name,
        'up').catch((err: unknown) => { this.#log('warn', { err, path: name }, 'failover cleanup: uplink not given back') })
    }
    this.#adminTaken.clear()
    await this.#kernel.restore().catch((err: unknown) => { this.#log('warn', { err }, 'failover cleanup: a kernel setting was not restored') })
  }

  #log (level: 'info' | 'warn', obj: object, msg: string): void { this.#o.log[level](obj, msg) }

  async #attempt (argv: string[]): Promise<boolean> {
    try { await this.#run(argv); return true } catch (err) { this.#log('warn', { err }, 'failover command failed'); return false }
  }

  #enqueue (fn: () => Promise<void>): void {
    this.#queue = this.#queue.then(async () => { if (!this.#stopped) await fn() }).catch((err: unknown) => {
      this.#log('warn', { err },
        'failover action failed')
    })
  }

  #view (): FailoverUplink[] {
    return this.#o.uplinks.map((u) => ({ ...u, healthy: this.#o.health.isUp(u.name) }))
  }

  async #transition (path: string, state: HealthStateName, t: Transition): Promise<void> {
    const after = this.#view()
    const actions = actionsFor({ path, to: state }, after, this.#steeredTo)
    if (state === 'down') {
      const to = failoverTarget(path, after)
      if (to !== undefined) this.#o.metrics.pathFailovers.inc({ from_path: path, to_path: to })
    }
    let told = false
    const tell = (): void => { if (!told) { told = true; this.#o.onSteered?.(path, state) } }
    for (const a of actions) { if (a.kind !== 'steer') tell(); await this.#act(a) }
    tell()
    if (await this.#pulse(path, actions)) actions.push({ kind: 'pulse', path })
    const seconds = Math.max(0, (this.#now() - t.at) / 1000)
    ;(state === 'down' ? this.#o.metrics.failoverDuration : this.#o.metrics.failbackDuration).observe({ path }, seconds)
    this.#log('info', { path, to: state, reason: t.reason, actions: actions.map((a) => a.kind), ms: Math.round(seconds * 1000) },
      `${state === 'down' ? 'failover' : 'failback'} of ${path} done: ${actions.map((a) => a.kind).join(', ') || 'nothing to do'}`)
  }

  /** After the primary's subflow is re-created: LTE backup for failover.failbackBackupMs (docs/failover.md, Failback). */
  async #pulse (path: string, actions: readonly FailoverAction[]): Promise<boolean> {
    const ms = this.#o.config.failbackBackupMs
    if (this.#failbackPulse === undefined || ms <= 0 || this.#o.uplinks.find((u) => u.name === path)?.primary !== true) return false
    if (!actions.some((a) => a.kind === 'restore')) return false
    try { await this.#failbackPulse(ms) } catch (err) { this.#log('warn', { err, path }, 'failback pulse failed'); return false }
    return true
  }

  async #act (a: FailoverAction): Promise<void> {
    if (a.kind === 'steer') await this.#steer(a)
    else if (a.kind === 'withdraw') await this.#withdraw(a.path)
    else if (a.kind === 'restore') await this.#restore(a.path)
  }

  async #steer (a: Extract<FailoverAction, { kind: 'steer' }> | undefined): Promise<void> {
    if (a === undefined) return
    const next = a.table === undefined ? [] : steeringRules(a.table, this.#o.config.rulePriority)
    const { add, del } = steeringDiff(this.#rules, next)
    await this.#applyRules(add, del)
    this.#rules = next
    const from = this.#steeredTo
    this.#steeredTo = a.to
    for (const u of this.#o.uplinks) this.#o.metrics.steering.set({ path: u.name }, u.name === a.to ? 1 : 0)
    this.#log('info', { from: from ?? null, to: a.to ?? null, table: a.table ?? null },
      a.to === undefined ? 'new connections: no live access, steering rules removed (main table decides)' : `new connections steered to ${a.to} (table ${String(a.table)})`)
  }

  /**
   * One `ip -batch` per family, both at once (failover-plan.ts: steeringBatch). Should a batch fail,
   * the rules are applied one by one, so the failing command is named (and an add failure throws).
   */
  async #applyRules (add: readonly SteeringRule[], del: readonly SteeringRule[]): Promise<void> {
    const batches = ([4, 6] as const).map((f) => ({ f, lines: steeringBatch(f, add, del) })).filter((b) => b.lines.length > 0)
    const results = await Promise.allSettled(batches.map(async (b) => this.#run(ipBatchArgv(b.f, false), { input: b.lines.join('\n') + '\n' })))
    if (results.every((r) => r.status === 'fulfilled')) return
    this.#log('warn', { err: results.find((r) => r.status === 'rejected')?.reason }, 'steering batch failed; applying the rules one by one')
    for (const r of add) await this.#attempt(steeringRuleArgv('del', r)) // an add that did land in the batch
    for (const r of add) await this.#run(steeringRuleArgv('add', r))
    for (const r of [...del].sort((x, y) => y.priority - x.priority)) await this.#attempt(steeringRuleArgv('del', r))
  }

  /** Rules at the steering priorities left by an agent that was killed (they are ours by configuration). */
  async #removeStaleRules (): Promise<void> {
    await Promise.all(([4, 6] as const).map(async (f) => {
      await this.#run(ipBatchArgv(f, true),
        { input: staleSteeringBatch(this.#o.config.rulePriority).join('\n') + '\n' }).catch(() => { /* -force: errors for rules not there */ })
    }))
  }

  #addresses (path: string): { addresses: string[], iface: string } {
    const s = this.#o.source.uplinks().find((u) => u.name === path)
    return { addresses: s?.addresses ?? [], iface: s?.interface ?? '' }
  }

  async #withdraw (path: string): Promise<void> {
    const spec = this.#o.uplinks.find((u) => u.name === path)
    if (this.#o.managed && spec?.primary === false) {
      await this.#o.source.setAdmin(path, 'down')
      this.#adminTaken.add(path)
      this.#log('info', { path }, `path ${path} withdrawn from running MPTCP connections (its endpoint removed)`)
      return
    }
    for (const address of this.#addresses(path).addresses) {
      const id = this.#ownEndpoints.get(address)
      if (id !== undefined && await this.#attempt(endpointDelArgv(id))) this.#ownEndpoints.delete(address)
      if (spec?.primary === true) await this.#attempt(dropIdZeroArgv(address))
    }
    this.#log('info', { path }, `path ${path} withdrawn from running MPTCP connections (REMOVE_ADDR for its addresses)`)
  }

  async #restore (path: string): Promise<void> {
    if (this.#adminTaken.delete(path)) {
      await this.#o.source.setAdmin(path, 'up')
      this.#o.metrics.subflowRecreations.inc({ path })
      this.#log('info', { path }, `path ${path} back in running MPTCP connections (its endpoint re-added)`)
      return
    }
    const spec = this.#o.uplinks.find((u) => u.name === path)
    if (spec?.primary !== true) return // an operator's endpoint (rules off): left alone
    const { addresses, iface } = this.#addresses(path)
    const present = new Set(parseEndpoints(await runJsonArray(this.#run, ['ip', '-j', 'mptcp', 'endpoint', 'show'])).map((e) => e.address))
    let added = 0
    for (const address of addresses) {
      if (present.has(address) || this.#ownEndpoints.has(address)) continue
      await this.#run(endpointAddArgv({ address, dev: iface, backup: false, ...(this.#o.fullmesh ? { fullmesh: true } : {}) }))
      this.#ownEndpoints.set(address, -1)
      added++
    }
    if (added === 0) return
    const eps = parseEndpoints(await runJsonArray(this.#run, ['ip', '-j', 'mptcp', 'endpoint', 'show']))
    for (const e of eps) if (this.#ownEndpoints.get(e.address) === -1) this.#ownEndpoints.set(e.address, e.id)
    this.#o.metrics.subflowRecreations.inc({ path })
    this.#log('info', { path, addresses }, `path ${path} back in running MPTCP connections (subflow endpoint added; removed at stop)`)
  }

  async #pollMib (): Promise<void> {
    let mib: Map<string, number>
    try { mib = parseMptcpMib(await (this.#o.readMib ?? readNetstat)()) } catch { return }
    const last = this.#mibLast
    this.#mibLast = mib
    if (last === undefined) return
    const delta = (name: string): number => Math.max(0, (mib.get(name) ?? 0) - (last.get(name) ?? 0))
    const blackholes = delta('Blackhole')
    if (blackholes > 0) {
      this.#blackholes += blackholes
      this.#lastBlackholeAt = Date.now()
      this.#o.metrics.blackholeDetected.inc(blackholes)
      this.#log('warn', { sysctl: 'net.mptcp.blackhole_timeout', count: blackholes },
        'the kernel detected an MPTCP blackhole and disables MPTCP for new connections for net.mptcp.blackhole_timeout seconds (failover.kernel.blackholeTimeout 0 turns this off)')
    }
    const disabled = delta('MPCapableSYNTXDisabled')
    if (disabled > 0) {
      this.#log('warn', { sysctl: 'net.mptcp.blackhole_timeout', count: disabled },
        'new connections sent without MPTCP: the kernel has MPTCP disabled after a blackhole (net.mptcp.blackhole_timeout)')
    }
  }
}
