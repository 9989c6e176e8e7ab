/**
 * Convert mode (RFC 8803, issue #6) in a built lab: the concentrator's configuration with a Transport
 * Converter listener next to the SOCKS5 one, the CPE agent's configuration for `mode: convert`, and
 * the TFO sysctls both ends need.
 *
 * TFO choice (docs/convert.md "Measured"): cookie-less TFO on the trusted lab access. cpe
 * `net.ipv4.tcp_fastopen=1` (client) with `concentrator.fastOpenNoCookie: true` (TCP_FASTOPEN_NO_COOKIE
 * on the CPE's MPTCP socket: data in the very first SYN, no cookie round trip); hag
 * `net.ipv4.tcp_fastopen=3` with `fastOpenNoCookie: true` on the listeners (the server takes SYN
 * data without a cookie from them only). So the first connection to the converter already carries
 * the Convert message and the LAN client's first bytes in its SYN; no warm-up.
 */
import { ADDRESS_PLAN, type AddressPlan } from './addresses.ts'
import { LAB_CONCENTRATOR_PORTS, labConcentratorConfig, type LabConcentratorOptions } from './daemons.ts'
import type { Lab } from './topology.ts'

export interface ConvertConcentratorOptions extends LabConcentratorOptions {
  /** Merged over the concentrator's `convert` section (cookie, errorRateLimit, downstreamMptcp). */
  readonly convert?: Readonly<Record<string, unknown>>
  /** Leave the Convert listeners out (the converter is "unreachable", SOCKS5 still listens). */
  readonly withoutConverter?: boolean
}

/** The lab concentrator with SOCKS5 (1080) and Convert (1234) listeners on the service address, v4 and v6, cookie-less TFO. Pure. */
export function convertConcentratorConfig (options: ConvertConcentratorOptions = {}): Record<string, unknown> {
  const p: AddressPlan = options.plan ?? ADDRESS_PLAN
  const listener = (host: string, mode: 'socks5' | 'convert'): Record<string, unknown> =>
    ({ host, port: LAB_CONCENTRATOR_PORTS[mode], mode, fastOpenNoCookie: true })
  const modes: Array<'socks5' | 'convert'> = options.withoutConverter === true ? ['socks5'] : ['socks5', 'convert']
  return {
    ...labConcentratorConfig(options),
    listeners: modes.flatMap((m) => [listener(p.service.v4, m), listener(p.service.v6, m)]),
    convert: { ...options.convert }
  }
}

export interface ConvertCpeOptions {
  /** Converter port; default LAB_CONCENTRATOR_PORTS.convert (a wrong one makes the converter unreachable). */
  readonly port?: number
  readonly fallback?: 'socks5' | 'direct' | 'none'
  /** TFO towards converter and SOCKS5 listener. Default true; false: the Convert message follows the handshake. */
  readonly fastOpen?: boolean
  /** Default true (see the file comment). */
  readonly fastOpenNoCookie?: boolean
  readonly logLevel?: string
  /** Merged over the `convert` section. */
  readonly convert?: Readonly<Record<string, unknown>>
}

/** The CPE agent in mode convert; the lab already installed source routing and the LTE endpoint (rules off). Pure. */
export function convertCpeConfig (plan: AddressPlan, options: ConvertCpeOptions = {}): Record<string, unknown> {
  return {
    log: { level: options.logLevel ?? 'debug' },
    management: { listen: { host: '127.0.0.1', port: 9091 }, token: 'test-token-0123456789' },
    mode: 'convert',
    uplinks: [
      { name: 'dsl', interface: plan.access.dsl.cpeIf, role: 'dsl' },
      { name: 'lte', interface: plan.access.lte.cpeIf, role: 'lte' }
    ],
    multipath: { rules: 'off' },
    concentrator: {
      host: plan.service.v4,
      port: LAB_CONCENTRATOR_PORTS.socks5,
      fastOpen: options.fastOpen ?? true,
      fastOpenNoCookie: options.fastOpenNoCookie ?? true
    },
    convert: { port: options.port ?? LAB_CONCENTRATOR_PORTS.convert, fallback: options.fallback ?? 'socks5', ...options.convert },
    intercept: { lanInterfaces: [plan.lan.cpeIf] },
    limits: { drainTimeoutMs: 2000 }
  }
}

/** TFO sysctls: cpe client (1), hag client + server (3); cookie-less acceptance is per listener. */
export async function enableLabFastOpen (lab: Lab): Promise<void> {
  await lab.ns.cpe.exec(['sysctl', '-qw', 'net.ipv4.tcp_fastopen=1'])
  await lab.ns.hag.exec(['sysctl', '-qw', 'net.ipv4.tcp_fastopen=3'])
}
