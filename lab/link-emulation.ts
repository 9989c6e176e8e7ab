/**
 * Emulate an access link (DSL, LTE …) inside an access-router namespace that sits between the CPE
 * and the concentrator. The test kernel has no netem, so:
 *
 *   cpeSide ──► rule iif cpeSide → table T  → default dev <tunUp>   ─► delay line ─► tunUp ─► main table ─► coreSide
 *   coreSide ─► rule iif coreSide → table T+1 → default dev <tunDown> ─► delay line ─► tunDown ─► main table ─► cpeSide
 *
 * The delay-line process (delay-line-main.ts) reads each packet from the TUN device, holds it for
 * delay ± jitter (FIFO, never reordering), drops it with the loss probability and writes it back
 * into the same device, where it re-enters the stack with iif = tun and follows the main table.
 * The rate is a tbf on each TUN device's egress, i.e. *before* the delay: the bottleneck queue
 * forms ahead of the propagation delay (as on a real access link) and the delay line's timer
 * bursts meet no shaper afterwards. Each table also holds a blackhole default route with the
 * largest metric: if the delay line dies (its TUN devices vanish), traffic is dropped instead of
 * silently bypassing the emulation. See docs/link-emulation.md for measurements.
 */
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import type { ChildProcess } from 'node:child_process'
import type { Netns } from './netns.ts'
import { DEFAULT_QUEUE_MS, type AccessProfile, type DirectionProfile } from './link-profile.ts'

export interface DirectionCounters {
  /** Packets that entered the delay line. */
  packets: number
  /** Packets it dropped (loss or blackhole). Shaper drops are not included (see tcDrops). */
  dropped: number
  forwarded: number
  queued: number
  /** Mean and largest |release error| of the delay line's timer, ms. */
  meanErrorMs: number
  maxErrorMs: number
  /** TUN reads that went through the thread pool, and packets taken by the synchronous drain. */
  reader: { poolReads: number, drained: number }
}

export interface EmulationStats {
  up: DirectionCounters
  down: DirectionCounters
  /** CPU time the delay-line process used since it started, µs. */
  cpu: { userUs: number, systemUs: number }
  /** Release-timer wakes so far and the learnt wake-up lateness (ms). */
  timer: { wakes: number, latenessMs: number }
}

export interface EmulatedAccess {
  readonly profile: AccessProfile
  /** PID of the delay-line process. */
  readonly pid: number
  /** TUN device names (up = CPE → core, down = core → CPE). */
  readonly tun: { up: string, down: string }
  setProfile: (p: AccessProfile) => Promise<void>
  setBlackhole: (on: boolean) => Promise<void>
  stats: () => Promise<EmulationStats>
  stop: () => Promise<void>
}

export interface EmulateOptions {
  cpeSide: string
  coreSide: string
  profile: AccessProfile
  /** Routing tables tableBase (up) and tableBase + 1 (down); rule preferences 1000 + the table. Default 100. */
  tableBase?: number
  /** PRNG seed for jitter and loss (default: random, reported by the delay line). */
  seed?: number
  /** Disable the TUN reader's synchronous drain (for measurements only). */
  noDrain?: boolean
  /** Release timer: 'precise' (worker thread, default) or 'node' (setTimeout; measurements only). */
  timer?: 'precise' | 'node'
  /** Release quantum of the delay line in ms (default 1, see delay-line.ts). */
  quantumMs?: number
  /** Scheduling priority of the delay-line process (nice value, default -10). */
  nice?: number
}

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url))
const MAIN = fileURLToPath(new URL('./delay-line-main.ts', import.meta.url))
const MTU_BYTES = 1500
const CONTROL_TIMEOUT_MS = 5_000
const START_TIMEOUT_MS = 20_000

export async function emulateAccess (ns: Netns, opts: EmulateOptions): Promise<EmulatedAccess> {
  const base = opts.tableBase ?? 100
  const tun = { up: `dl${base}u`, down: `dl${base}d` }
  await ns.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1',
    'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0',
    `net.ipv4.conf.${opts.cpeSide}.rp_filter=0`, `net.ipv4.conf.${opts.coreSide}.rp_filter=0`])
  // nice -10: the emulated link's timing should not depend on what else the host is doing
  const child = ns.spawn(['nice', '-n', String(opts.nice ?? -10), 'env', 'UV_THREADPOOL_SIZE=8', process.execPath, '--import', 'tsx', MAIN,
    '--up', tun.up, '--down', tun.down, '--params', JSON.stringify(lineParams(opts.profile)),
    ...(opts.seed !== undefined ? ['--seed', String(opts.seed)] : []), ...(opts.noDrain === true ? ['--no-drain'] : []),
    '--timer', opts.timer ?? 'precise', ...(opts.quantumMs !== undefined ? ['--quantum-ms', String(opts.quantumMs)] : [])],
  { stdio: ['pipe', 'pipe', 'pipe'], cwd: REPO_ROOT })
  const access = new Access(ns, opts, base, tun, child)
  try {
    await access.start()
  } catch (err) {
    await access.stop()
    throw err
  }
  return access
}

function lineParams (p: AccessProfile): { up: object, down: object } {
  const pick = (d: DirectionProfile): object => ({ delayMs: d.delayMs, jitterMs: d.jitterMs, lossPct: d.lossPct })
  return { up: pick(p.up), down: pick(p.down) }
}

/** tbf arguments for one direction, or undefined for "no shaping". Exported for the unit tests. */
export function tbfArgs (d: DirectionProfile): string[] | undefined {
  if (d.rateMbit <= 0) return undefined
  const bytesPerS = d.rateMbit * 1e6 / 8
  // 2 ms of tokens (at least two full packets) keeps tbf's timer cost low without a visible burst;
  // the queue holds queueMs worth of data at the rate (at least a few packets).
  const burst = Math.max(2 * MTU_BYTES + 100, Math.round(bytesPerS * 0.002))
  const limit = Math.max(4 * MTU_BYTES, Math.round(bytesPerS * (d.queueMs ?? DEFAULT_QUEUE_MS) / 1000), burst)
  return ['tbf', 'rate', `${Math.round(d.rateMbit * 1000)}kbit`, 'burst', String(burst), 'limit', String(limit)]
}

interface Reply { id?: number, ok?: boolean, error?: string, event?: string, [k: string]: unknown }

class Access implements EmulatedAccess {
  readonly #ns: Netns
  readonly #opts: EmulateOptions
  readonly #base: number
  readonly #child: ChildProcess
  readonly #waiters = new Map<number, (r: Reply) => void>()
  #ready: ((r: Reply) => void) | undefined
  #nextId = 1
  #exited = false
  #stopped = false
  #stderr = ''
  profile: AccessProfile
  readonly tun: { up: string, down: string }

  constructor (ns: Netns, opts: EmulateOptions, base: number, tun: { up: string, down: string }, child: ChildProcess) {
    this.#ns = ns
    this.#opts = opts
    this.#base = base
    this.tun = tun
    this.#child = child
    this.profile = opts.profile
    child.once('exit', () => {
      this.#exited = true
      for (const w of this.#waiters.values()) w({ ok: false, error: `delay line exited: ${this.#stderr.trim()}` })
      this.#waiters.clear()
      this.#ready?.({ ok: false, error: `delay line exited before ready: ${this.#stderr.trim()}` })
    })
    child.stderr?.on('data', (b: Buffer) => { this.#stderr = (this.#stderr + b.toString()).slice(-4000) })
    createInterface({ input: child.stdout! }).on('line', (l) => { this.#onLine(l) })
  }

  get pid (): number { return this.#child.pid ?? -1 }

  async start (): Promise<void> {
    const ready = await new Promise<Reply>((resolve) => {
      this.#ready = resolve
      setTimeout(() => { resolve({ ok: false, error: `delay line not ready after ${START_TIMEOUT_MS} ms` }) }, START_TIMEOUT_MS).unref()
    })
    this.#ready = undefined
    if (ready.event !== 'ready') throw new Error(ready.error ?? 'delay line failed to start')
    const ns = this.#ns
    const o = this.#opts
    for (const dev of [this.tun.up, this.tun.down]) await ns.exec(['ip', 'link', 'set', dev, 'up'])
    const routes: Array<[string, number, string]> = [[o.cpeSide, this.#base, this.tun.up], [o.coreSide, this.#base + 1, this.tun.down]]
    for (const fam of ['-4', '-6']) {
      for (const [iif, table, dev] of routes) {
        await ns.exec(['ip', fam, 'route', 'add', 'default', 'dev', dev, 'table', String(table)])
        await ns.exec(['ip', fam, 'route', 'add', 'blackhole', 'default', 'table', String(table), 'metric', '4294967295'])
        await ns.exec(['ip', fam, 'rule', 'add', 'iif', iif, 'lookup', String(table), 'pref', String(1000 + table)])
      }
    }
    await this.#applyRates(this.profile)
  }

  async setProfile (p: AccessProfile): Promise<void> {
    await this.#request({ cmd: 'set', ...lineParams(p) })
    await this.#applyRates(p)
    this.profile = p
  }

  async setBlackhole (on: boolean): Promise<void> {
    await this.#request({ cmd: 'blackhole', on })
  }

  async stats (): Promise<EmulationStats> {
    const r = await this.#request({ cmd: 'stats' })
    return { up: counters(r['up']), down: counters(r['down']), cpu: r['cpu'] as EmulationStats['cpu'], timer: r['timer'] as EmulationStats['timer'] }
  }

  async stop (): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    if (!this.#exited && this.#child.pid !== undefined) {
      const gone = once(this.#child, 'exit', { signal: AbortSignal.timeout(2_000) }).catch(() => undefined)
      try { process.kill(this.#child.pid, 'SIGTERM') } catch { /* already gone */ }
      await gone
      if (!this.#exited) {
        try { process.kill(this.#child.pid, 'SIGKILL') } catch { /* already gone */ }
      }
    }
    for (const fam of ['-4', '-6']) {
      for (const table of [this.#base, this.#base + 1]) {
        await this.#ns.exec(['ip', fam, 'rule', 'del', 'pref', String(1000 + table)]).catch(() => '')
        await this.#ns.exec(['ip', fam, 'route', 'flush', 'table', String(table)]).catch(() => '')
      }
    }
  }

  async #applyRates (p: AccessProfile): Promise<void> {
    for (const [dev, d] of [[this.tun.up, p.up], [this.tun.down, p.down]] as const) {
      const tbf = tbfArgs(d)
      if (tbf === undefined) await this.#ns.exec(['tc', 'qdisc', 'del', 'dev', dev, 'root']).catch(() => '')
      else await this.#ns.exec(['tc', 'qdisc', 'replace', 'dev', dev, 'root', ...tbf])
    }
  }

  #onLine (line: string): void {
    let r: Reply
    try { r = JSON.parse(line) as Reply } catch { return }
    if (r.event === 'ready') { this.#ready?.(r); return }
    if (typeof r.id !== 'number') return
    const w = this.#waiters.get(r.id)
    this.#waiters.delete(r.id)
    w?.(r)
  }

  async #request (cmd: Record<string, unknown>): Promise<Reply> {
    if (this.#exited || this.#stopped) throw new Error(`delay line (pid ${this.pid}) is not running: ${this.#stderr.trim()}`)
    const id = this.#nextId++
    const reply = new Promise<Reply>((resolve) => {
      this.#waiters.set(id, resolve)
      setTimeout(() => { this.#waiters.delete(id); resolve({ ok: false, error: `no reply to ${String(cmd['cmd'])} in ${CONTROL_TIMEOUT_MS} ms` }) },
        CONTROL_TIMEOUT_MS).unref()
    })
    this.#child.stdin?.write(JSON.stringify({ id, ...cmd }) + '\n')
    const r = await reply
    if (r.ok !== true) throw new Error(`delay line: ${r.error ?? 'command failed'}`)
    return r
  }
}

function counters (raw: unknown): DirectionCounters {
  const s = raw as {
    packets: number,
    dropped: number,
    forwarded: number,
    queued: number,
    errorSumMs: number,
    errorMaxMs: number,
    reader: { poolReads: number, drained: number }
  }
  return {
    packets: s.packets,
    dropped: s.dropped,
    forwarded: s.forwarded,
    queued: s.queued,
    meanErrorMs: s.forwarded > 0 ? s.errorSumMs / s.forwarded : 0,
    maxErrorMs: s.errorMaxMs,
    reader: { poolReads: s.reader.poolReads, drained: s.reader.drained }
  }
}
