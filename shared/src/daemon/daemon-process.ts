/**
 * The process wiring both daemons share (their main.ts files call `runDaemonProcess` and nothing
 * else): argv/env, signals, exit code, crash handlers. Together with the config loader this is the
 * only place outside `*\/src/main.ts` that touches `process`.
 *
 *   SIGTERM / SIGINT  → stop: readiness off, stop accepting, drain ≤ limits.drainTimeoutMs, exit 0.
 *                       During start too: what start already did is undone (stop() waits for start
 *                       to settle, then tears down). A second signal is logged, never fatal (a
 *                       default-action kill would skip the undo); SIGKILL remains the hard stop.
 *   SIGHUP            → reload: re-read and validate the file; on failure keep the running config
 *   uncaughtException / unhandledRejection → log fatal, exit 1 (the supervisor restarts the daemon)
 *
 * Before the service is created, the system prerequisites its configuration declares are checked
 * (shared/src/sys/prerequisites.ts): anything missing is logged as fatal (HYBRID_ERR_PREREQUISITE)
 * and the process exits 1 at once.
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { TObject } from 'typebox'
import { createLogger, type Logger } from '../log.ts'
import { checkPrerequisites, type Requirement } from '../sys/prerequisites.ts'
import { runDaemonCli, type RunningService } from './cli.ts'
import type { LoadedConfig } from '../config/load-config.ts'
import type { ConfigCheck } from '../config/problem.ts'

/** What a daemon's composition root receives besides its configuration. */
export interface DaemonProcessDeps {
  log: Logger
  version: string
  /** Source commit from HYBRID_COMMIT (set by the image build), or 'unknown'. */
  commit: string
  /** Re-read, validate and apply the configuration (the management API's reload route). */
  requestReload: () => Promise<void>
}

type DaemonService<T extends TObject> = RunningService<LoadedConfig<T>> & { start: () => Promise<void> }

export interface DaemonProcessOptions<T extends TObject> {
  /** `hybrid-cpe` or `hybrid-concentrator`. */
  name: string
  schema: T
  envPrefix: string
  /** Cross-field checks run by the loader (`--validate`, start and reload alike). */
  check?: ConfigCheck<LoadedConfig<T>>
  /** The daemon's own `import.meta.url`: the package version is read from the package.json above it. */
  moduleUrl: string
  /** The composition root; may import it lazily, so a failed prerequisite check never loads the data plane. */
  create: (config: LoadedConfig<T>, deps: DaemonProcessDeps) => DaemonService<T> | Promise<DaemonService<T>>
  /** What this configuration needs from the host (binaries, kernel features); checked before `create`. */
  prerequisites?: (config: LoadedConfig<T>) => readonly Requirement[]
  /** `--print-rules` (cli.ts); pure, never touches the host. */
  printRules?: (config: LoadedConfig<T>) => string
}

/** The package version, from the nearest package.json above `moduleUrl` (source or dist/). */
export function packageVersion (moduleUrl: string): string {
  let dir = dirname(fileURLToPath(moduleUrl))
  for (let i = 0; i < 6; i++) {
    const file = join(dir, 'package.json')
    if (existsSync(file)) {
      const v = (JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown }).version
      return typeof v === 'string' ? v : '0.0.0'
    }
    dir = dirname(dir)
  }
  return '0.0.0'
}

/**
 * `service.start()`, unless a stop was requested first (then nothing is started). A stop requested
 * while start runs calls `service.stop()` at once: the daemons' stop() waits for start to settle and
 * then undoes everything it did, so a SIGTERM at any point of start leaves the host as it was.
 * The caller stops the service again when the signal has fired (stop() is idempotent).
 */
export async function startUnlessStopped (service: { start: () => Promise<void>, stop: () => Promise<void> }, signal: AbortSignal,
  log: Logger): Promise<void> {
  if (signal.aborted) { log.warn('stop requested before start: not starting'); return }
  const onAbort = (): void => {
    log.warn('stop requested during start: undoing what start did')
    service.stop().catch((err: unknown) => { log.error({ err }, 'stop during start failed') })
  }
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    await service.start()
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

export async function runDaemonProcess<T extends TObject> (opts: DaemonProcessOptions<T>): Promise<void> {
  const crashLog = createLogger({ level: 'fatal', name: opts.name })
  const crash = (kind: string) => (err: unknown): void => {
    crashLog.fatal({ err }, kind)
    process.exit(1)
  }
  process.on('uncaughtException', crash('uncaught exception'))
  process.on('unhandledRejection', crash('unhandled rejection'))

  const controller = new AbortController()
  const stop = (signal: NodeJS.Signals): void => {
    if (controller.signal.aborted) { crashLog.fatal({ signal }, 'already stopping: signal ignored (SIGKILL stops without cleanup)'); return }
    controller.abort()
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)

  const version = packageVersion(opts.moduleUrl)
  const code = await runDaemonCli({
    name: opts.name,
    version,
    schema: opts.schema,
    envPrefix: opts.envPrefix,
    ...(opts.check === undefined ? {} : { check: opts.check }),
    ...(opts.printRules === undefined ? {} : { printRules: opts.printRules }),
    argv: process.argv.slice(2),
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
    signal: controller.signal,
    onReloadRequest: (handler) => {
      process.on('SIGHUP', handler)
      return () => { process.off('SIGHUP', handler) }
    },
    start: async (config, log, control) => {
      await checkPrerequisites(opts.prerequisites?.(config) ?? [], { path: process.env['PATH'] ?? '' })
      const service = await opts.create(config, { log, version, commit: process.env['HYBRID_COMMIT'] ?? 'unknown', requestReload: control.reload })
      await startUnlessStopped(service, controller.signal, log)
      return service
    }
  })
  process.exitCode = code
  // Nothing else should keep the loop alive after stop; make sure a stray handle cannot hang exit.
  setTimeout(() => { process.exit(code) }, 2000).unref()
}
