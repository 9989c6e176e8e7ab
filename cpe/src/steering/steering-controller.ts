/**
 * Steering controller (docs/steering.md): the one owner of the non-primary uplinks' MPTCP backup
 * flags while the agent runs, and of the destination-class routing rules.
 * - Every `priority.sampleMs` it samples what the mode needs (DSL interface byte counters for
 *   priority-based, path-health probe RTTs for smallest-delay), runs the pure decisions
 *   (steering-plan.ts) and writes the flags that differ (backup-flags.ts). Every 2 s it re-reads
 *   the endpoints even when nothing changed (an endpoint re-added by failover or the operator).
 * - Path-health changes re-evaluate at once: the primary down clears every backup flag.
 * - `holdBackup(ms)`: the failback pulse failover asks for after DSL returned.
 * - `setMode()`: the run-time switch (PUT /api/v1/steering).
 * Work runs one step at a time; a failing command is logged and counted, never thrown from a timer.
 */
import { readFile } from 'node:fs/promises'
import { performance } from 'node:perf_hooks'
import { HybridError } from '../../../shared/src/errors.ts'
import type { Logger } from '../../../shared/src/log.ts'
import { runCommand, type CommandRunner } from '../../../shared/src/sys/command.ts'
import { STEERING_MODES, type SteeringConfig, type SteeringMode } from '../config/steering.ts'
import type { CpeMetrics } from '../metrics.ts'
import type { UplinkSource } from '../paths/uplink-observer.ts'
import { endpointFlagWriter, managedFlagWriter, type BackupFlagWriter } from './backup-flags.ts'
import {
  activeClassRules, classMatcher, classRuleArgv, classRuleKey, classRules, delayStep, sourceAddressOf, desiredBackup, initialPriorityState,
  priorityStep,
  unsupportedReason, type ClassRule, type DelayState, type FlagReason, type PriorityState, type SteeringCapabilities
} from './steering-plan.ts'

export interface SteeringHealth {
  isUp: (path: string) => boolean
  rttMs: (path: string) => number | undefined
  on: (event: 'change', fn: () => void) => unknown
  off: (event: 'change', fn: () => void) => unknown
}

export interface SteeringOptions {
  config: SteeringConfig
  /** Uplinks in configuration order; the primary (initial subflow, no endpoint of its own) marked. */
  uplinks: ReadonlyArray<{ name: string, interface: string, table: number, primary: boolean }>
  source: UplinkSource
  /** `multipath.rules: managed` (flags through the uplink manager) and its configured mode. */
  managed: { mode: 'aggregate' | 'backup' } | undefined
  health: SteeringHealth | undefined
  capabilities: SteeringCapabilities
  metrics: CpeMetrics
  log: Logger
  run?: CommandRunner
  readCounters?: (iface: string) => Promise<{ rxBytes: number, txBytes: number }>
  now?: () => number
}

export interface SteeringView {
  mode: SteeringMode | null
  dslLoad: number
  lteActive: boolean
  preferred: string | null
  failbackPulseUntil: string | null
  backup: Record<string, boolean | null>
  classes: Array<{ name: string, access: string, active: boolean }>
}

const readSysCounters = async (iface: string): Promise<{ rxBytes: number, txBytes: number }> => {
  const read = async (k: string): Promise<number> => Number((await readFile(`/sys/class/net/${iface}/statistics/${k}`, 'utf8')).trim())
  return { rxBytes: await read('rx_bytes'), txBytes: await read('tx_bytes') }
}

const FULL_RECONCILE_MS = 2000

/** Throws HYBRID_ERR_STEERING_UNSUPPORTED when `mode` cannot run with this configuration. */
function checkSupported (mode: SteeringMode, c: SteeringCapabilities): void {
  const reason = unsupportedReason(mode, c)
  if (reason !== undefined) throw new HybridError('HYBRID_ERR_STEERING_UNSUPPORTED', reason, { detail: { key: 'steering.mode' } })
}

export class SteeringController {
  readonly #o: SteeringOptions
  readonly #run: CommandRunner
  readonly #now: () => number
  readonly #writer: BackupFlagWriter
  readonly #rules: ClassRule[]
  readonly #classOf: ReturnType<typeof classMatcher>
  #mode: SteeringMode | undefined
  #prio: PriorityState = initialPriorityState()
  #delay: DelayState
  #pulseUntil: number | undefined
  #pulseTimer: NodeJS.Timeout | undefined
  #timer: NodeJS.Timeout | undefined
  #applied = new Map<string, boolean | undefined>()
  #lastFull = -Infinity
  #classApplied: ClassRule[] = []
  #queue: Promise<void> = Promise.resolve()
  #stopped = false
  readonly #onHealth = (): void => { this.#enqueue(async () => this.#reconcile(true)) }

  private constructor (o: SteeringOptions) {
    this.#o = o
    this.#run = o.run ?? runCommand
    this.#now = o.now ?? (() => performance.now())
    this.#mode = o.config.mode
    this.#writer = o.managed === undefined ? endpointFlagWriter(o.source, this.#run) : managedFlagWriter(o.source, o.managed.mode)
    this.#rules = classRules(o.config.classes, new Map(o.uplinks.map((u) => [u.name, u.table])), o.config.classRulePriority)
    this.#classOf = classMatcher(o.config.classes)
    this.#delay = { preferred: this.#primary()?.name ?? '', pendingSince: undefined }
  }

  /** Validate the classes, apply the flags and class rules for the current state, then sample. */
  static async start (o: SteeringOptions): Promise<SteeringController> {
    if (o.config.mode !== undefined) checkSupported(o.config.mode, o.capabilities)
    const c = new SteeringController(o)
    try {
      await c.#reconcile(true)
    } catch (err) {
      await c.stop()
      throw err
    }
    o.health?.on('change', c.#onHealth)
    c.#timer = setInterval(() => { c.#enqueue(async () => c.#tick()) }, o.config.priority.sampleMs).unref()
    c.#setModeGauge()
    return c
  }

  get mode (): SteeringMode | undefined { return this.#mode }

  /**
   * The source address a proxied upstream (socks5, convert) to the concentrator binds to, for a LAN
   * connection to `dst`: the address of `family` (the concentrator's) of the access its class is
   * pinned to, while that access is healthy — the source rule then routes it there. Undefined: no
   * class, the access is down (failover's steering decides), or it has no such address.
   */
  pinnedSource (dst: { address: string, port: number }, family: 4 | 6): string | undefined {
    if (this.#stopped) return undefined
    const c = this.#classOf(dst.address, dst.port)
    if (c === undefined || !this.#healthy(c.access)) return undefined
    const addresses = this.#o.source.uplinks().find((u) => u.name === c.access)?.addresses ?? []
    return sourceAddressOf(addresses, family)
  }

  view (): SteeringView {
    const healthy = (n: string): boolean => this.#healthy(n)
    const active = new Set(activeClassRules(this.#rules, this.#o.config.classes, healthy).map((r) => r.klass))
    return {
      mode: this.#mode ?? null,
      dslLoad: Math.round(this.#prio.load * 1000) / 1000,
      lteActive: this.#prio.lteActive,
      preferred: this.#mode === 'smallest-delay' ? this.#delay.preferred : null,
      failbackPulseUntil: this.#pulseUntil !== undefined && this.#pulseUntil > this.#now()
        ? new Date(Date.now() + this.#pulseUntil - this.#now()).toISOString()
        : null,
      backup: Object.fromEntries(this.#others().map((u) => [u.name, this.#applied.get(u.name) ?? null])),
      classes: this.#o.config.classes.map((k) => ({ name: k.name, access: k.access, active: active.has(k.name) }))
    }
  }

  /** Switch the steering mode at run time; resolves once the flags are written. */
  async setMode (mode: SteeringMode): Promise<void> {
    checkSupported(mode, this.#o.capabilities)
    await this.#serial(async () => {
      if (mode === this.#mode) return
      this.#log('info', { from: this.#mode ?? null, to: mode }, `steering mode ${mode}`)
      this.#mode = mode
      this.#prio = { ...initialPriorityState(), peakDownBps: this.#prio.peakDownBps, peakUpBps: this.#prio.peakUpBps }
      this.#setModeGauge()
      await this.#reconcile(true)
    })
  }

  /** Failback pulse: the non-primary uplinks are backup for `ms`, then the mode's flag is back. */
  async holdBackup (ms: number): Promise<void> {
    if (ms <= 0 || this.#stopped) return
    await this.#serial(async () => {
      this.#pulseUntil = this.#now() + ms
      if (this.#pulseTimer !== undefined) clearTimeout(this.#pulseTimer)
      this.#pulseTimer = setTimeout(() => { this.#enqueue(async () => this.#reconcile(true)) }, ms + 5).unref()
      await this.#reconcile(true)
    })
  }

  /** Stop sampling, remove the class rules, put the flags back as before. Idempotent. */
  async stop (): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    this.#o.health?.off('change', this.#onHealth)
    if (this.#timer !== undefined) clearInterval(this.#timer)
    if (this.#pulseTimer !== undefined) clearTimeout(this.#pulseTimer)
    await this.#queue
    for (const r of this.#classApplied) await this.#attempt(classRuleArgv('del', r))
    this.#classApplied = []
    await this.#writer.restore().catch((err: unknown) => { this.#log('warn', { err }, 'steering cleanup: backup flags not restored') })
  }

  #log (level: 'info' | 'warn', obj: object, msg: string): void { this.#o.log[level](obj, msg) }
  #primary (): SteeringOptions['uplinks'][number] | undefined { return this.#o.uplinks.find((u) => u.primary) }
  #others (): SteeringOptions['uplinks'] { return this.#o.uplinks.filter((u) => !u.primary) }
  #healthy (name: string): boolean { return this.#o.health?.isUp(name) ?? this.#o.source.uplinks().find((u) => u.name === name)?.up ?? false }

  async #attempt (argv: string[]): Promise<boolean> {
    try { await this.#run(argv); return true } catch (err) { this.#log('warn', { err }, 'steering command failed'); return false }
  }

  #enqueue (fn: () => Promise<void>): void {
    this.#queue = this.#queue.then(async () => { if (!this.#stopped) await fn() }).catch((err: unknown) => {
      this.#log('warn', { err },
        'steering step failed')
    })
  }

  /** Run `fn` in the queue and hand its outcome to the caller. */
  async #serial (fn: () => Promise<void>): Promise<void> {
    const p = this.#queue.then(fn)
    this.#queue = p.catch(() => undefined)
    return p
  }

  #setModeGauge (): void {
    for (const m of STEERING_MODES) this.#o.metrics.steeringMode.set({ mode: m }, m === this.#mode ? 1 : 0)
  }

  async #tick (): Promise<void> {
    const now = this.#now()
    const primary = this.#primary()
    if (this.#mode === 'priority-based' && primary !== undefined) {
      const c = await (this.#o.readCounters ?? readSysCounters)(primary.interface).catch(() => undefined)
      if (c !== undefined) this.#prio = priorityStep(this.#prio, { atMs: now, ...c }, this.#o.config.priority)
      this.#o.metrics.steeringDslLoad.set(this.#prio.load)
    }
    if (this.#mode === 'smallest-delay') {
      const rtts = new Map(this.#o.uplinks.filter((u) => this.#healthy(u.name)).map((u) => [u.name, this.#o.health?.rttMs(u.name)]))
      this.#delay = delayStep(this.#delay, rtts, this.#o.config.smallestDelay, now)
    }
    await this.#reconcile(now - this.#lastFull >= FULL_RECONCILE_MS)
  }

  /** Write the flags and class rules that differ from what is wanted; `full` re-reads the system even when nothing changed. */
  async #reconcile (full: boolean): Promise<void> {
    const now = this.#now()
    const primary = this.#primary()
    const inputs = {
      mode: this.#mode,
      primaryHealthy: primary === undefined || this.#healthy(primary.name),
      pulseUntil: this.#pulseUntil,
      now,
      lteActive: this.#prio.lteActive,
      preferred: this.#mode === 'smallest-delay' ? this.#delay.preferred : undefined
    }
    const decided = new Map(this.#others().map((u) => [u.name, desiredBackup(u.name, inputs)]))
    const wanted = new Map([...decided].map(([n, d]) => [n, d.backup]))
    const same = [...wanted].every(([n, b]) => this.#applied.has(n) && this.#applied.get(n) === b)
    if (same && !full) return
    if (full) this.#lastFull = now
    const changes = await this.#writer.apply(wanted)
    this.#applied = wanted
    for (const ch of changes) this.#counted(ch.path, ch.backup, decided.get(ch.path)?.reason ?? 'steering')
    await this.#syncClassRules()
  }

  #counted (path: string, backup: boolean, reason: FlagReason): void {
    this.#o.metrics.steeringBackupChanges.inc({ path, to: backup ? 'backup' : 'nobackup', reason })
    this.#log('info', { path, backup, reason, mode: this.#mode ?? null, dslLoad: Math.round(this.#prio.load * 100) / 100 },
      `${path} ${backup ? 'flagged backup' : 'backup flag cleared'} (${reason})`)
  }

  async #syncClassRules (): Promise<void> {
    const want = activeClassRules(this.#rules, this.#o.config.classes, (n) => this.#healthy(n))
    const wantKeys = new Set(want.map(classRuleKey))
    const haveKeys = new Set(this.#classApplied.map(classRuleKey))
    for (const r of want) if (!haveKeys.has(classRuleKey(r))) await this.#run(classRuleArgv('add', r))
    for (const r of this.#classApplied) if (!wantKeys.has(classRuleKey(r))) await this.#attempt(classRuleArgv('del', r))
    if (want.length !== this.#classApplied.length || want.some((r) => !haveKeys.has(classRuleKey(r)))) {
      this.#log('info', { classes: [...new Set(want.map((r) => r.klass))] }, 'steering class rules updated')
    }
    this.#classApplied = want
  }
}
