/**
 * A kernel profile owned by a daemon while it runs: sysctls set at start and written back at stop
 * (also when the start fails half-way). Used by the concentrator (`kernel.*`, docs/failover.md
 * "Concentrator kernel profile"); the CPE's failover settings have the same shape.
 *
 * Pure part: `tcpProfileSettings` (which settings, validated), `restoreList`, the sysctl argv.
 * Thin I/O part: `SysctlProfile`, which reads and writes through an injected CommandRunner (tests:
 * a recording runner, or `prefixedRunner(['ip', 'netns', 'exec', ns])`).
 *
 * The three TCP/MPTCP settings and why they belong together:
 * - `net.mptcp.stale_loss_cnt` (kernel default 4): retransmission intervals without progress
 *   before the MPTCP scheduler declares a subflow stale and moves data off it;
 * - `net.ipv4.tcp_rto_max_ms` (default 120000): cap of the RTO back-off, so a subflow whose path
 *   revived is retried within that cap instead of after minutes of exponential back-off;
 * - `net.ipv4.tcp_retries2` (default 15): retransmissions before the subflow is given up. A small
 *   RTO cap with 15 retries gives a dead subflow up within seconds — and the in-kernel path
 *   manager does not re-create a closed subflow — so a cap below 120000 needs tcpRetries2.
 *
 * And one that decides how long a re-injection waits (docs/failover.md, "Where the stall went"):
 * - `net.ipv4.tcp_wmem` max field (default 4 MiB): the send-buffer auto-tuning cap. On a DSL
 *   blackhole the sender re-injects what was in flight on DSL over LTE, but behind the LTE
 *   subflow's unsent backlog — up to the send buffer. A 1 MiB cap halved the stall in the lab with
 *   the same throughput. Only the max field is set; min and default are kept (clamped to the max).
 */
import { ConfigError, HybridError } from '../errors.ts'
import type { CheckProblem } from '../config/problem.ts'
import type { CommandRunner } from './command.ts'
import type { JournalRecorder } from './crash-journal.ts'

export interface SysctlSetting { readonly key: string, readonly value: string }

/** A setting whose value is computed from the current one (one field of a multi-value sysctl). */
export interface DerivedSysctlSetting { readonly key: string, readonly derive: (current: string) => string }

/** What a profile asks for: a fixed value or one derived from the value found at start. */
export type SysctlRequest = SysctlSetting | DerivedSysctlSetting

/** The value of a request given the current one. Throws what `derive` throws. */
export function resolveSetting (s: SysctlRequest, current: string): string {
  return 'value' in s ? s.value : s.derive(current)
}

/** Sysctl values compared field by field: `sysctl -n` prints tcp_wmem with tabs, a profile with spaces. */
export const sameSysctlValue = (a: string, b: string): boolean => normaliseSysctl(a) === normaliseSysctl(b)
/** A sysctl value with its fields separated by one space (as `sysctl -n` prints it, trimmed). */
export const normaliseSysctl = (v: string): string => v.trim().split(/\s+/).join(' ')

/**
 * `net.ipv4.tcp_wmem` / `tcp_rmem` with the max field replaced: `min default max`, min and
 * default clamped to the new max. Throws HybridError HYBRID_ERR_CMD_OUTPUT when `current` is not
 * three integers.
 */
export function withTcpMemMax (current: string, max: number, key = 'net.ipv4.tcp_wmem'): string {
  const m = /^\s*(\d+)\s+(\d+)\s+(\d+)\s*$/.exec(current)
  if (m === null) {
    throw new HybridError('HYBRID_ERR_CMD_OUTPUT', `${key}: expected "min default max", read ${JSON.stringify(current)}`,
      { detail: { key } })
  }
  const min = Math.min(Number(m[1]), max)
  const def = Math.min(Number(m[2]), max)
  return `${min} ${def} ${max}`
}

/** A setting as applied: the value before (written back at stop) and the value set. */
export interface SavedSetting { readonly key: string, readonly before: string, readonly after: string }

export interface TcpProfileInput {
  readonly staleLossCnt?: number | undefined
  readonly rtoMaxMs?: number | undefined
  readonly tcpRetries2?: number | undefined
  readonly tcpWmemMax?: number | undefined
}

/** The kernel default of `net.ipv4.tcp_rto_max_ms`; a cap below it needs `tcpRetries2`. */
export const RTO_MAX_DEFAULT_MS = 120_000

/**
 * The settings of a profile in the order they are set (unset keys: left alone). `section` names the
 * config section in errors (`kernel`, `failover.kernel`). Throws ConfigError HYBRID_ERR_CONFIG_INVALID
 * (detail.key `<section>.tcpRetries2`) for rtoMaxMs below 120000 without tcpRetries2.
 */
export function tcpProfileSettings (k: TcpProfileInput, section: string): SysctlRequest[] {
  if (tcpProfileProblems(k, section.split('.')).length > 0) {
    const key = `${section}.tcpRetries2`
    throw new ConfigError('HYBRID_ERR_CONFIG_INVALID',
      `${key}: required with ${section}.rtoMaxMs below ${RTO_MAX_DEFAULT_MS} (a small RTO cap with the default 15 retries gives up a dead subflow within seconds, for good)`, { detail: { key } })
  }
  const out: SysctlRequest[] = []
  if (k.staleLossCnt !== undefined) out.push({ key: 'net.mptcp.stale_loss_cnt', value: String(k.staleLossCnt) })
  // retries before the cap: never a moment with a small cap and few retries
  if (k.tcpRetries2 !== undefined) out.push({ key: 'net.ipv4.tcp_retries2', value: String(k.tcpRetries2) })
  if (k.rtoMaxMs !== undefined) out.push({ key: 'net.ipv4.tcp_rto_max_ms', value: String(k.rtoMaxMs) })
  const wmemMax = k.tcpWmemMax
  if (wmemMax !== undefined) out.push({ key: 'net.ipv4.tcp_wmem', derive: (current) => withTcpMemMax(current, wmemMax) })
  return out
}

/** The config check's view of `tcpProfileSettings`' refusal: problems under `path` (e.g. ['failover', 'kernel']). */
export function tcpProfileProblems (k: TcpProfileInput, path: readonly string[]): CheckProblem[] {
  return k.rtoMaxMs !== undefined && k.rtoMaxMs < RTO_MAX_DEFAULT_MS && k.tcpRetries2 === undefined
    ? [{
        path: [...path, 'tcpRetries2'],
        message: `required with /${path.join('/')}/rtoMaxMs below ${RTO_MAX_DEFAULT_MS} (a small RTO cap with the default 15 retries gives up a dead subflow within seconds, for good)`
      }]
    : []
}

/** What to write back at stop: the saved values of the settings that were changed, in reverse order. */
export function restoreList (saved: readonly SavedSetting[]): SysctlSetting[] {
  return saved.filter((s) => !sameSysctlValue(s.before, s.after)).map((s) => ({ key: s.key, value: s.before })).reverse()
}

export const sysctlWriteArgv = (s: SysctlSetting): string[] => ['sysctl', '-qw', `${s.key}=${s.value}`]
export const sysctlReadArgv = (key: string): string[] => ['sysctl', '-n', key]

export interface SysctlProfileOptions {
  readonly run: CommandRunner
  /** Called once per setting changed or written back (the caller logs it). */
  readonly onChange?: (change: { key: string, from: string, to: string, phase: 'apply' | 'restore' }) => void
  /** Each change is recorded here before it is made and forgotten once written back (crash-journal.ts). */
  readonly journal?: JournalRecorder
}

/**
 * Applies settings and remembers what it changed; `restore()` writes the previous values back, in
 * reverse order. A failing `apply()` restores what it had set before rethrowing.
 */
export class SysctlProfile {
  readonly #o: SysctlProfileOptions
  #saved: SavedSetting[] = []

  constructor (options: SysctlProfileOptions) {
    this.#o = options
  }

  /** The settings applied so far (before/after), for status output. */
  get saved (): readonly SavedSetting[] { return this.#saved }

  async apply (settings: readonly SysctlRequest[]): Promise<void> {
    try {
      for (const s of settings) {
        const before = normaliseSysctl(await this.#o.run(sysctlReadArgv(s.key)))
        const after = resolveSetting(s, before)
        if (!sameSysctlValue(before, after)) {
          this.#o.journal?.record({ kind: 'sysctl', key: s.key, before })
          await this.#o.run(sysctlWriteArgv({ key: s.key, value: after }))
          this.#o.onChange?.({ key: s.key, from: before, to: after, phase: 'apply' })
        }
        this.#saved.push({ key: s.key, before, after })
      }
    } catch (err) {
      await this.restore().catch(() => {})
      throw err
    }
  }

  /** Write back every changed setting (each attempted; the first failure is rethrown at the end). Idempotent. */
  async restore (): Promise<void> {
    const set = new Map(this.#saved.map((s) => [s.key, s.after]))
    const list = restoreList(this.#saved)
    this.#saved = []
    const errors: unknown[] = []
    for (const s of list) {
      try {
        await this.#o.run(sysctlWriteArgv(s))
        this.#o.journal?.forget({ kind: 'sysctl', key: s.key, before: s.value })
        this.#o.onChange?.({ key: s.key, from: set.get(s.key) ?? '', to: s.value, phase: 'restore' })
      } catch (err) { errors.push(err) }
    }
    if (errors.length > 0) throw errors[0]
  }
}
