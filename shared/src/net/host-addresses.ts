/**
 * The addresses configured in this network namespace, kept current, for "never relay to
 * ourselves": the concentrator refuses them as destinations (a wildcard listener covers every one
 * of them), the CPE refuses connections addressed to them on its interception port.
 *
 * Source: `ip -j address show` (every interface, up or down, with or without carrier; libuv's
 * `os.networkInterfaces()` skips interfaces without IFF_RUNNING, whose addresses stay local).
 * Freshness: `ip -o monitor address` (rtnetlink address events) triggers a re-read within
 * `debounceMs`; a re-read every `refreshMs` is the safety net, and a monitor that exits is
 * restarted. A re-read that fails keeps the last good set (logged), so a refusal never turns into
 * an allowance because `ip` had a bad moment.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { BlockList, isIP } from 'node:net'
import type { Logger } from '../log.ts'
import { runCommand, runJsonArray, type CommandRunner } from '../sys/command.ts'
import { unmapV4 } from './endpoint.ts'

/** What a policy needs: membership of one address (text, IPv4-mapped IPv6 counts as IPv4). */
export interface AddressMembership {
  has: (address: string) => boolean
}

export interface HostAddressesOptions {
  log: Logger
  /** Runner of `ip -j address show`. Default runCommand. */
  run?: CommandRunner
  /** Prepended to the commands (tests: `['ip', 'netns', 'exec', ns]`). */
  commandPrefix?: readonly string[]
  /** Watch rtnetlink through `ip -o monitor address` (default true). */
  monitor?: boolean
  /** Safety re-read interval, ms (default 30000). */
  refreshMs?: number
  /** Delay between a monitor event and the re-read (events come in bursts), ms (default 50). */
  debounceMs?: number
  /** Called after every re-read that changed the set. */
  onChange?: (addresses: readonly string[]) => void
}

const SHOW = ['ip', '-j', 'address', 'show']
const MONITOR = ['ip', '-o', 'monitor', 'address']
const RESTART_MS = 1000

/** Strip the IPv4-mapped prefix (`::ffff:192.0.2.1` → `192.0.2.1`) and an IPv6 zone id. */
export function unmapAddress (address: string): string {
  return unmapV4(address.replace(/%.*$/, ''))
}

/** The `local` addresses of `ip -j address show` output, unique, in order. Pure. */
export function parseAddressShow (links: ReadonlyArray<Record<string, unknown>>): string[] {
  const out: string[] = []
  for (const link of links) {
    const infos = Array.isArray(link.addr_info) ? link.addr_info as unknown[] : []
    for (const info of infos) {
      if (typeof info !== 'object' || info === null) continue
      const local = (info as Record<string, unknown>).local
      if (typeof local !== 'string' || isIP(local) === 0) continue
      if (!out.includes(local)) out.push(local)
    }
  }
  return out
}

/** An immutable membership set over address texts (normalised by BlockList: any IPv6 spelling). */
export class AddressSet implements AddressMembership {
  readonly #list = new BlockList()
  readonly #addresses: readonly string[]

  constructor (addresses: readonly string[]) {
    const valid: string[] = []
    for (const a of addresses.map(unmapAddress)) {
      const family = isIP(a)
      if (family === 0) continue
      this.#list.addAddress(a, family === 4 ? 'ipv4' : 'ipv6')
      valid.push(a)
    }
    this.#addresses = valid
  }

  has (address: string): boolean {
    const a = unmapAddress(address)
    const family = isIP(a)
    if (family === 0 || this.#addresses.length === 0) return false
    return this.#list.check(a, family === 4 ? 'ipv4' : 'ipv6')
  }

  get addresses (): readonly string[] { return this.#addresses }
}

export class HostAddresses implements AddressMembership {
  readonly #opts: HostAddressesOptions
  readonly #run: CommandRunner
  #set = new AddressSet([])
  #monitor: ChildProcess | undefined
  #refreshTimer: NodeJS.Timeout | undefined
  #debounceTimer: NodeJS.Timeout | undefined
  #restartTimer: NodeJS.Timeout | undefined
  #reading: Promise<void> | undefined
  #again = false
  #closed = false

  private constructor (opts: HostAddressesOptions) {
    this.#opts = opts
    this.#run = opts.run ?? runCommand
  }

  /** Read the addresses once (a failure rejects: the caller cannot know its own addresses), then watch. */
  static async start (opts: HostAddressesOptions): Promise<HostAddresses> {
    const h = new HostAddresses(opts)
    h.#set = new AddressSet(await h.#read())
    opts.log.info({ addresses: h.#set.addresses }, 'host addresses read')
    if (opts.monitor !== false) h.#startMonitor()
    h.#refreshTimer = setInterval(() => { h.#refreshSoon() }, opts.refreshMs ?? 30_000).unref()
    return h
  }

  has (address: string): boolean { return this.#set.has(address) }
  get addresses (): readonly string[] { return this.#set.addresses }

  /** Re-read now (coalesced with a read in progress). Resolves when the set is current. */
  refresh (): Promise<void> {
    if (this.#closed) return Promise.resolve()
    if (this.#reading !== undefined) { this.#again = true; return this.#reading }
    this.#reading = (async () => {
      do {
        this.#again = false
        try {
          this.#swap(await this.#read())
        } catch (err) {
          this.#opts.log.warn({ err }, 'host addresses: re-read failed, keeping the last set')
        }
      } while (this.#again && !this.#closed)
      this.#reading = undefined
    })()
    return this.#reading
  }

  /** A re-read from a timer or event: refresh() never rejects, its errors are logged. */
  #refreshSoon (): void {
    this.refresh().catch(() => {})
  }

  close (): void {
    this.#closed = true
    for (const t of [this.#refreshTimer, this.#debounceTimer, this.#restartTimer]) if (t !== undefined) clearTimeout(t)
    const child = this.#monitor
    this.#monitor = undefined
    child?.kill('SIGTERM')
  }

  async #read (): Promise<string[]> {
    const argv = [...(this.#opts.commandPrefix ?? []), ...SHOW]
    return parseAddressShow(await runJsonArray(this.#run, argv))
  }

  #swap (addresses: string[]): void {
    const before = this.#set.addresses
    const same = before.length === addresses.length && addresses.every((a) => this.#set.has(a))
    if (same) return
    this.#set = new AddressSet(addresses)
    this.#opts.log.info({ addresses: this.#set.addresses }, 'host addresses changed')
    this.#opts.onChange?.(this.#set.addresses)
  }

  #startMonitor (): void {
    if (this.#closed) return
    const [file, ...args] = [...(this.#opts.commandPrefix ?? []), ...MONITOR]
    if (file === undefined) return
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'ignore'] })
    this.#monitor = child
    child.unref()
    ;(child.stdout as { unref?: () => void } | null)?.unref?.()
    child.on('error', (err) => { this.#opts.log.warn({ err }, 'host addresses: cannot run ip monitor (periodic re-read only)') })
    child.stdout?.on('data', () => { this.#scheduleRead() })
    child.on('exit', (code, signal) => {
      if (this.#monitor !== child || this.#closed) return
      this.#monitor = undefined
      this.#opts.log.warn({ code, signal }, 'host addresses: ip monitor exited, restarting')
      this.#restartTimer = setTimeout(() => { this.#startMonitor(); this.#refreshSoon() }, RESTART_MS).unref()
    })
  }

  #scheduleRead (): void {
    if (this.#debounceTimer !== undefined || this.#closed) return
    this.#debounceTimer = setTimeout(() => {
      this.#debounceTimer = undefined
      this.#refreshSoon()
    }, this.#opts.debounceMs ?? 50).unref()
  }
}
