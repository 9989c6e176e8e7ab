/**
 * What a reload may change in a running agent (pure). Applied in place: log level, limits,
 * `socks5.*`, `concentrator.*` (new connections), `intercept.bypass` and `intercept.lanInterfaces`
 * (one atomic ruleset replace), `multipath.mode`. Everything else (uplinks, listener port, marks,
 * routing tables, management server, signalling mode, mptcp policy, path health `health.*` and
 * failover `failover.*`, steering `steering.*` — probe sockets, steering rules, class rules and the
 * kernel profile are set up once at start; the steering mode changes at run time through
 * `PUT /api/v1/steering`) needs a restart: such a reload is
 * refused as a whole with HYBRID_ERR_CONFIG_INVALID naming the first key that differs, and the
 * running configuration stays.
 */
import { refuseStartOnlyChange, sameConfigValue, type StartOnlyKeys } from '../../../shared/src/config/start-only.ts'
import type { Config } from './config.ts'

export interface ReloadPlan {
  rulesetChanged: boolean
  modeChanged: boolean
}

const FIXED: StartOnlyKeys<Config> = [
  ['mode', (c) => c.mode],
  ['mptcp', (c) => c.mptcp],
  ['stateDir', (c) => c.stateDir],
  ['dataPlane', (c) => c.dataPlane],
  ['management', (c) => c.management],
  ['uplinks', (c) => c.uplinks],
  ['multipath.rules', (c) => c.multipath.rules],
  ['multipath.subflows', (c) => c.multipath.subflows],
  ['multipath.addAddrAccepted', (c) => c.multipath.addAddrAccepted],
  ['multipath.tableBase', (c) => c.multipath.tableBase],
  ['multipath.rulePriority', (c) => c.multipath.rulePriority],
  ['multipath.looseRpFilter', (c) => c.multipath.looseRpFilter],
  ['multipath.pollIntervalMs', (c) => c.multipath.pollIntervalMs],
  ['intercept.rules', (c) => c.intercept.rules],
  ['intercept.port', (c) => c.intercept.port],
  ['intercept.ipv6', (c) => c.intercept.ipv6],
  ['intercept.mark', (c) => c.intercept.mark],
  ['intercept.socketMark', (c) => c.intercept.socketMark],
  ['intercept.routeTable', (c) => c.intercept.routeTable],
  ['intercept.rulePriority', (c) => c.intercept.rulePriority],
  // the TUN device, its routing and the flow table are set up once (docs/udp.md)
  ['udp', (c) => c.udp],
  ['health', (c) => c.health],
  ['failover', (c) => c.failover],
  // the mode can change at run time through PUT /api/v1/steering (docs/steering.md)
  ['steering', (c) => c.steering]
]

/** Throws ConfigError (detail.key) when `next` changes something only a restart can apply. */
export function planReload (current: Config, next: Config): ReloadPlan {
  refuseStartOnlyChange(FIXED, current, next)
  return {
    rulesetChanged: !sameConfigValue(current.intercept, next.intercept) || current.concentrator.host !== next.concentrator.host,
    modeChanged: current.multipath.mode !== next.multipath.mode
  }
}
