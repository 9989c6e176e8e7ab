/**
 * Cross-field checks of the CPE configuration (what the schema cannot express). The loader runs
 * them after the schema (cpe/src/main.ts passes `check: cpeConfigProblems`), so `--validate`, start
 * and every reload (SIGHUP, POST /api/v1/reload) refuse the same configurations with the same code
 * (HYBRID_ERR_CONFIG_INVALID), each problem naming its key and the file line, variable or flag that
 * set it. Pure: no system access. The components keep their own guards (tests build them without
 * the loader); those call the same functions where there is one.
 *
 * Checks that need the system stay at start (docs/configuration.md, "Checked at start only").
 */
import { mgmtLimitProblems } from '../../../shared/src/mgmt/connection-budget.ts'
import { MAX_PATHS, PATH_NAME } from '../../../shared/src/metrics/common-metrics.ts'
import type { CheckProblem } from '../../../shared/src/config/problem.ts'
import { tcpProfileProblems } from '../../../shared/src/sys/sysctl-profile.ts'
import type { Config, CpeConfig } from './config.ts'
import { interceptProblems } from '../intercept/intercept-ruleset.ts'
import { unsupportedReason } from '../steering/steering-plan.ts'
import { duplicateUplinkProblems } from '../uplink/uplink-plan.ts'

export function cpeConfigProblems (config: CpeConfig): CheckProblem[] {
  const out: CheckProblem[] = []
  if (config.mode === 'convert' && config.convert.port === undefined) {
    out.push({
      path: ['convert', 'port'],
      message: 'required in mode convert (RFC 8803 assigns no port)'
    })
  }
  if (config.socks5.username !== undefined && config.socks5.password === undefined) {
    out.push({
      path: ['socks5', 'password'],
      message: 'required with /socks5/username'
    })
  }
  if (config.failover.enabled && !config.health.enabled) {
    out.push({
      path: ['failover', 'enabled'],
      message: 'needs /health/enabled (failover acts on path-health transitions)'
    })
  }
  if (config.failover.enabled) out.push(...tcpProfileProblems(config.failover.kernel, ['failover', 'kernel']))
  out.push(...mgmtLimitProblems(config.management.limits))
  out.push(...interceptProblems({ intercept: config.intercept as Config['intercept'] })) // read only
  out.push(...uplinkProblems(config))
  out.push(...steeringProblems(config))
  out.push(...udpProblems(config))
  return out
}

/** UDP interception shares the agent's nft table and policy routing: its mark, table and rule must not collide. */
function udpProblems (config: CpeConfig): CheckProblem[] {
  const u = config.udp
  if (!u.enabled) return []
  const out: CheckProblem[] = []
  const i = config.intercept
  if (u.port === undefined) out.push({ path: ['udp', 'port'], message: 'required with /udp/enabled (the concentrator\'s CONNECT-UDP port)' })
  if (i.rules === 'off') out.push({ path: ['udp', 'enabled'], message: 'needs /intercept/rules managed or external (the UDP marking lives in the interception table)' })
  if (u.mark === i.mark || u.mark === i.socketMark) out.push({ path: ['udp', 'mark'], message: 'must differ from /intercept/mark and /intercept/socketMark' })
  if (u.routeTable === i.routeTable) out.push({ path: ['udp', 'routeTable'], message: 'must differ from /intercept/routeTable' })
  if (u.rulePriority === i.rulePriority) out.push({ path: ['udp', 'rulePriority'], message: 'must differ from /intercept/rulePriority' })
  if (config.uplinks.some((l) => l.interface === u.device) || i.lanInterfaces.includes(u.device)) {
    out.push({ path: ['udp', 'device'], message: 'names an uplink or LAN interface (the agent creates this TUN device itself)' })
  }
  return out
}

function uplinkProblems (config: CpeConfig): CheckProblem[] {
  const out: CheckProblem[] = []
  if (config.uplinks.length > MAX_PATHS) {
    out.push({
      path: ['uplinks'],
      message: `at most ${MAX_PATHS} uplinks (each is a path label of the metrics), got ${config.uplinks.length}`
    })
  }
  config.uplinks.forEach((u, i) => {
    if (!PATH_NAME.test(u.name)) {
      out.push({
        path: ['uplinks', i, 'name'],
        message: `must match ${PATH_NAME.source} (used as the metrics' path label)`
      })
    }
  })
  const specs = config.uplinks.map((u, i) => ({ name: u.name, interface: u.interface, table: u.table ?? config.multipath.tableBase + i }))
  out.push(...duplicateUplinkProblems(specs))
  return out
}

function steeringProblems (config: CpeConfig): CheckProblem[] {
  const out: CheckProblem[] = []
  const names = new Set(config.uplinks.map((u) => u.name))
  config.steering.classes.forEach((c, i) => {
    if (!names.has(c.access)) out.push({ path: ['steering', 'classes', i, 'access'], message: `no uplink named ${c.access}` })
  })
  const mode = config.steering.mode
  if (mode !== undefined) {
    // The primary uplink (initial subflow) is the first dsl, else the first (uplink-plan.ts).
    const reason = unsupportedReason(mode,
      { healthEnabled: config.health.enabled, primaryIsDsl: config.uplinks.some((u) => u.role === 'dsl'), others: config.uplinks.length - 1 })
    if (reason !== undefined) out.push({ path: ['steering', 'mode'], message: reason })
  }
  return out
}
