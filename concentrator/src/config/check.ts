/**
 * Cross-field checks of the concentrator configuration (what the schema cannot express). The loader
 * runs them after the schema (concentrator/src/main.ts passes `check: concentratorConfigProblems`),
 * so `--validate`, start and every reload (SIGHUP, POST /api/v1/reload) refuse the same
 * configurations with the same code, each problem naming its key and the file line, variable or flag
 * that set it. The components keep their own guards (tests build them without the loader); those
 * call the same functions where there is one.
 *
 * Pure except one cheap read: `auth.credentialsFile` is read and parsed here too (start and every
 * reload read it again, so a file that changes after --validate is still caught). Checks that need
 * more of the system stay at start (docs/configuration.md, "Checked at start only").
 */
import { readFileSync } from 'node:fs'
import { Resolver } from 'node:dns'
import { isHybridError } from '../../../shared/src/errors.ts'
import type { CheckProblem } from '../../../shared/src/config/problem.ts'
import { mgmtLimitProblems } from '../../../shared/src/mgmt/connection-budget.ts'
import { tcpProfileProblems } from '../../../shared/src/sys/sysctl-profile.ts'
import type { ConcentratorConfig } from './config.ts'
import { buildPrefixSet } from '../policy/ranges.ts'
import { parseCredentials } from '../auth/credentials.ts'
import { planProblems } from '../modes/hag-plan.ts'
import { joinProblems } from './join.ts'
import { workersProblems } from './workers.ts'

export interface ConcentratorCheckDeps {
  /** Reads `auth.credentialsFile` (tests); default readFileSync. */
  readFile?: (path: string) => string
}

export function concentratorConfigProblems (config: ConcentratorConfig, deps: ConcentratorCheckDeps = {}): CheckProblem[] {
  const out: CheckProblem[] = []
  out.push(...mgmtLimitProblems(config.management.limits))
  out.push(...tcpProfileProblems(config.kernel, ['kernel']))
  out.push(...listenerProblems(config))
  out.push(...prefixProblems(['auth', 'trustedPrefixes'], config.auth.trustedPrefixes))
  const p = config.policy
  out.push(...prefixProblems(['policy', 'ownAddresses'], p.ownAddresses))
  out.push(...prefixProblems(['policy', 'hostAddresses', 'except'], p.hostAddresses.except))
  out.push(...prefixProblems(['policy', 'infrastructurePrefixes'], p.infrastructurePrefixes))
  out.push(...prefixProblems(['policy', 'denyPrefixes'], p.denyPrefixes))
  out.push(...prefixProblems(['policy', 'allowPrefixes'], p.allowPrefixes))
  out.push(...dnsServerProblems(p.dns.servers))
  if (config.transparent.enabled) out.push(...planProblems(config.transparent))
  out.push(...joinProblems(config))
  out.push(...workersProblems(config))
  if (config.auth.credentialsFile !== undefined) out.push(...credentialsProblems(config.auth.credentialsFile, deps.readFile ?? ((f) => readFileSync(f, 'utf8'))))
  return out
}

function prefixProblems (path: readonly string[], texts: readonly string[] | undefined): CheckProblem[] {
  const list = texts ?? []
  const { invalid } = buildPrefixSet(list)
  return invalid.map((text) => ({
    path: [...path, list.indexOf(text)],
    message: `invalid prefix ${JSON.stringify(text)} (a.b.c.d/n, x::/n or an address)`
  }))
}

/**
 * Two listeners (or one and the management API or the CONNECT-UDP listener) on the same address and port: the second bind fails at start
 * (EADDRINUSE). Port 0 (ephemeral) never clashes.
 */
function listenerProblems (config: ConcentratorConfig): CheckProblem[] {
  const out: CheckProblem[] = []
  const seen = new Map<string, string>()
  const endpoints = [
    ...config.listeners.map((l, i) => ({ host: l.host, port: l.port, path: ['listeners', i, 'port'] })),
    { host: config.management.listen.host, port: config.management.listen.port, path: ['management', 'listen', 'port'] },
    ...(config.udp === undefined ? [] : [{ host: config.udp.listen.host, port: config.udp.listen.port, path: ['udp', 'listen', 'port'] }])
  ]
  for (const e of endpoints) {
    if (e.port === 0) continue
    const key = `${e.host} ${e.port}`
    const first = seen.get(key)
    if (first !== undefined) out.push({ path: e.path, message: `${e.host} port ${e.port} is already used by ${first}` })
    else seen.set(key, '/' + e.path.join('/'))
  }
  return out
}

/** The same check c-ares does at start (`setServers` throws on a malformed entry); no query is sent. */
function dnsServerProblems (servers: readonly string[]): CheckProblem[] {
  const out: CheckProblem[] = []
  const r = new Resolver()
  servers.forEach((s, i) => {
    try {
      r.setServers([s])
    } catch {
      out.push({ path: ['policy', 'dns', 'servers', i], message: `invalid DNS server ${JSON.stringify(s)} (ip, ip:port or [ipv6]:port)` })
    }
  })
  return out
}

function credentialsProblems (file: string, read: (path: string) => string): CheckProblem[] {
  const path = ['auth', 'credentialsFile']
  let text: string
  try {
    text = read(file)
  } catch (err) {
    return [{ path, message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }]
  }
  try {
    parseCredentials(text, file)
  } catch (err) {
    return [{ path, message: isHybridError(err) ? err.message : String(err) }]
  }
  return []
}
