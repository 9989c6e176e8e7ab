/**
 * The scale-out lab (`npm run lab -- --concentrators N`, docs/lab.md "Scale-out lab"): the lab of
 * topology.ts with hag as an L4 balancer (nftables, no concentrator, no service address) and N
 * concentrator instances in `<prefix>hag1..N` behind it, each holding the service address on its
 * loopback and announcing its own join address (`join.endpoints`, the C flag). The CPE agent in cpe
 * talks to the service address as always. Plan, addresses and ruleset: scale-out-plan.ts.
 *
 * The balancer's membership API (`balancer.add/remove/setMembers/checkHealth`) stands in for what a
 * BGP withdraw or an IPVS health check does in a fleet: a member leaves the set for new
 * connections; conntrack keeps every running connection on the instance it started on.
 * Every process is started here and stopped by PID; teardown removes the namespaces (also on failure).
 */
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ACCESS_NAMES } from './addresses.ts'
import { startDaemon, type DaemonHandle } from './daemons.ts'
import { labCpeConfig, labModeConcentratorConfig } from './lab-daemons-config.ts'
import type { AccessProfile } from './link-profile.ts'
import { createNamespace, netns, run, type Netns } from './netns.ts'
import { LAB_MGMT_PORTS } from './prometheus-config.ts'
import {
  balancerIpCommands, balancerRuleset, instanceIpCommands, instancePlan, MAX_INSTANCES, SCALE_OUT_JOIN_PORT, type InstancePlan
} from './scale-out-plan.ts'
import { buildLab, ipBatch, REPO_ROOT, type Lab } from './topology.ts'
import { TRANSPARENT_PORTS, useFullmeshEndpoints } from './transparent-setup.ts'
import type { AddressPlan } from './addresses.ts'

/** The CPE modes the scale-out lab runs (transparent: the balancer steers every TCP connection from the accesses). */
export const SCALE_OUT_MODES = ['socks5', 'convert', 'transparent'] as const
export type ScaleOutMode = typeof SCALE_OUT_MODES[number]

export interface ScaleOutOptions {
  readonly prefix: string
  readonly profiles: { readonly dsl: AccessProfile, readonly lte: AccessProfile }
  readonly instances: number
  readonly mode: ScaleOutMode
  readonly log?: (message: string) => void
}

export interface ConcentratorInstance {
  readonly plan: InstancePlan
  readonly ns: Netns
  /** The running daemon (undefined after kill()/stop()). */
  readonly daemon: DaemonHandle | undefined
}

export interface Balancer {
  /** Ids of the current members, in the order the round-robin visits them. */
  members: () => number[]
  setMembers: (ids: readonly number[]) => Promise<void>
  add: (id: number) => Promise<void>
  remove: (id: number) => Promise<void>
  /** `/readyz` of every member from the balancer (1 s each); members that fail leave the set. Returns the removed ids. */
  checkHealth: () => Promise<number[]>
  /** The ruleset as the kernel holds it (`nft list table`). */
  list: () => Promise<string>
}

export interface ScaleOutLab {
  readonly lab: Lab
  readonly dir: string
  mode: () => ScaleOutMode
  /** The instances' join port: SCALE_OUT_JOIN_PORT (`join.endpoints`), or transparent mode's join port. */
  joinPort: () => number
  instances: () => ConcentratorInstance[]
  instance: (id: number) => ConcentratorInstance
  readonly balancer: Balancer
  cpe: () => DaemonHandle
  /** Stop the CPE agent and start it again in `mode`. */
  restartCpe: (mode: ScaleOutMode) => Promise<void>
  /** Build the next instance (namespace, link, concentrator) and add it to the balancer. */
  addInstance: () => Promise<ConcentratorInstance>
  /** SIGKILL an instance's concentrator (by its PID); the balancer is not told (checkHealth() finds it). Returns the PID. */
  killInstance: (id: number) => Promise<number>
  /** Stop the daemons (SIGTERM, by PID) and remove every namespace; the log folder goes unless `keepLogs`. Idempotent. */
  teardown: (opts?: { keepLogs?: boolean }) => Promise<void>
}

/**
 * The concentrator configuration of one instance: the lab's convert-mode config (SOCKS5 on 1080 and
 * Convert on 1234, so the CPE can switch modes without restarting the instances), with management
 * and the join endpoint on the instance's own link address. Pure.
 */
export function instanceConcentratorConfig (instance: InstancePlan, plan: AddressPlan, mode: ScaleOutMode = 'convert'): Record<string, unknown> {
  if (mode === 'transparent') {
    // Intercept what the balancer steers here (on the balancer link), join endpoint on the instance's own address.
    const t = labModeConcentratorConfig('transparent', { plan })
    return {
      ...t,
      management: { listen: { host: instance.address, port: LAB_MGMT_PORTS.concentrator } },
      transparent: {
        ...(t['transparent'] as Record<string, unknown>),
        accessInterfaces: [instance.instanceIf],
        joinEndpoints: [{ address: instance.address, interface: instance.instanceIf, port: TRANSPARENT_PORTS.join }]
      }
    }
  }
  return {
    ...labModeConcentratorConfig('convert', { plan }),
    management: { listen: { host: instance.address, port: LAB_MGMT_PORTS.concentrator } },
    join: { endpoints: [{ address: instance.address, interface: instance.instanceIf, port: SCALE_OUT_JOIN_PORT }] }
  }
}

/** The CPE's configuration behind the balancer: the lab's, with `multipath.fullmesh` (what the C flag needs, docs/scale-out.md). Pure. */
export function scaleOutCpeConfig (mode: ScaleOutMode, plan: AddressPlan): Record<string, unknown> {
  const c = labCpeConfig(mode, { plan })
  return { ...c, multipath: { ...(c['multipath'] as object), fullmesh: true } }
}

/** Build the scale-out lab and start its daemons. On any failure everything is torn down before the error propagates. */
export async function buildScaleOutLab (opts: ScaleOutOptions): Promise<ScaleOutLab> {
  if (!Number.isInteger(opts.instances) || opts.instances < 1 || opts.instances > MAX_INSTANCES) {
    throw new RangeError(`instances must be 1..${MAX_INSTANCES}, got ${opts.instances}`)
  }
  const lab = await buildLab({ prefix: opts.prefix, profiles: opts.profiles, serviceOnHag: false, ...(opts.log ? { log: opts.log } : {}) })
  const s = new ScaleOut(lab, opts)
  try {
    await s.start(opts.instances)
  } catch (err) {
    await s.teardown({ keepLogs: true })
    throw err
  }
  return s
}

interface MutableInstance { plan: InstancePlan, ns: Netns, daemon: DaemonHandle | undefined }

class ScaleOut implements ScaleOutLab {
  readonly lab: Lab
  readonly dir: string
  readonly balancer: Balancer
  readonly #instances = new Map<number, MutableInstance>()
  readonly #children = new Set<ChildProcess>()
  readonly #log: (m: string) => void
  #members: number[] = []
  #mode: ScaleOutMode
  #cpe: DaemonHandle | undefined
  #teardown: Promise<void> | undefined

  constructor (lab: Lab, opts: ScaleOutOptions) {
    this.lab = lab
    this.#mode = opts.mode
    this.#log = opts.log ?? (() => {})
    this.dir = mkdtempSync(join(tmpdir(), `${opts.prefix}scale-out-`))
    this.balancer = {
      members: () => [...this.#members],
      setMembers: async (ids) => { await this.#applyMembers(ids) },
      add: async (id) => { await this.#applyMembers([...this.#members.filter((m) => m !== id), id]) },
      remove: async (id) => { await this.#applyMembers(this.#members.filter((m) => m !== id)) },
      checkHealth: async () => this.#checkHealth(),
      list: async () => this.lab.ns.hag.exec(['nft', 'list', 'table', 'ip', 'hat_balancer'])
    }
  }

  async start (n: number): Promise<void> {
    await this.lab.ns.cpe.exec(['sysctl', '-qw', 'net.ipv4.tcp_fastopen=1'])
    await useFullmeshEndpoints(this.lab)
    for (let id = 1; id <= n; id++) await this.#createInstance(id)
    await this.#applyMembers([...this.#instances.keys()])
    await this.#startCpe()
  }

  mode (): ScaleOutMode { return this.#mode }
  joinPort (): number { return this.#mode === 'transparent' ? TRANSPARENT_PORTS.join : SCALE_OUT_JOIN_PORT }
  instances (): ConcentratorInstance[] { return [...this.#instances.values()] }
  instance (id: number): ConcentratorInstance {
    const i = this.#instances.get(id)
    if (i === undefined) throw new RangeError(`no instance ${id}`)
    return i
  }

  cpe (): DaemonHandle {
    if (this.#cpe === undefined) throw new Error('the CPE agent is not running')
    return this.#cpe
  }

  async restartCpe (mode: ScaleOutMode): Promise<void> {
    if ((mode === 'transparent') !== (this.#mode === 'transparent')) {
      throw new Error('restartCpe: the instances run transparent or explicit modes; build another scale-out lab to switch')
    }
    await this.#cpe?.stop(3000)
    this.#cpe = undefined
    this.#mode = mode
    await this.#startCpe()
  }

  async addInstance (): Promise<ConcentratorInstance> {
    const id = Math.max(0, ...this.#instances.keys()) + 1
    const i = await this.#createInstance(id)
    await this.balancer.add(id)
    return i
  }

  async killInstance (id: number): Promise<number> {
    const i = this.#instances.get(id)
    const d = i?.daemon
    if (i === undefined || d === undefined) throw new Error(`instance ${id} is not running`)
    process.kill(d.pid, 'SIGKILL')
    await d.stop(100)
    i.daemon = undefined
    return d.pid
  }

  async teardown (opts: { keepLogs?: boolean } = {}): Promise<void> {
    this.#teardown ??= (async () => {
      const codes: Array<number | null> = []
      codes.push(await this.#cpe?.stop(3000).catch(() => null) ?? 0)
      for (const i of this.#instances.values()) codes.push(await i.daemon?.stop(3000).catch(() => null) ?? 0)
      for (const child of this.#children) {
        try { if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL') } catch { /* gone */ }
      }
      await this.lab.teardown()
      const keep = opts.keepLogs === true || codes.some((c) => c !== 0)
      if (keep) this.#log(`scale-out logs kept in ${this.dir}`)
      else rmSync(this.dir, { recursive: true, force: true })
    })()
    await this.#teardown
  }

  async #createInstance (id: number): Promise<MutableInstance> {
    const plan = instancePlan(id)
    const name = `${this.lab.prefix}${plan.role}`
    this.#log(`instance ${id}: namespace ${name}, link ${plan.address}, join ${plan.address}:${SCALE_OUT_JOIN_PORT}`)
    const ns = await createNamespace(name)
    const input = { instance: plan, service: this.lab.plan.service }
    await ns.exec(['sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0',
      'net.ipv6.conf.default.accept_dad=0', 'net.ipv4.tcp_fastopen=3', `net.ipv4.ip_forward=${this.#mode === 'transparent' ? 1 : 0}`])
    await run(['ip', 'link', 'add', plan.balancerIf, 'netns', this.lab.ns.hag.name, 'type', 'veth', 'peer', 'name', plan.instanceIf, 'netns', name])
    await ipBatch(this.lab.ns.hag.name, balancerIpCommands(input))
    await ipBatch(name, instanceIpCommands(input))
    const instance: MutableInstance = { plan, ns, daemon: undefined }
    this.#instances.set(id, instance)
    const logFile = join(this.dir, `concentrator-${plan.role}.log`)
    instance.daemon = await startDaemon({
      daemon: 'concentrator',
      dir: join(this.dir, plan.role),
      config: instanceConcentratorConfig(plan, this.lab.plan, this.#mode === 'transparent' ? 'transparent' : 'convert'),
      ns,
      spawn: (argv) => this.#spawn(ns, ['sh', '-c', 'log="$1"; shift; exec "$@" >>"$log" 2>&1', 'sh', logFile, ...argv])
    })
    return instance
  }

  async #startCpe (): Promise<void> {
    this.#log(`starting the CPE agent in ${this.lab.ns.cpe.name} (mode ${this.#mode}, fullmesh LTE endpoint)`)
    const logFile = join(this.dir, `cpe-${this.#mode}.log`)
    this.#cpe = await startDaemon({
      daemon: 'cpe',
      dir: join(this.dir, `cpe-${this.#mode}`),
      config: scaleOutCpeConfig(this.#mode, this.lab.plan),
      ns: this.lab.ns.cpe,
      spawn: (argv) => this.lab.spawn('cpe', ['sh', '-c', 'log="$1"; shift; exec "$@" >>"$log" 2>&1', 'sh', logFile, ...argv])
    })
  }

  #spawn (ns: Netns, argv: readonly string[]): ChildProcess {
    const child = netns(ns.name).spawn(argv, { cwd: REPO_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    this.#children.add(child)
    child.once('exit', () => { this.#children.delete(child) })
    return child
  }

  async #applyMembers (ids: readonly number[]): Promise<void> {
    const members = ids.map((id) => this.instance(id).plan)
    const ruleset = balancerRuleset({
      service: this.lab.plan.service.v4,
      accessInterfaces: ACCESS_NAMES.map((n) => this.lab.plan.access[n].hagIf),
      members,
      steer: this.#mode === 'transparent' ? 'all' : 'service'
    })
    await this.lab.ns.hag.exec(['nft', '-f', '-'], { input: ruleset })
    this.#members = [...ids]
    this.#log(`balancer members: ${ids.length === 0 ? 'none' : ids.map((id) => `hag${id}`).join(', ')}`)
  }

  async #checkHealth (): Promise<number[]> {
    const dead: number[] = []
    for (const id of this.#members) {
      const url = `http://${this.instance(id).plan.address}:${LAB_MGMT_PORTS.concentrator}/readyz`
      const code = await this.lab.ns.hag.exec(['curl', '-s', '-o', '/dev/null', '--max-time', '1', '-w', '%{http_code}', url])
        .catch(() => '000')
      if (code.trim() !== '200') dead.push(id)
    }
    if (dead.length > 0) await this.#applyMembers(this.#members.filter((m) => !dead.includes(m)))
    return dead
  }
}

export interface EchoConnStats { id: number, echoed: number, state: 'open' | 'closed' | 'error', err?: string }

/** The client side of scale-out-load.ts running in lan. */
export interface EchoLoad {
  open: (n: number) => Promise<{ ids: number[], failed: number, errors: string[] }>
  stats: () => Promise<EchoConnStats[]>
  close: () => Promise<void>
  stop: () => void
}

/** Start scale-out-load.ts in lan against inet's echo server (plain TCP: the CPE intercepts it). */
export async function startEchoLoad (lab: Lab): Promise<EchoLoad> {
  const server = lab.plan.internet.servers[0]
  if (server === undefined) throw new Error('address plan has no internet server')
  // Its own spawn (lab.spawn gives no stdin); it lives in lan, so the lab's teardown removes it too.
  const child = lab.ns.lan.spawn([process.execPath, '--import', 'tsx', 'lab/scale-out-load.ts', '--host', server.v4, '--port', '7'],
    { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] })
  const pending: Array<(o: Record<string, unknown>) => void> = []
  let buffered = ''
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('scale-out-load.ts not ready within 30 s')) }, 30_000)
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`scale-out-load.ts exited (${String(code)})`)) })
    child.stdout?.on('data', (b: Buffer) => {
      buffered += b.toString()
      let nl: number
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        const o = JSON.parse(line) as Record<string, unknown>
        if (o['type'] === 'ready') { clearTimeout(timer); resolve(); continue }
        pending.shift()?.(o)
      }
    })
  })
  await ready
  const ask = async (cmd: string, timeoutMs: number): Promise<Record<string, unknown>> => new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`scale-out-load.ts: no answer to ${cmd} within ${timeoutMs} ms`)) }, timeoutMs)
    pending.push((o) => { clearTimeout(timer); resolve(o) })
    child.stdin?.write(cmd + '\n')
  })
  return {
    open: async (n) => {
      const o = await ask(`open ${n}`, 10_000 + n * 500)
      return { ids: o['ids'] as number[], failed: o['failed'] as number, errors: o['errors'] as string[] }
    },
    stats: async () => (await ask('stats', 10_000))['conns'] as EchoConnStats[],
    close: async () => { await ask('close', 10_000) },
    stop: () => { if (child.pid !== undefined) { try { process.kill(child.pid, 'SIGTERM') } catch { /* gone */ } } }
  }
}
