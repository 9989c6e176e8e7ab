/**
 * What the CPE agent needs from its host, derived from its configuration (checked at process start
 * by shared/src/sys/prerequisites.ts, before anything is installed):
 *
 * - `intercept.rules: managed` → `nft` (the `nft -i` owner-table holder and its `nft -c` checks),
 *   `ip` (fwmark policy routing) and a kernel that accepts tproxy, `socket transparent` and owner
 *   tables;
 * - `multipath.rules: managed` → `ip` (source routing, MPTCP endpoints and limits) and `sysctl`
 *   (rp_filter); `off` → still `ip` (the uplink observer reads `ip -j addr` / `ip -j mptcp endpoint`);
 * - `mptcp.onUnavailable: fail` → kernel MPTCP (every upstream connection is an MPTCP socket);
 * - `udp.enabled` → `/dev/net/tun` (LAN UDP is routed into a TUN device) and `ip` (its policy routing).
 */
import type { Requirement } from '../../shared/src/sys/prerequisites.ts'
import type { CpeConfig } from './config/config.ts'

export function cpePrerequisites (config: CpeConfig): Requirement[] {
  const out: Requirement[] = []
  if (config.intercept.rules === 'managed') {
    const why = 'LAN interception (intercept.rules: managed)'
    out.push({ kind: 'binary', name: 'nft', for: why }, { kind: 'binary', name: 'ip', for: why }, { kind: 'nft-tproxy', owner: true, for: why })
  }
  if (config.multipath.rules === 'managed') {
    const why = 'uplink routing (multipath.rules: managed)'
    out.push({ kind: 'binary', name: 'ip', for: why }, { kind: 'binary', name: 'sysctl', for: why })
  } else {
    out.push({ kind: 'binary', name: 'ip', for: 'uplink observation (multipath.rules: off)' })
  }
  if (config.mptcp.onUnavailable === 'fail') out.push({ kind: 'mptcp', for: 'MPTCP towards the concentrator (mptcp.onUnavailable: fail)' })
  if (config.udp.enabled) {
    const why = 'LAN UDP over the hybrid line (udp.enabled)'
    out.push({ kind: 'tun', for: why }, { kind: 'binary', name: 'ip', for: why })
  }
  return out
}
