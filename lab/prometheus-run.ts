/**
 * Prometheus in the lab (`npm run lab -- --with-prometheus`, docs/observability.md "In the lab"):
 * `/usr/bin/prometheus` runs in the inet namespace (hag on the same link; the CPE reached via hag
 * and DSL) with the configuration of prometheus-config.ts scraping both daemons, storage in a
 * temporary directory, listening on inet's server address port 9099. It is a lab process: killed
 * by PID at teardown, and by `npm run lab:down` (which kills every process of the lab namespaces).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnLogged } from './mode-runners.ts'
import { LAB_METRICS_TARGETS, labPrometheusArgs, renderLabPrometheusConfig, scrapeTarget, type LabScrapeTargets } from './prometheus-config.ts'
import type { Lab } from './topology.ts'

export const LAB_PROMETHEUS_PORT = 9099
export const PROMETHEUS_BINARY = 'prometheus'

export interface LabPrometheus {
  readonly pid: number
  /** `http://host:port`, reachable inside the inet namespace. */
  readonly url: string
  readonly dir: string
  /** GET a path (e.g. `/api/v1/query?query=up`) inside the inet namespace; returns the body. */
  get: (path: string) => Promise<string>
  /** Instant query through the HTTP API: the `data.result` array. */
  query: (expr: string) => Promise<Array<{ metric: Record<string, string>, value: [number, string] }>>
  logTail: (bytes?: number) => string
  /** SIGTERM (SIGKILL after 3 s), then remove `dir` unless `keepFiles`. Idempotent. */
  stop: (options?: { keepFiles?: boolean }) => Promise<void>
}

export interface LabPrometheusStartOptions {
  readonly targets?: LabScrapeTargets
  readonly scrapeIntervalSeconds?: number
  readonly readyTimeoutMs?: number
}

/** Why Prometheus cannot run here (undefined when it can). */
export function prometheusUnavailable (): string | undefined {
  try {
    execFileSync(PROMETHEUS_BINARY, ['--version'], { stdio: 'ignore' })
    return undefined
  } catch {
    return `'${PROMETHEUS_BINARY}' is not installed (Debian: apt-get install prometheus)`
  }
}

/** The address Prometheus listens on in the lab: inet's first server address. Pure. */
export function labPrometheusListen (lab: Pick<Lab, 'plan'>): string {
  return scrapeTarget(lab.plan.internet.servers[0]!.v4, LAB_PROMETHEUS_PORT)
}

/** Start Prometheus in the lab's inet namespace and wait until it is ready. */
export async function startLabPrometheus (lab: Lab, options: LabPrometheusStartOptions = {}): Promise<LabPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), `${lab.prefix}prometheus-`))
  const configFile = join(dir, 'prometheus.yml')
  const logFile = join(dir, 'prometheus.log')
  writeFileSync(configFile,
    renderLabPrometheusConfig({ targets: options.targets ?? LAB_METRICS_TARGETS, scrapeIntervalSeconds: options.scrapeIntervalSeconds ?? 5 }))
  const listen = labPrometheusListen(lab)
  const child = spawnLogged(lab, 'inet', [PROMETHEUS_BINARY, ...labPrometheusArgs({ configFile, storageDir: join(dir, 'data'), listen })], logFile)
  const pid = child.pid
  if (pid === undefined) throw new Error('prometheus: spawn failed')
  let exited = false
  const gone = new Promise<void>((resolve) => { child.once('exit', () => { exited = true; resolve() }) })
  const url = `http://${listen}`
  const get = async (path: string): Promise<string> => lab.ns.inet.exec(['curl', '-sS', '--max-time', '5', '--fail', `${url}${path}`],
    { timeoutMs: 8000 })
  const logTail = (bytes = 3000): string => { try { return readFileSync(logFile, 'utf8').slice(-bytes) } catch { return '' } }
  let stopping: Promise<void> | undefined
  const stop = async (stopOptions: { keepFiles?: boolean } = {}): Promise<void> => {
    stopping ??= (async () => {
      if (!exited) {
        signal(pid, 'SIGTERM')
        const timer = setTimeout(() => { signal(pid, 'SIGKILL') }, 3000)
        await gone
        clearTimeout(timer)
      }
      if (stopOptions.keepFiles !== true) rmSync(dir, { recursive: true, force: true })
    })()
    await stopping
  }
  const query = async (expr: string): Promise<Array<{ metric: Record<string, string>, value: [number, string] }>> => {
    const body = JSON.parse(await get(`/api/v1/query?query=${encodeURIComponent(expr)}`)) as {
      status: string,
      data?: { result?: Array<{ metric: Record<string, string>, value: [number, string] }> }
    }
    if (body.status !== 'success') throw new Error(`prometheus query ${expr}: ${JSON.stringify(body)}`)
    return body.data?.result ?? []
  }
  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000)
  for (;;) {
    if (exited) throw new Error(`prometheus exited (files kept in ${dir}):\n${logTail()}`)
    if (await get('/-/ready').then(() => true, () => false)) break
    if (Date.now() > deadline) { await stop({ keepFiles: true }); throw new Error(`prometheus not ready:\n${logTail()}`) }
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  return { pid, url, dir, get, query, logTail, stop }
}

function signal (pid: number, sig: NodeJS.Signals): void {
  try { process.kill(pid, sig) } catch { /* already gone */ }
}
