/**
 * `hybrid-cpe --print-rules`: what the agent installs on the host for this configuration, so an
 * operator with `intercept.rules: external` can install the same (docs/cpe-control-plane.md).
 * Pure: reads nothing from the host.
 */
import type { CpeConfig, Config } from '../config/config.ts'
import { buildInterceptRouting, buildInterceptRuleset, buildUdpRouting } from './intercept-ruleset.ts'

export function printRules (frozen: CpeConfig): string {
  const config = frozen as Config
  const out: string[] = []
  if (config.intercept.rules === 'off') {
    return '# intercept.rules is off: the agent installs no interception rules.\n'
  }
  out.push('# nftables (nft -f): the agent holds this table with "flags owner", so it vanishes with the agent.')
  out.push(buildInterceptRuleset({ intercept: config.intercept, concentrator: { host: config.concentrator.host }, udp: config.udp }).trimEnd())
  out.push('', '# policy routing of TPROXY-marked TCP to the local listeners:')
  for (const argv of buildInterceptRouting(config.intercept).add) out.push(argv.join(' '))
  if (config.udp.enabled) {
    out.push('', `# LAN UDP: the agent adds these itself once its TUN device ${config.udp.device} is up (in every intercept.rules mode);`,
      '# the route vanishes with the device, and marked UDP is then routed natively:')
    for (const argv of buildUdpRouting(config.udp, config.intercept.ipv6).add) out.push(`# ${argv.join(' ')}`)
  }
  return out.join('\n') + '\n'
}
