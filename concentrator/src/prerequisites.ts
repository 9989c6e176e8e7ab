/**
 * What the concentrator needs from its host, derived from its configuration (checked at process
 * start by shared/src/sys/prerequisites.ts, before anything is bound or installed):
 *
 * - an MPTCP listener with `mptcp.onUnavailable: fail` → kernel MPTCP;
 * - `transparent.enabled` → kernel MPTCP, `ip` (endpoints, limits, fwmark routing), `sysctl`
 *   (`net.mptcp.allow_join_initial_addr_port`), `nft` and a kernel that accepts tproxy and
 *   `socket transparent` — with owner tables for `failMode: open` (the `nft -i` holder).
 * - `join.endpoints` non-empty → kernel MPTCP, `ip` (endpoints, limits) and `sysctl` (the C flag);
 * - `policy.hostAddresses.refuse` (the default) → `ip` (`ip -j address show`, `ip monitor address`:
 *   the host's own addresses, refused as destinations).
 *
 * Without transparent mode, join endpoints and with `policy.hostAddresses.refuse: false` the concentrator execs nothing.
 */
import type { Requirement } from '../../shared/src/sys/prerequisites.ts'
import type { ConcentratorConfig } from './config/config.ts'

export function concentratorPrerequisites (config: ConcentratorConfig): Requirement[] {
  const out: Requirement[] = []
  if (config.mptcp.onUnavailable === 'fail' && config.listeners.some((l) => l.protocol === 'mptcp')) {
    out.push({ kind: 'mptcp', for: 'MPTCP listeners (mptcp.onUnavailable: fail)' })
  }
  if (config.transparent.enabled) {
    const why = 'transparent mode (transparent.enabled)'
    out.push(
      { kind: 'mptcp', for: why },
      { kind: 'binary', name: 'ip', for: why },
      { kind: 'binary', name: 'sysctl', for: why },
      { kind: 'binary', name: 'nft', for: why },
      { kind: 'nft-tproxy', owner: config.transparent.failMode === 'open', for: why }
    )
  }
  if (config.join.endpoints.length > 0 && !config.transparent.enabled) {
    const why = 'scale-out join endpoints (join.endpoints)'
    out.push({ kind: 'mptcp', for: why }, { kind: 'binary', name: 'ip', for: why }, { kind: 'binary', name: 'sysctl', for: why })
  }
  if (config.policy.hostAddresses.refuse && !out.some((r) => r.kind === 'binary' && r.name === 'ip')) {
    out.push({ kind: 'binary', name: 'ip', for: 'own-address refusal (policy.hostAddresses.refuse)' })
  }
  return out
}
