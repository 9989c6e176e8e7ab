/**
 * Daemon configurations for the lab's proxy modes (`npm run lab -- --mode socks5|convert|transparent`):
 * the CPE agent in cpe and the concentrator in hag, one pair per mode. Pure: returns objects,
 * starts nothing (mode-runners.ts starts them).
 *
 * Common to every mode: management servers on the lab's metrics targets (cpe on its LAN address,
 * hag on its internet-side address: LAB_METRICS_TARGETS, so Prometheus in inet reaches both), the
 * lab's own routing and MPTCP endpoints (`multipath.rules: off`), interception on the LAN interface,
 * path health (probe responder + CPE probing), failover (docs/failover.md) and the same kernel profile
 * on both ends (CPE: failover.kernel, concentrator: kernel; labConcentratorKernelConfig).
 * - socks5: CPE → SOCKS5 listener on the service address, TCP Fast Open (cookie mode: cpe
 *   `tcp_fastopen=1`, hag `=3`, set by the mode runner).
 * - convert: the concentrator adds Convert listeners on LAB_CONCENTRATOR_PORTS.convert; the CPE
 *   speaks RFC 8803 to them with TFO and falls back to SOCKS5.
 * - transparent: the concentrator intercepts the CPE's MPTCP SYNs (transparent-setup.ts); the CPE
 *   dials the destinations directly (no TFO).
 */
import { ConfigError } from '../shared/src/errors.ts'
import { ADDRESS_PLAN, type AddressPlan } from './addresses.ts'
import { LAB_CONCENTRATOR_PORTS, LAB_PROBE_PORT, labConcentratorConfig, labProbeConfig } from './daemons.ts'
import { LAB_MGMT_PORTS } from './prometheus-config.ts'
import { transparentConcentratorConfig } from './transparent-setup.ts'

export const DAEMON_MODES = ['socks5', 'convert', 'transparent'] as const
export type DaemonMode = typeof DAEMON_MODES[number]

/** Bearer token of the CPE's management API in the lab (only POST routes need it). */
export const LAB_CPE_TOKEN = 'lab-token-0123456789abcdef'

export interface LabModeConfigOptions {
  readonly plan?: AddressPlan
  readonly logLevel?: string
  /** Transparent mode's join port (a restart within 60 s needs another one: docs/transparent.md). */
  readonly joinPort?: number
}

/** The CPE agent's configuration for a mode. */
export function labCpeConfig (mode: DaemonMode, options: LabModeConfigOptions = {}): Record<string, unknown> {
  const p = options.plan ?? ADDRESS_PLAN
  return {
    log: { level: options.logLevel ?? 'info' },
    management: { listen: { host: p.lan.cpe.v4, port: LAB_MGMT_PORTS.cpe }, token: LAB_CPE_TOKEN },
    mode,
    uplinks: [
      { name: 'dsl', interface: p.access.dsl.cpeIf, role: 'dsl', table: p.access.dsl.table },
      { name: 'lte', interface: p.access.lte.cpeIf, role: 'lte', table: p.access.lte.table }
    ],
    multipath: { rules: 'off' }, // the lab installed source routing and the LTE endpoint (tables as in the plan)
    health: labHealthConfig(),
    failover: labFailoverConfig(),
    // TFO off: bulk transfers on TFO-opened MPTCP connections can stall on this kernel
    // (docs/mptcp-socket-layer.md, "Kernel issues"); the TFO tests enable it explicitly.
    concentrator: { host: p.service.v4, port: LAB_CONCENTRATOR_PORTS.socks5, fastOpen: false },
    ...(mode === 'convert' ? { convert: { port: LAB_CONCENTRATOR_PORTS.convert, fallback: 'socks5' } } : {}),
    intercept: { lanInterfaces: [p.lan.cpeIf] },
    limits: { drainTimeoutMs: LAB_DRAIN_TIMEOUT_MS }
  }
}

/** The concentrator's configuration for a mode. */
/** Drain deadline of both lab daemons (the mode runner stops them with a 3 s grace). */
export const LAB_DRAIN_TIMEOUT_MS = 2000

export function labModeConcentratorConfig (mode: DaemonMode, options: LabModeConfigOptions = {}): Record<string, unknown> {
  const p = options.plan ?? ADDRESS_PLAN
  const base = { plan: p, ...(options.logLevel !== undefined ? { logLevel: options.logLevel } : {}) }
  const kernel = labConcentratorKernelConfig()
  // Drain within the lab's 3 s stop grace (mode-runners.ts), as the CPE does: with the default 25 s
  // a concentrator stopped with connections open was SIGKILLed and could not restore its settings.
  const limits = (c: Record<string, unknown>): Record<string, unknown> => ({
    ...(c['limits'] as Record<string, unknown> | undefined),
    drainTimeoutMs: LAB_DRAIN_TIMEOUT_MS
  })
  if (mode === 'transparent') {
    const t = transparentConcentratorConfig({ ...base, ...(options.joinPort !== undefined ? { joinPort: options.joinPort } : {}) })
    return { ...t, limits: limits(t), probe: labProbeConfig(p), kernel }
  }
  const c = labConcentratorConfig(base)
  const config: Record<string, unknown> = { ...c, limits: limits(c), kernel }
  if (mode === 'socks5') return config
  const listeners = config['listeners'] as Array<Record<string, unknown>>
  return {
    ...config,
    listeners: [...listeners, ...[p.service.v4, p.service.v6].map((host) => ({ host, port: LAB_CONCENTRATOR_PORTS.convert, mode: 'convert' }))]
  }
}

export { LAB_PROBE_PORT, labProbeConfig } from './daemons.ts'

/**
 * The CPE's path health for the lab (docs/path-health.md): probing on, the fast profile measured
 * there (a probe every 50 ms, adaptive timeout within [100, 250] ms — 100 ms covers the accesses'
 * 50 ms queues on top of DSL's 21 ms RTT —, 3 lost → down: a DSL blackhole is seen in ≈ 0.2 s). Part of every mode's configuration (labCpeConfig),
 * together with failover (labFailoverConfig).
 */
export function labHealthConfig (overrides: Readonly<Record<string, unknown>> = {}): Record<string, unknown> {
  return { enabled: true, port: LAB_PROBE_PORT, intervalMs: 50, minTimeoutMs: 100, timeoutMs: 250, ...overrides }
}

/**
 * The lab's `tcp_wmem` max on both ends (docs/failover.md, "Where the stall went"): 1 MiB. On a DSL
 * blackhole the re-injection over LTE waits behind the LTE subflow's unsent backlog, which the
 * kernel's 4 MiB default lets grow to several MB; 1 MiB halved the stall at the same throughput.
 * `HYBRID_LAB_TCP_WMEM_MAX=<bytes>` sets another cap for A/B runs, `=off` leaves the kernel alone.
 */
export const LAB_TCP_WMEM_MAX = labWmemMax(process.env.HYBRID_LAB_TCP_WMEM_MAX)

/** Parses HYBRID_LAB_TCP_WMEM_MAX: unset → 1 MiB, `off` → undefined, else bytes in [65536, 1 GiB]. Throws ConfigError. */
export function labWmemMax (raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return 1_048_576
  if (raw === 'off') return undefined
  const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN
  if (!Number.isSafeInteger(n) || n < 65_536 || n > 1_073_741_824) {
    throw new ConfigError('HYBRID_ERR_CONFIG_ENV',
      `HYBRID_LAB_TCP_WMEM_MAX: expected bytes between 65536 and 1073741824, or off; got ${JSON.stringify(raw)}`,
      { detail: { key: 'HYBRID_LAB_TCP_WMEM_MAX' } })
  }
  return n
}

const labTcpProfile = (): Record<string, unknown> => ({
  staleLossCnt: 1, rtoMaxMs: 1000, tcpRetries2: 60, ...(LAB_TCP_WMEM_MAX === undefined ? {} : { tcpWmemMax: LAB_TCP_WMEM_MAX })
})

/**
 * Failover in the lab (docs/failover.md): on, with the kernel profile measured there (stale subflow
 * after 1 lossy interval, RTO capped at 1 s with 60 retries so a revived DSL subflow resumes
 * within about a second instead of after the exponential back-off; send buffer capped at
 * LAB_TCP_WMEM_MAX).
 */
export function labFailoverConfig (overrides: Readonly<Record<string, unknown>> = {}): Record<string, unknown> {
  return { enabled: true, kernel: { blackholeTimeout: 0, ...labTcpProfile() }, ...overrides }
}

/**
 * The concentrator's kernel profile in the lab (docs/failover.md, "Concentrator kernel profile"): the
 * CPE's values (labFailoverConfig) on the sending end of the download, so the concentrator's subflow
 * towards a dead DSL address goes stale after one lossy interval and is retried at least every
 * second once DSL is back.
 */
export function labConcentratorKernelConfig (): Record<string, unknown> {
  return labTcpProfile()
}
