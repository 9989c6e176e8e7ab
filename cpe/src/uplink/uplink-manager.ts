/**
 * Uplink manager: keeps source routing, MPTCP endpoints and limits in step with the uplinks'
 * addresses (docs/cpe-control-plane.md). A reconcile pass reads the system (`ip -j addr`, routes,
 * rules, endpoints), computes what should exist (uplink-plan.ts) and changes only the difference.
 * It runs at start, every `pollIntervalMs`, after `setMode()` and on `refresh()`; passes never overlap.
 *
 * Ownership: it records every rule, route and endpoint it created and removes exactly those at stop
 * (and whatever of them stops being wanted, e.g. after an address change). Objects that already
 * existed are left alone (an identical foreign rule or endpoint is not adopted). MPTCP limits and
 * rp_filter values are restored to what they were at start. Every command failure is reported with
 * the full command and its stderr (HYBRID_ERR_CMD_FAILED).
 */
import { EventEmitter } from 'node:events'
import type { Logger } from '../../../shared/src/log.ts'
import { HybridError } from '../../../shared/src/errors.ts'
import { runCommand, runJsonArray, type CommandRunner } from '../../../shared/src/sys/command.ts'
import type { JournalEntry, JournalRecorder } from '../../../shared/src/sys/crash-journal.ts'
import type { MultipathConfig, UplinkConfig } from '../config/uplinks.ts'
import {
  desiredState, endpointAddArgv, endpointChangeArgv, endpointDelArgv, limitsArgv, parseEndpoints, parseLimits, parseLinks,
  parseMainGateways, parseRules, parseTableDefaults, routeArgv, routeKey, ruleArgv, ruleKey, uplinkSpecs,
  type EndpointObj, type MptcpLimits, type MultipathMode, type Observed, type ObservedLink, type RouteObj, type RuleObj, type SystemEndpoint,
  type UplinkSpec
} from './uplink-plan.ts'

export interface UplinkState {
  name: string
  role: UplinkConfig['role']
  interface: string
  table: number
  addresses: string[]
  /** Carrier (UP and LOWER_UP). */
  up: boolean
  /** First MPTCP endpoint id of this uplink (undefined for the primary uplink). */
  endpointId: number | undefined
  endpointIds: number[]
  mode: MultipathMode
  /** `down`: set by `setAdmin`; the uplink gets no MPTCP endpoint, so no subflow uses it. */
  admin: 'up' | 'down'
}

/** One uplink's published state from its spec, the observed link and the endpoint ids on its addresses (manager and observer). */
export function uplinkState (
  s: UplinkSpec, link: ObservedLink | undefined, endpointIdsOf: (addresses: string[]) => number[], mode: MultipathMode, admin: 'up' | 'down'
): UplinkState {
  const addresses = link?.addresses.map((a) => a.address) ?? []
  const endpointIds = endpointIdsOf(addresses)
  const up = link?.up ?? false
  return { name: s.name, role: s.role, interface: s.interface, table: s.table, addresses, up, endpointId: endpointIds[0], endpointIds, mode, admin }
}

export interface UplinkManagerOptions {
  uplinks: readonly UplinkConfig[]
  multipath: MultipathConfig
  log: Logger
  run?: CommandRunner
  /** Every rule, route, endpoint, limit and rp_filter change is recorded before it is made (crash-journal.ts). */
  journal?: JournalRecorder
}

interface Snapshot { observed: Observed, rules: RuleObj[], routes: RouteObj[], endpoints: SystemEndpoint[] }

const rpFilterKey = (iface: string): string => `net/ipv4/conf/${iface}/rp_filter`

export class UplinkManager extends EventEmitter<{ change: [UplinkState[]], problem: [Error] }> {
  #specs: UplinkSpec[]
  #mp: MultipathConfig
  #log: Logger
  #run: CommandRunner
  #mode: MultipathMode
  #rules = new Map<string, RuleObj>()
  #routes = new Map<string, RouteObj>()
  /** Owned endpoints by address. */
  #endpoints = new Map<string, EndpointObj & { id: number }>()
  #savedLimits: MptcpLimits | undefined
  #savedRpFilter = new Map<string, string>()
  #foreignWarned = new Set<string>()
  readonly #journal: JournalRecorder | undefined
  #states: UplinkState[] = []
  #timer: NodeJS.Timeout | undefined
  #pass: Promise<void> = Promise.resolve()
  #stopped = false
  readonly #adminDown = new Set<string>()
  /** Last main-table gateway seen per interface: the kernel deletes it on carrier loss, the uplink's table default is rebuilt from it. */
  readonly #gatewayMemory = new Map<string, { v4?: string, v6?: string }>()

  private constructor (opts: UplinkManagerOptions) {
    super()
    this.#specs = uplinkSpecs(opts.uplinks, opts.multipath)
    this.#mp = opts.multipath
    this.#mode = opts.multipath.mode
    this.#log = opts.log
    this.#run = opts.run ?? runCommand
    this.#journal = opts.journal
  }

  #record (e: JournalEntry): void { this.#journal?.record(e) }
  #forget (e: JournalEntry): void { this.#journal?.forget(e) }

  /** Set limits and rp_filter, reconcile once, then poll. On failure everything added is removed. */
  static async start (opts: UplinkManagerOptions): Promise<UplinkManager> {
    const m = new UplinkManager(opts)
    try {
      await m.#setLimits()
      await m.refresh()
    } catch (err) {
      await m.stop()
      throw err
    }
    m.#timer = setInterval(() => { m.refresh().catch(() => { /* reported as 'problem' */ }) }, opts.multipath.pollIntervalMs)
    m.#timer.unref()
    return m
  }

  get mode (): MultipathMode { return this.#mode }

  /** Current state of every configured uplink (for the daemon and metrics). */
  uplinks (): UplinkState[] { return this.#states.map((s) => ({ ...s, addresses: [...s.addresses], endpointIds: [...s.endpointIds] })) }

  /** Switch between aggregate and backup at run time (endpoint flags changed in place). */
  async setMode (mode: MultipathMode): Promise<void> {
    this.#mode = mode
    await this.refresh()
  }

  /**
   * Administratively take an uplink out of (or back into) use: its MPTCP endpoints are removed (or
   * re-added) by the next pass, which runs now. The primary uplink has no endpoint (its address
   * carries the initial subflow through the main routing table) and is refused (HYBRID_ERR_UPLINK_CONFIG).
   */
  async setAdmin (name: string, admin: 'up' | 'down'): Promise<void> {
    const spec = this.#specs.find((s) => s.name === name)
    if (spec === undefined) throw new HybridError('HYBRID_ERR_UPLINK_CONFIG', `no uplink named ${name}`)
    if (!spec.endpoints && admin === 'down') {
      throw new HybridError('HYBRID_ERR_UPLINK_CONFIG',
      `uplink ${name} is the primary uplink (initial subflow via the main routing table); it cannot be taken down administratively`)
    }
    if (admin === 'down') this.#adminDown.add(name)
    else this.#adminDown.delete(name)
    await this.refresh()
  }

  /** One reconcile pass now (queued behind a running one). Rejects with the failing command. */
  async refresh (): Promise<void> {
    const pass = this.#pass.then(async () => {
      if (this.#stopped) return
      try {
        await this.#reconcile()
      } catch (err) {
        this.#log.warn({ err }, 'uplink reconcile failed')
        this.emit('problem', err as Error)
        throw err
      }
    })
    this.#pass = pass.catch(() => undefined)
    return pass
  }

  /** Remove everything this manager added, restore limits and rp_filter. Idempotent. */
  async stop (): Promise<void> {
    this.#stopped = true
    if (this.#timer !== undefined) clearInterval(this.#timer)
    await this.#pass
    const failures: unknown[] = []
    // An undo that failed stays in the journal: the next start tries it again.
    const attempt = async (argv: string[], entry: JournalEntry): Promise<void> => {
      try { await this.#run(argv); this.#forget(entry) } catch (err) { failures.push(err) }
    }
    for (const e of this.#endpoints.values()) await attempt(endpointDelArgv(e.id), { kind: 'mptcp-endpoint', address: e.address })
    for (const r of this.#rules.values()) await attempt(ruleArgv('del', r), { kind: 'command', undo: ruleArgv('del', r) })
    for (const r of this.#routes.values()) await attempt(routeArgv('del', r), { kind: 'command', undo: routeArgv('del', r) })
    this.#endpoints.clear(); this.#rules.clear(); this.#routes.clear()
    if (this.#savedLimits !== undefined) await attempt(limitsArgv(this.#savedLimits), { kind: 'command', undo: limitsArgv(this.#savedLimits) })
    this.#savedLimits = undefined
    for (const [iface, value] of this.#savedRpFilter) {
      await attempt(['sysctl', '-qw', `${rpFilterKey(iface)}=${value}`],
        { kind: 'sysctl', key: rpFilterKey(iface), before: value })
    }
    this.#savedRpFilter.clear()
    for (const err of failures) this.#log.warn({ err }, 'uplink cleanup step failed')
  }

  async #setLimits (): Promise<void> {
    const saved = parseLimits(await this.#run(['ip', 'mptcp', 'limits', 'show']))
    if (saved !== undefined) this.#record({ kind: 'command', undo: limitsArgv(saved) })
    await this.#run(limitsArgv({ subflows: this.#mp.subflows, addAddrAccepted: this.#mp.addAddrAccepted }))
    this.#savedLimits = saved
  }

  async #looseRpFilter (present: ReadonlySet<string>): Promise<void> {
    if (!this.#mp.looseRpFilter) return
    for (const s of this.#specs) {
      if (!present.has(s.interface) || this.#savedRpFilter.has(s.interface)) continue
      const key = rpFilterKey(s.interface)
      const before = (await this.#run(['sysctl', '-n', key])).trim()
      if (before !== '2') {
        this.#record({ kind: 'sysctl', key, before })
        await this.#run(['sysctl', '-qw', `${key}=2`])
      }
      this.#savedRpFilter.set(s.interface, before)
    }
  }

  async #observe (): Promise<Snapshot> {
    const j = async (argv: string[]): Promise<Array<Record<string, unknown>>> => runJsonArray(this.#run, argv)
    const [addrs, r4, r6, rules4, rules6, eps] = [
      await j(['ip', '-j', 'addr', 'show']), await j(['ip', '-4', '-j', 'route', 'show', 'table', 'all']),
      await j(['ip', '-6', '-j', 'route', 'show', 'table', 'all']), await j(['ip', '-4', '-j', 'rule', 'show']),
      await j(['ip', '-6', '-j', 'rule', 'show']), await j(['ip', '-j', 'mptcp', 'endpoint', 'show'])
    ]
    return {
      observed: { links: parseLinks(addrs), gateways: parseMainGateways(r4, r6) },
      rules: [...parseRules(rules4, 4), ...parseRules(rules6, 6)],
      routes: [...parseTableDefaults(r4, 4), ...parseTableDefaults(r6, 6)],
      endpoints: parseEndpoints(eps)
    }
  }

  async #reconcile (): Promise<void> {
    const snap = await this.#observe()
    snap.observed = { ...snap.observed, gateways: this.#rememberGateways(snap.observed.gateways) }
    await this.#looseRpFilter(new Set(snap.observed.links.keys()))
    const specs = this.#specs.map((s) => this.#adminDown.has(s.name) ? { ...s, endpoints: false } : s)
    const want = desiredState(specs, snap.observed, this.#mode, this.#mp.rulePriority, this.#mp.fullmesh)
    await this.#syncRoutes(want.routes, snap.routes)
    await this.#syncRules(want.rules, snap.rules)
    const changedEndpoints = await this.#syncEndpoints(want.endpoints, snap.endpoints)
    const endpoints = changedEndpoints ? parseEndpoints(await runJsonArray(this.#run, ['ip', '-j', 'mptcp', 'endpoint', 'show'])) : snap.endpoints
    this.#adoptEndpointIds(want.endpoints, endpoints)
    this.#publish(snap.observed)
  }

  #rememberGateways (seen: Observed['gateways']): Observed['gateways'] {
    for (const [dev, gw] of seen) this.#gatewayMemory.set(dev, { ...this.#gatewayMemory.get(dev), ...gw })
    return new Map(this.#gatewayMemory)
  }

  async #syncRoutes (want: RouteObj[], present: RouteObj[]): Promise<void> {
    const wantKeys = new Set(want.map(routeKey))
    for (const [key, r] of this.#routes) {
      if (wantKeys.has(key)) continue
      await this.#run(routeArgv('del', r)).catch((err: unknown) => { this.#log.debug({ err }, 'owned route already gone') })
      this.#routes.delete(key)
      this.#forget({ kind: 'command', undo: routeArgv('del', r) })
    }
    const presentKeys = new Set(present.map(routeKey))
    for (const r of want) {
      const key = routeKey(r)
      if (presentKeys.has(key)) continue
      const replaced = present.find((p) => p.family === r.family && p.table === r.table)
      if (replaced !== undefined && ![...this.#routes.values()].some((o) => routeKey(o) === routeKey(replaced))) {
        this.#log.warn({ table: r.table, family: r.family }, 'uplink table already has a foreign default route; replacing it')
      }
      this.#record({ kind: 'command', undo: routeArgv('del', r) })
      await this.#run(routeArgv('replace', r))
      this.#routes.set(key, r)
      this.#log.info({ route: routeArgv('replace', r).slice(2).join(' ') }, 'uplink route set')
    }
  }

  async #syncRules (want: RuleObj[], present: RuleObj[]): Promise<void> {
    const wantKeys = new Set(want.map(ruleKey))
    for (const [key, r] of this.#rules) {
      if (wantKeys.has(key)) continue
      await this.#run(ruleArgv('del', r)).catch((err: unknown) => { this.#log.debug({ err }, 'owned rule already gone') })
      this.#rules.delete(key)
      this.#forget({ kind: 'command', undo: ruleArgv('del', r) })
    }
    const presentKeys = new Set(present.map(ruleKey))
    for (const r of want) {
      const key = ruleKey(r)
      if (presentKeys.has(key)) continue // ours and intact, or foreign and identical (not adopted)
      this.#record({ kind: 'command', undo: ruleArgv('del', r) })
      await this.#run(ruleArgv('add', r))
      this.#rules.set(key, r)
      this.#log.info({ rule: ruleArgv('add', r).slice(2).join(' ') }, 'uplink rule added')
    }
  }

  /** Returns whether endpoints were added (their ids must be re-read). */
  async #syncEndpoints (want: EndpointObj[], present: SystemEndpoint[]): Promise<boolean> {
    const byAddress = new Map(present.map((e) => [e.address, e]))
    const wanted = new Map(want.map((e) => [e.address, e]))
    for (const [address, owned] of this.#endpoints) {
      if (wanted.has(address) && byAddress.get(address)?.id === owned.id) continue
      if (byAddress.get(address)?.id === owned.id) await this.#run(endpointDelArgv(owned.id))
      this.#endpoints.delete(address)
      this.#forget({ kind: 'mptcp-endpoint', address })
    }
    let added = false
    for (const e of want) {
      const sys = byAddress.get(e.address)
      const owned = this.#endpoints.get(e.address)
      if (sys === undefined) {
        this.#record({ kind: 'mptcp-endpoint', address: e.address })
        await this.#run(endpointAddArgv(e))
        this.#endpoints.set(e.address, { ...e, id: -1 })
        added = true
        this.#log.info({ endpoint: endpointAddArgv(e).slice(3).join(' ') }, 'MPTCP endpoint added')
      } else if (owned !== undefined && sys.backup !== e.backup) {
        await this.#run(endpointChangeArgv(sys.id, e.backup, sys.fullmesh))
        owned.backup = e.backup
        this.#log.info({ id: sys.id, backup: e.backup }, 'MPTCP endpoint flag changed')
      } else if (owned === undefined && !this.#foreignWarned.has(e.address)) {
        this.#foreignWarned.add(e.address)
        this.#log.warn({ address: e.address, id: sys.id }, 'a foreign MPTCP endpoint exists for this address; left alone')
      }
    }
    return added
  }

  #adoptEndpointIds (want: EndpointObj[], present: SystemEndpoint[]): void {
    for (const e of want) {
      const owned = this.#endpoints.get(e.address)
      const sys = present.find((p) => p.address === e.address)
      if (owned !== undefined && sys !== undefined) owned.id = sys.id
    }
  }

  #publish (observed: Observed): void {
    const ownedIds = (addresses: string[]): number[] =>
      addresses.flatMap((a) => { const e = this.#endpoints.get(a); return e === undefined || e.id < 0 ? [] : [e.id] })
    const states = this.#specs.map((s) => uplinkState(s, observed.links.get(s.interface), ownedIds, this.#mode, this.#adminDown.has(s.name) ? 'down' : 'up'))
    const changed = JSON.stringify(states) !== JSON.stringify(this.#states)
    this.#states = states
    if (changed) this.emit('change', this.uplinks())
  }
}
