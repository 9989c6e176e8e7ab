/**
 * Builds the TR-348 hybrid-access testbed in network namespaces (the `npm run lab` demo and every
 * end-to-end test use it):
 *
 * ```
 *  lan ── cpe ══ dsl0 ── [dsl router: delay line + tbf] ── dsl0 ══ hag ── inet
 *             ══ lte0 ── [lte router: delay line + tbf] ── lte0 ══  (service address on lo)
 * ```
 * Nothing lives in the root namespace: veths are created straight into their namespaces, so
 * deleting the namespaces (teardown, `npm run lab:down`) removes everything. Addresses:
 * addresses.ts. Routing: cpe's default goes via DSL, per-uplink source tables 100/200 carry each
 * subflow out of its own access; the access routers route the internet via hag and the LAN back
 * to cpe; hag routes the LAN and both cpe-side prefixes back via the right access (plain routing
 * works end to end without NAT: transparent mode and fail-open need it).
 */
import type { ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { createNamespace, netns, removeNamespaces, run, type Netns } from './netns.ts'
import { ACCESS_NAMES, ADDRESS_PLAN, LAB_ROLES, namespaceName, withPrefix, type AccessName, type AddressPlan, type LabRole } from './addresses.ts'
import { emulateAccess, type EmulatedAccess } from './link-emulation.ts'
import type { AccessProfile } from './link-profile.ts'

export type AccessState = 'up' | 'down' | 'blackhole'

export interface BuildLabOptions {
  /** Namespace prefix (`ha-` for the CLI, `hat-…` in tests). A stale lab of this prefix is removed first. */
  prefix: string
  profiles: { readonly [K in AccessName]: AccessProfile }
  /** Start the inet servers (HTTP, echo, flow) and hag's flow server. Default true. */
  servers?: boolean
  /**
   * Put the service address on hag's loopback (and hag's flow and echo servers on it). Default true;
   * false for the scale-out lab, where hag is the balancer and the instances hold it (scale-out.ts).
   */
  serviceOnHag?: boolean
  /** Progress messages. */
  log?: (message: string) => void
}

export interface AccessHandle {
  readonly name: AccessName
  readonly profile: AccessProfile
  readonly state: AccessState
  readonly emulation: EmulatedAccess | undefined
}

export interface InterfaceBytes { up: number, down: number }

export interface Lab {
  readonly prefix: string
  readonly plan: AddressPlan
  readonly ns: { readonly [R in LabRole]: Netns }
  readonly access: { readonly [K in AccessName]: AccessHandle }
  /** up: carrier and routes restored, no blackhole; down: cpe's interface down (carrier loss); blackhole: carrier up, every packet dropped. */
  setAccessState: (name: AccessName, state: AccessState) => Promise<void>
  setProfile: (name: AccessName, profile: AccessProfile) => Promise<void>
  /** Byte counters of an access (up = router → hag, down = router → cpe, after shaping). */
  accessBytes: (name: AccessName) => Promise<InterfaceBytes>
  /** Spawn a process in a lab namespace; it is killed (by PID) at teardown. */
  spawn: (role: LabRole, argv: readonly string[]) => ChildProcess
  /** Run a TypeScript lab script (tsx) in a namespace and wait for its `{"type":"ready"}` line. */
  startScript: (role: LabRole, script: string, args: readonly string[]) => Promise<ChildProcess>
  /** Stop everything and delete the namespaces. Idempotent. */
  teardown: () => Promise<void>
  /**
   * Let the lab outlive this process: the link emulation moves to a detached keeper process inside
   * the lab's `dsl` namespace (keeper.ts), the servers are released. Returns the keeper's PID.
   */
  keep: () => Promise<number>
}

export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url))
const READY_TIMEOUT_MS = 30_000

/** Build the lab. On any failure everything built so far is torn down before the error propagates. */
export async function buildLab (opts: BuildLabOptions): Promise<Lab> {
  const lab = new LabImpl(opts)
  try {
    await lab.build(opts.servers ?? true, opts.serviceOnHag ?? true)
  } catch (err) {
    await lab.teardown()
    throw err
  }
  return lab
}

interface MutableAccess { name: AccessName, profile: AccessProfile, state: AccessState, emulation: EmulatedAccess | undefined }

class LabImpl implements Lab {
  readonly prefix: string
  readonly plan = ADDRESS_PLAN
  readonly ns: { readonly [R in LabRole]: Netns }
  readonly access: { [K in AccessName]: MutableAccess }
  readonly #children = new Set<ChildProcess>()
  readonly #log: (m: string) => void
  #teardown: Promise<void> | undefined

  constructor (opts: BuildLabOptions) {
    this.prefix = opts.prefix
    this.#log = opts.log ?? (() => {})
    this.ns = Object.fromEntries(LAB_ROLES.map((r) => [r, netns(namespaceName(opts.prefix, r))])) as Lab['ns']
    this.access = {
      dsl: { name: 'dsl', profile: opts.profiles.dsl, state: 'up', emulation: undefined },
      lte: { name: 'lte', profile: opts.profiles.lte, state: 'up', emulation: undefined }
    }
  }

  async build (servers: boolean, serviceOnHag: boolean): Promise<void> {
    const stale = await removeNamespaces(this.prefix)
    if (stale.length > 0) this.#log(`removed a stale lab: ${stale.join(' ')}`)
    this.#log(`creating namespaces ${this.prefix}{${LAB_ROLES.join(',')}}`)
    for (const role of LAB_ROLES) await createNamespace(this.ns[role].name)
    await this.#sysctls()
    await this.#links()
    await this.#addressesAndRoutes(serviceOnHag)
    for (const name of ACCESS_NAMES) {
      const a = this.plan.access[name]
      this.#log(`link emulation on ${name}: profile ${this.access[name].profile.name}`)
      this.access[name].emulation = await emulateAccess(this.ns[name],
        { cpeSide: a.routerCpeIf, coreSide: a.routerCoreIf, profile: this.access[name].profile })
    }
    if (servers) await this.#startServers(serviceOnHag)
  }

  async #sysctls (): Promise<void> {
    const common = ['net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0']
    const router = [...common, 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1', 'net.ipv6.conf.all.keep_addr_on_down=1']
    for (const role of LAB_ROLES) {
      const isRouter = role === 'cpe' || role === 'dsl' || role === 'lte' || role === 'hag'
      await this.ns[role].exec(['sysctl', '-qw', ...(isRouter ? router : common), 'net.ipv6.conf.default.accept_dad=0'])
    }
  }

  async #links (): Promise<void> {
    const p = this.plan
    const pairs: Array<[LabRole, string, LabRole, string]> = [
      ['lan', p.lan.hostIf, 'cpe', p.lan.cpeIf],
      ...ACCESS_NAMES.flatMap((n): Array<[LabRole, string, LabRole, string]> => [
        ['cpe', p.access[n].cpeIf, n, p.access[n].routerCpeIf],
        [n, p.access[n].routerCoreIf, 'hag', p.access[n].hagIf]
      ]),
      ['hag', p.internet.hagIf, 'inet', p.internet.serverIf]
    ]
    for (const [a, aIf, b, bIf] of pairs) {
      await run(['ip', 'link', 'add', aIf, 'netns', this.ns[a].name, 'type', 'veth', 'peer', 'name', bIf, 'netns', this.ns[b].name])
    }
  }

  async #addressesAndRoutes (serviceOnHag: boolean): Promise<void> {
    const batches = labIpCommands(this.plan, { serviceOnHag })
    for (const role of LAB_ROLES) {
      await ipBatch(this.ns[role].name, batches[role])
    }
  }

  async #startServers (serviceOnHag: boolean): Promise<void> {
    const s = this.plan.internet.servers[0]
    if (s === undefined) throw new Error('address plan has no internet server')
    this.#log(`starting servers: inet (HTTP, echo, flow)${serviceOnHag ? ' and hag (flow, echo on the service address)' : ''}`)
    await Promise.all([
      this.startScript('inet', 'lab/flow-servers.ts', ['--http', '--echo', '--flow', '--listen', s.v4, '--listen', s.v6]),
      ...(serviceOnHag
        ? [this.startScript('hag', 'lab/flow-servers.ts', ['--flow', '--echo', '--listen', this.plan.service.v4, '--listen', this.plan.service.v6])]
        : [])
    ])
  }

  spawn (role: LabRole, argv: readonly string[]): ChildProcess {
    const child = this.ns[role].spawn(argv, { cwd: REPO_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    this.#children.add(child)
    child.once('exit', () => { this.#children.delete(child) })
    return child
  }

  async startScript (role: LabRole, script: string, args: readonly string[]): Promise<ChildProcess> {
    const child = this.spawn(role, [process.execPath, '--import', 'tsx', script, ...args])
    await waitReady(child, script, role)
    return child
  }

  async setAccessState (name: AccessName, state: AccessState): Promise<void> {
    const a = this.access[name]
    const cpe = this.ns.cpe
    const ifName = this.plan.access[name].cpeIf
    if (state === 'down') {
      await cpe.exec(['ip', 'link', 'set', ifName, 'down'])
      await a.emulation?.setBlackhole(false)
    } else {
      await cpe.exec(['ip', 'link', 'set', ifName, 'up'])
      await ipBatch(cpe.name, accessRoutes(this.plan, name, 'replace'))
      await a.emulation?.setBlackhole(state === 'blackhole')
    }
    a.state = state
  }

  async setProfile (name: AccessName, profile: AccessProfile): Promise<void> {
    await this.access[name].emulation?.setProfile(profile)
    this.access[name].profile = profile
  }

  async accessBytes (name: AccessName): Promise<InterfaceBytes> {
    const a = this.plan.access[name]
    const out = await run(['ip', '-n', this.ns[name].name, '-j', '-s', 'link', 'show'])
    const links = JSON.parse(out) as Array<{ ifname: string, stats64?: { tx?: { bytes?: number } } }>
    const tx = (ifName: string): number => links.find((l) => l.ifname === ifName)?.stats64?.tx?.bytes ?? 0
    return { up: tx(a.routerCoreIf), down: tx(a.routerCpeIf) }
  }

  async keep (): Promise<number> {
    for (const name of ACCESS_NAMES) await this.access[name].emulation?.stop()
    const keeper = this.ns.dsl.spawn([process.execPath, '--import', 'tsx', 'lab/keeper.ts', '--prefix', this.prefix,
      '--dsl', this.access.dsl.profile.name, '--lte', this.access.lte.profile.name],
    { cwd: REPO_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    this.#children.add(keeper)
    await waitReady(keeper, 'keeper.ts', 'dsl')
    for (const child of this.#children) {
      child.stdout?.destroy()
      child.stderr?.destroy()
      child.unref()
    }
    this.#children.clear()
    return keeper.pid ?? -1
  }

  async teardown (): Promise<void> {
    this.#teardown ??= this.#doTeardown()
    await this.#teardown
  }

  async #doTeardown (): Promise<void> {
    for (const child of this.#children) {
      try { if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL') } catch { /* already gone */ }
    }
    for (const name of ACCESS_NAMES) await this.access[name].emulation?.stop().catch(() => undefined)
    await removeNamespaces(this.prefix)
    this.#log(`lab ${this.prefix}* removed`)
  }
}

/** Wait for a child's `{"type":"ready"}` line; rejects with its stderr if it exits or times out. */
async function waitReady (child: ChildProcess, script: string, role: string): Promise<void> {
  let stderr = ''
  child.stderr?.on('data', (b: Buffer) => { stderr = (stderr + b.toString()).slice(-4000) })
  await new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    const onExit = (code: number | null): void => { clearTimeout(timer); reject(new Error(`${script} in ${role} exited (${String(code)}): ${stderr.trim()}`)) }
    const timer = setTimeout(() => { reject(new Error(`${script} in ${role}: not ready after ${READY_TIMEOUT_MS} ms: ${stderr.trim()}`)) },
      READY_TIMEOUT_MS)
    lines.on('line', (l) => {
      if (!l.includes('"ready"')) return
      clearTimeout(timer)
      child.off('exit', onExit)
      lines.close()
      resolve()
    })
    child.once('exit', onExit)
  })
}

/**
 * Run `ip -batch` lines in a namespace. Lines starting with `-6 ` (rules need the family) go to a
 * second `ip -6 -batch` run, after the others.
 */
export async function ipBatch (nsName: string, lines: readonly string[]): Promise<void> {
  const v6 = lines.filter((l) => l.startsWith('-6 ')).map((l) => l.slice(3))
  const rest = lines.filter((l) => !l.startsWith('-6 '))
  if (rest.length > 0) await run(['ip', '-n', nsName, '-batch', '-'], { input: rest.join('\n') + '\n' })
  if (v6.length > 0) await run(['ip', '-6', '-n', nsName, '-batch', '-'], { input: v6.join('\n') + '\n' })
}

/**
 * The `ip -batch` lines that configure each namespace (addresses, routes, rules, MPTCP). Pure.
 * `serviceOnHag: false` leaves the service address off hag's loopback (the scale-out balancer).
 */
export function labIpCommands (p: AddressPlan, opts: { serviceOnHag?: boolean } = {}): { [R in LabRole]: string[] } {
  const up = (dev: string): string => `link set ${dev} up`
  const addr = (a: string, net: string, dev: string): string => `addr add ${withPrefix(a, net)} dev ${dev}${a.includes(':') ? ' nodad' : ''}`
  const both = (f: (fam: 'v4' | 'v6') => string): string[] => [f('v4'), f('v6')]
  const out: { [R in LabRole]: string[] } = { lan: [], cpe: [], dsl: [], lte: [], hag: [], inet: [] }

  out.lan.push(up(p.lan.hostIf), ...both((f) => addr(p.lan.host[f], p.lan.net[f], p.lan.hostIf)),
    ...both((f) => `route add default via ${p.lan.cpe[f]} dev ${p.lan.hostIf}`))
  out.cpe.push(up(p.lan.cpeIf), ...both((f) => addr(p.lan.cpe[f], p.lan.net[f], p.lan.cpeIf)))
  for (const n of ACCESS_NAMES) {
    const a = p.access[n]
    out.cpe.push(up(a.cpeIf), ...both((f) => addr(a.cpeSide.cpe[f], a.cpeSide.net[f], a.cpeIf)), ...accessRoutes(p, n, 'add'))
    out.cpe.push(...both((f) => `${f === 'v6' ? '-6 ' : ''}rule add from ${a.cpeSide.cpe[f]} table ${a.table} pref ${a.table}`))
    out[n].push(up(a.routerCpeIf), up(a.routerCoreIf),
      ...both((f) => addr(a.cpeSide.router[f], a.cpeSide.net[f], a.routerCpeIf)),
      ...both((f) => addr(a.coreSide.router[f], a.coreSide.net[f], a.routerCoreIf)),
      ...both((f) => `route add ${p.lan.net[f]} via ${a.cpeSide.cpe[f]} dev ${a.routerCpeIf}`),
      ...both((f) => `route add default via ${a.coreSide.hag[f]} dev ${a.routerCoreIf}`))
    out.hag.push(up(a.hagIf), ...both((f) => addr(a.coreSide.hag[f], a.coreSide.net[f], a.hagIf)),
      ...both((f) => `route add ${a.cpeSide.net[f]} via ${a.coreSide.router[f]} dev ${a.hagIf}`))
  }
  const dsl = p.access.dsl
  out.hag.push(...both((f) => `route add ${p.lan.net[f]} via ${dsl.coreSide.router[f]} dev ${dsl.hagIf}`),
    ...(opts.serviceOnHag === false ? [] : [`addr add ${p.service.v4}/32 dev lo`, `addr add ${p.service.v6}/128 dev lo nodad`]),
    up(p.internet.hagIf), ...both((f) => addr(p.internet.hag[f], p.internet.net[f], p.internet.hagIf)),
    'mptcp limits set subflows 2 add_addr_accepted 2')
  out.cpe.push('mptcp limits set subflows 2 add_addr_accepted 2',
    ...both((f) => `mptcp endpoint add ${p.access.lte.cpeSide.cpe[f]} dev ${p.access.lte.cpeIf} subflow`))
  out.inet.push(up(p.internet.serverIf),
    ...p.internet.servers.flatMap((s) => both((f) => addr(s[f], p.internet.net[f], p.internet.serverIf))),
    ...both((f) => `route add default via ${p.internet.hag[f]} dev ${p.internet.serverIf}`))
  return out
}

/** cpe's routes for one access: its source table, plus the main default for DSL. */
export function accessRoutes (p: AddressPlan, name: AccessName, verb: 'add' | 'replace'): string[] {
  const a = p.access[name]
  const lines: string[] = []
  for (const f of ['v4', 'v6'] as const) {
    const fam = f === 'v6' ? '-6 ' : ''
    lines.push(`${fam}route ${verb} default via ${a.cpeSide.router[f]} dev ${a.cpeIf} table ${a.table}`)
    if (name === 'dsl') lines.push(`${fam}route ${verb} default via ${a.cpeSide.router[f]} dev ${a.cpeIf}`)
  }
  return lines
}
