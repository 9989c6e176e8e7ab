/**
 * The built daemons inside lab namespaces (end-to-end tests, benchmarks): render a configuration,
 * start `dist/<daemon>/src/main.js` as a child process in a namespace, wait for `/readyz` through
 * the management API, fetch metrics, stop it by PID (SIGTERM, then SIGKILL after a deadline).
 *
 * The management server lives inside the namespace, so every HTTP request runs `curl` there
 * (`ip netns exec`); the test process itself stays in the root namespace. Logs (JSON lines on
 * stdout, plus stderr) go to a file next to the configuration, for failure diagnostics.
 *
 * Needs `npx tsc -b` first (`npm run test:e2e` and `npm run bench` build).
 */
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import type { Netns } from './netns.ts'
import { ADDRESS_PLAN, ACCESS_NAMES, type AddressPlan } from './addresses.ts'
import { LAB_MGMT_PORTS } from './prometheus-config.ts'
import { REPO_ROOT, type Lab } from './topology.ts'
import { daemonLaunch, envWords } from '../shared/src/node-flags.ts'

/** Ports of the concentrator's listeners in the lab (the convert port is reserved for the Convert listener). */
export const LAB_CONCENTRATOR_PORTS = { socks5: 1080, convert: 1234 } as const

export interface DaemonSpec {
  /** `concentrator` or `cpe`: runs `dist/<name>/src/main.js`. */
  readonly daemon: 'concentrator' | 'cpe'
  /** Configuration document (written as YAML). */
  readonly config: Record<string, unknown>
  /** Namespace the daemon runs in: used for the management API requests (curl). */
  readonly ns: Netns
  /** Starts argv in the namespace; the caller tracks the child (lab.spawn kills it at teardown). */
  readonly spawn: (argv: readonly string[]) => ChildProcess
  /** RLIMIT_NOFILE for the daemon (via `ulimit -n` in a shell that execs node). Default: inherited. */
  readonly nofile?: number
  /** Extra node flags, e.g. `--cpu-prof` (after the deployed ones). */
  readonly nodeFlags?: readonly string[]
  /**
   * Launch with the daemon's deployed node flags and environment (shared/src/node-flags.ts: the
   * CPE's footprint settings; none for the concentrator). Default true; false: Node's defaults.
   */
  readonly deployedFlags?: boolean
  /** Extra environment variables (`KEY=value`, through `env`, which execs node: the PID stays node's). */
  readonly env?: Readonly<Record<string, string>>
  /** Deadline for `/readyz` to answer 200. Default 15 s. */
  readonly readyTimeoutMs?: number
  /**
   * Directory for the config and the log, owned by the caller (a lab session's log folder). Without
   * it the daemon gets a temporary one that `stop()` removes after a clean exit (code 0) and keeps,
   * with the path in the log tail, otherwise.
   */
  readonly dir?: string
}

export interface DaemonHandle {
  readonly pid: number
  readonly configFile: string
  readonly logFile: string
  /** Directory holding the config and the log (and CPU profiles when asked). */
  readonly dir: string
  /** `http://host:port` of the management server (inside the namespace). */
  readonly mgmtUrl: string
  /** GET a management path inside the namespace; returns status and body. */
  get: (path: string) => Promise<{ status: number, body: string }>
  /** The Prometheus text of /metrics. */
  metricsText: () => Promise<string>
  /** Sum of the samples of `name` whose labels include every given label (0 if none). */
  metric: (name: string, labels?: Readonly<Record<string, string>>) => Promise<number>
  /** The last bytes of the log file (still answered after `stop()` removed a temporary directory). */
  logTail: (bytes?: number) => string
  /** SIGTERM, then SIGKILL after `graceMs` (default 5000); resolves with the exit code (null if killed). */
  stop: (graceMs?: number) => Promise<number | null>
}

/** How much of a removed log `logTail()` still answers. */
const LOG_TAIL_KEPT = 64 * 1024

const MAIN = (daemon: string): string => join(REPO_ROOT, 'dist', daemon, 'src', 'main.js')

/** Start a built daemon and wait until `/readyz` says ready. On failure it is killed and the error names the log. */
export async function startDaemon (spec: DaemonSpec): Promise<DaemonHandle> {
  const main = MAIN(spec.daemon)
  if (!existsSync(main)) throw new Error(`${main} missing: run npx tsc -b first`)
  const { dir, ownDir } = daemonDir(spec)
  const configFile = join(dir, `${spec.daemon}.yaml`)
  const logFile = join(dir, `${spec.daemon}.log`)
  writeFileSync(configFile, stringify(spec.config), { mode: 0o600 })
  const deployed = spec.deployedFlags === false ? { nodeFlags: [], env: {} } : daemonLaunch(spec.daemon)
  const env = envWords({ ...deployed.env, ...spec.env })
  const node = [...(env.length === 0 ? [] : ['env', ...env]), process.execPath, ...deployed.nodeFlags, ...(spec.nodeFlags ?? []), main, '--config', configFile]
  const argv = spec.nofile === undefined
    ? node
    : ['sh', '-c', `ulimit -n ${spec.nofile} && exec "$@"`, 'sh', ...node]
  const spawnedAt = Date.now()
  const child = spec.spawn(argv)
  const log = createWriteStream(logFile, { flags: 'a' })
  child.stdout?.pipe(log, { end: false })
  child.stderr?.pipe(log, { end: false })
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  const pid = child.pid
  if (pid === undefined) throw new Error(`${spec.daemon}: spawn failed`)
  const mgmt = (spec.config['management'] as { listen?: { host?: string, port?: number } } | undefined)?.listen
  const host = mgmt?.host ?? '127.0.0.1'
  const mgmtUrl = `http://${host.includes(':') ? `[${host}]` : host}:${mgmt?.port ?? LAB_MGMT_PORTS[spec.daemon]}`
  const get = async (path: string): Promise<{ status: number, body: string }> => {
    const out = await spec.ns.exec(['curl', '-sS', '--max-time', '5', '-w', '\n%{http_code}', `${mgmtUrl}${path}`], { timeoutMs: 8000 })
    const cut = out.lastIndexOf('\n')
    return { status: Number(out.slice(cut + 1)), body: out.slice(0, cut) }
  }
  let removedTail: string | undefined
  const logTail = (bytes = 4000): string => {
    if (removedTail !== undefined) return removedTail.slice(-bytes)
    try { return readFileSync(logFile, 'utf8').slice(-bytes) } catch { return '' }
  }
  // A temporary directory goes after a clean exit; a failed daemon's logs stay for diagnosis.
  const cleanUp = async (code: number | null): Promise<void> => {
    // The daemon's children may hold its stdout after it died (a SIGKILLed supervisor's workers
    // log their own drain): stop copying into the log before ending it, and discard the rest,
    // or a late chunk is a 'write after end' thrown in the test process.
    for (const out of [child.stdout, child.stderr]) {
      out?.unpipe(log)
      out?.resume()
    }
    await new Promise((resolve) => { log.end(resolve) })
    if (!ownDir || code !== 0) return
    removedTail = logTail(LOG_TAIL_KEPT)
    rmSync(dir, { recursive: true, force: true })
  }
  let stopping: Promise<number | null> | undefined
  const stop = async (graceMs = 5000): Promise<number | null> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        signal(pid, 'SIGTERM')
        const timer = setTimeout(() => { signal(pid, 'SIGKILL') }, graceMs)
        const code = await exited
        clearTimeout(timer)
        await cleanUp(code)
        return code
      }
      await cleanUp(child.exitCode)
      return child.exitCode
    })()
    return stopping
  }
  const handle: DaemonHandle = {
    pid,
    configFile,
    logFile,
    dir,
    mgmtUrl,
    get,
    metricsText: async () => (await get('/metrics')).body,
    metric: async (name, labels = {}) => sumMetric(await handle.metricsText(), name, labels),
    logTail,
    stop
  }
  try {
    await waitReady(handle, exited, spec.readyTimeoutMs ?? 15_000)
    await checkOwnAnswer(handle, child, spawnedAt)
  } catch (err) {
    await stop(500)
    throw new Error(`${spec.daemon} did not become ready: ${(err as Error).message}\n--- ${logFile} ---\n${logTail()}`)
  }
  return handle
}

/** The caller's directory, or a temporary one the handle owns. */
function daemonDir (spec: DaemonSpec): { dir: string, ownDir: boolean } {
  if (spec.dir === undefined) return { dir: mkdtempSync(join(tmpdir(), `hat-${spec.daemon}-`)), ownDir: true }
  mkdirSync(spec.dir, { recursive: true })
  return { dir: spec.dir, ownDir: false }
}

async function waitReady (h: DaemonHandle, exited: Promise<number | null>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let gone: number | null | undefined
  exited.then((c) => { gone = c }, () => {})
  let last = ''
  while (Date.now() < deadline) {
    if (gone !== undefined) throw new Error(`exited with ${String(gone)}`)
    try {
      const r = await h.get('/readyz')
      if (r.status === 200) return
      last = `${r.status} ${r.body}`
    } catch (err) {
      last = (err as Error).message
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`no ready answer within ${timeoutMs} ms (last: ${last.trim()})`)
}

/** An older daemon still bound to the management address would answer too: check whose answer it was. */
async function checkOwnAnswer (h: DaemonHandle, child: ChildProcess, spawnedAt: number): Promise<void> {
  const startedAt = await h.metric('process_start_time_seconds')
  if (startedAt > 0 && startedAt * 1000 < spawnedAt - 2000) throw new Error(`${h.mgmtUrl} is answered by a daemon started before this one`)
  if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited with ${String(child.exitCode ?? child.signalCode)}`)
}

function signal (pid: number, sig: NodeJS.Signals): void {
  try { process.kill(pid, sig) } catch { /* already gone */ }
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

/** Sum of the samples named `name` in Prometheus text whose labels include `labels`. Pure. */
export function sumMetric (text: string, name: string, labels: Readonly<Record<string, string>> = {}): number {
  let sum = 0
  for (const line of text.split('\n')) {
    const m = SAMPLE.exec(line)
    if (m === null || m[1] !== name) continue
    const have = new Map([...(m[2] ?? '').matchAll(LABEL)].map((l) => [l[1], l[2]]))
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) sum += Number(m[3])
  }
  return sum
}

export interface LabConcentratorOptions {
  /** Merged over `limits` (e.g. short handshake and idle timeouts). */
  readonly limits?: Readonly<Record<string, unknown>>
  /** Merged over `policy` (e.g. `dns: { servers: [...] }`). */
  readonly policy?: Readonly<Record<string, unknown>>
  /** The `overload` section (docs/overload.md); absent: the defaults. */
  readonly overload?: Readonly<Record<string, unknown>>
  readonly logLevel?: string
  readonly plan?: AddressPlan
}

/**
 * The concentrator's configuration for the lab's hag: SOCKS5 on the service address (v4 and v6,
 * port 1080; 1234 stays free for a Convert listener), management on hag's internet-side address
 * (LAB_METRICS_TARGETS), the CPE's access addresses trusted (no authentication), the service
 * address refused as a destination. The lab's inet ranges are documentation ranges, which the
 * default policy allows. Pure.
 */
export function labConcentratorConfig (options: LabConcentratorOptions = {}): Record<string, unknown> {
  const p = options.plan ?? ADDRESS_PLAN
  const cpeAddresses = ACCESS_NAMES.flatMap((n) => [`${p.access[n].cpeSide.cpe.v4}/32`, `${p.access[n].cpeSide.cpe.v6}/128`])
  return {
    log: { level: options.logLevel ?? 'info' },
    management: { listen: { host: p.internet.hag.v4, port: LAB_MGMT_PORTS.concentrator } },
    mptcp: { onUnavailable: 'fail' },
    listeners: [
      { host: p.service.v4, port: LAB_CONCENTRATOR_PORTS.socks5, mode: 'socks5' },
      { host: p.service.v6, port: LAB_CONCENTRATOR_PORTS.socks5, mode: 'socks5' }
    ],
    auth: { trustedPrefixes: cpeAddresses },
    policy: { ownAddresses: [p.service.v4, p.service.v6], ...options.policy },
    limits: { ...options.limits },
    ...(options.overload === undefined ? {} : { overload: options.overload }),
    probe: labProbeConfig(p)
  }
}

/** UDP port of the concentrator's path-health probe responder in the lab (the schema default). */
export const LAB_PROBE_PORT = 7047

/**
 * The concentrator's path-health probe responder in the lab (docs/path-health.md): on the service
 * address, v4 and v6, answering the CPE's access addresses. On in every lab mode (the CPE's health
 * probing and failover are, lab-daemons-config.ts).
 */
export function labProbeConfig (plan: AddressPlan = ADDRESS_PLAN): Record<string, unknown> {
  return {
    enabled: true,
    listen: [plan.service.v4, plan.service.v6].map((host) => ({ host, port: LAB_PROBE_PORT })),
    trustedPrefixes: ACCESS_NAMES.flatMap((n) => [`${plan.access[n].cpeSide.cpe.v4}/32`, `${plan.access[n].cpeSide.cpe.v6}/128`])
  }
}

/** Start the concentrator in the lab's hag namespace with `labConcentratorConfig(options)`. */
export async function startConcentrator (lab: Lab, options: LabConcentratorOptions = {}): Promise<DaemonHandle> {
  return startDaemon({
    daemon: 'concentrator',
    config: labConcentratorConfig({ plan: lab.plan, ...options }),
    ns: lab.ns.hag,
    spawn: (argv) => lab.spawn('hag', argv)
  })
}
