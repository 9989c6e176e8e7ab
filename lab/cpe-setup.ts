/**
 * The CPE agent in the lab's cpe namespace with a generated configuration (end-to-end tests of the
 * agent): uplinks dsl0/lte0, interception on lan0, management on 127.0.0.1:9091, the concentrator on
 * the service address. `cpeLabConfig()` is pure; `startCpeAgent()` starts the built agent through
 * `startDaemon()` (daemons.ts; needs `npx tsc -b`), `enableLabTfo()` sets the TFO sysctls (client in
 * cpe, client + server in hag), `kernelStateSnapshot()` captures what the agent may change in cpe.
 */
import { readdir } from 'node:fs/promises'
import { startDaemon, LAB_CONCENTRATOR_PORTS, type DaemonHandle } from './daemons.ts'
import { LAB_MGMT_PORTS } from './prometheus-config.ts'
import type { Lab } from './topology.ts'
import type { AddressPlan } from './addresses.ts'

export type CpeLabMode = 'socks5' | 'convert' | 'transparent'

export interface CpeLabOptions {
  /** Default `socks5`. */
  readonly mode?: CpeLabMode
  /** TCP Fast Open towards the concentrator. Default true. */
  readonly fastOpen?: boolean
  /** `socks5.pipelining`. Default `auto`. */
  readonly pipelining?: 'auto' | 'always' | 'never'
  /** Concentrator address and port. Default the service address, port 1080. */
  readonly concentrator?: { readonly host?: string, readonly port?: number }
  /** `intercept.bypass` (destinations, ports, sources). Default none. */
  readonly bypass?: { readonly destinations?: readonly string[], readonly ports?: readonly number[], readonly sources?: readonly string[] }
  /**
   * `multipath.rules`. Default `off`: the lab already installed source routing and the LTE endpoint.
   * With `managed` the agent adds its own (tables `tableBase` + i) and restores everything at stop.
   */
  readonly multipathRules?: 'off' | 'managed'
  /** Merged into `multipath` (e.g. `{ subflows: 3 }`). */
  readonly multipath?: Readonly<Record<string, unknown>>
  /** Merged into `limits`. Default `{ drainTimeoutMs: 2000 }`. */
  readonly limits?: Readonly<Record<string, unknown>>
  /** Merged into `socks5`. */
  readonly socks5?: Readonly<Record<string, unknown>>
  readonly logLevel?: string
}

export const LAB_CPE_TOKEN = 'lab-cpe-token-0123456789'

/** The agent's configuration for the lab's cpe namespace. Pure. */
export function cpeLabConfig (plan: AddressPlan, o: CpeLabOptions = {}): Record<string, unknown> {
  const multipath = { rules: o.multipathRules ?? 'off', ...o.multipath }
  return {
    mode: o.mode ?? 'socks5',
    log: { level: o.logLevel ?? 'info' },
    management: { listen: { host: '127.0.0.1', port: LAB_MGMT_PORTS.cpe }, token: LAB_CPE_TOKEN },
    uplinks: [
      { name: 'dsl', interface: plan.access.dsl.cpeIf, role: 'dsl' },
      { name: 'lte', interface: plan.access.lte.cpeIf, role: 'lte' }
    ],
    multipath,
    concentrator: {
      host: o.concentrator?.host ?? plan.service.v4,
      port: o.concentrator?.port ?? LAB_CONCENTRATOR_PORTS.socks5,
      fastOpen: o.fastOpen ?? true
    },
    socks5: { pipelining: o.pipelining ?? 'auto', ...o.socks5 },
    ...(o.mode === 'convert' ? { convert: { port: LAB_CONCENTRATOR_PORTS.convert } } : {}),
    intercept: { lanInterfaces: [plan.lan.cpeIf], bypass: bypassOf(o.bypass) },
    limits: { drainTimeoutMs: 2000, ...o.limits }
  }
}

function bypassOf (b: CpeLabOptions['bypass']): Record<string, unknown> {
  return { destinations: [...(b?.destinations ?? [])], ports: [...(b?.ports ?? [])], sources: [...(b?.sources ?? [])] }
}

/** Start the built agent in cpe with `cpeLabConfig(lab.plan, options)`; resolves once `/readyz` is 200. */
export async function startCpeAgent (lab: Lab, options: CpeLabOptions = {}): Promise<DaemonHandle> {
  return startDaemon({ daemon: 'cpe', config: cpeLabConfig(lab.plan, options), ns: lab.ns.cpe, spawn: (argv) => lab.spawn('cpe', argv) })
}

/** TFO with cookies: client bit in cpe, client + server bits in hag (the concentrator's listeners). */
export async function enableLabTfo (lab: Lab): Promise<void> {
  await lab.ns.cpe.exec(['sysctl', '-qw', 'net.ipv4.tcp_fastopen=1'])
  await lab.ns.hag.exec(['sysctl', '-qw', 'net.ipv4.tcp_fastopen=3'])
}

/** The cpe namespace's nft ruleset, v4/v6 rules, every route table, MPTCP endpoints and limits. */
export async function kernelStateSnapshot (lab: Lab): Promise<Record<string, string>> {
  const cmds: Record<string, string[]> = {
    nft: ['nft', 'list', 'ruleset'],
    rule4: ['ip', '-4', 'rule', 'show'],
    rule6: ['ip', '-6', 'rule', 'show'],
    route4: ['ip', '-4', 'route', 'show', 'table', 'all'],
    route6: ['ip', '-6', 'route', 'show', 'table', 'all'],
    endpoints: ['ip', 'mptcp', 'endpoint', 'show'],
    limits: ['ip', 'mptcp', 'limits', 'show']
  }
  const out: Record<string, string> = {}
  for (const [k, argv] of Object.entries(cmds)) out[k] = await lab.ns.cpe.exec(argv)
  return out
}

/** Open file descriptors of a process (entries of /proc/<pid>/fd), read in the root namespace. */
export async function openFds (pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length
}
