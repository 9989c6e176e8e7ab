/**
 * The command line both daemons share. main.ts calls `runDaemonCli` with process state and sets
 * `process.exitCode` from the result; everything here is testable without a process.
 *
 * Exit codes: 0 ok, 1 runtime failure (or `--validate` found problems), 2 configuration or usage
 * error when starting.
 */
import { parseArgs } from 'node:util'
import { once } from 'node:events'
import type { TObject } from 'typebox'
import { stringify as toYaml } from 'yaml'
import type { DestinationStream } from 'pino'
import { ConfigError, HybridError, isHybridError } from '../errors.ts'
import { createLogger, type Logger } from '../log.ts'
import { LogLevels, type LogLevel } from '../config/common-schema.ts'
import { loadConfig, type LoadedConfig } from '../config/load-config.ts'
import { formatProblem, type ConfigCheck, type ConfigProblem } from '../config/problem.ts'
import { redactConfig } from '../config/redact.ts'

export const ExitCode = { Ok: 0, Runtime: 1, Config: 2 } as const
export type ExitCode = typeof ExitCode[keyof typeof ExitCode]

export interface TextOut { write: (text: string) => unknown }

export interface RunningService<C = unknown> {
  stop: () => Promise<void>
  /** Apply a new configuration, already loaded and validated (SIGHUP, management API). */
  reload?: (config: C) => Promise<void>
  /** A reload was refused before `reload` (the file did not load or validate); e.g. count it. */
  reloadFailed?: (err: unknown) => void
}

/** Handed to `start`: lets the service trigger the same reload path as SIGHUP (e.g. POST /api/v1/reload). */
export interface DaemonControl {
  /** Re-read and validate the configuration (same file, env and flags), then `service.reload`. Rejects with the ConfigError when refused. */
  reload: () => Promise<void>
}

export interface DaemonCliOptions<T extends TObject> {
  /** Program name (`hybrid-cpe`, `hybrid-concentrator`): usage text and the `name` of log lines. */
  name: string
  version: string
  schema: T
  /** `HYBRID_CPE_` or `HYBRID_CONC_`. */
  envPrefix: string
  /**
   * The daemon's cross-field checks, run by the loader after the schema: the same for `--validate`,
   * start and every reload (SIGHUP, POST /api/v1/reload).
   */
  check?: ConfigCheck<LoadedConfig<T>>
  /**
   * `--print-rules`: the host rules this configuration installs (the CPE's nft table and policy
   * routing), for operators who install them themselves (`intercept.rules: external`). A daemon
   * without it refuses the flag.
   */
  printRules?: (config: LoadedConfig<T>) => string
  /** Arguments after the script name (`process.argv.slice(2)`). */
  argv: readonly string[]
  env: Readonly<Record<string, string | undefined>>
  stdout: TextOut
  stderr: TextOut
  /** Aborted by main.ts on SIGTERM/SIGINT: the service is stopped and the result is 0. */
  signal: AbortSignal
  /** Where log lines go; default `stdout`. */
  logDestination?: DestinationStream
  /**
   * Registers the reload trigger (main.ts: SIGHUP); returns the unregister function. Each call of
   * the handler re-reads the configuration and calls `service.reload` (one reload at a time).
   */
  onReloadRequest?: (handler: () => void) => () => void
  start: (config: LoadedConfig<T>, log: Logger, control: DaemonControl) => Promise<RunningService<LoadedConfig<T>>>
}

const cliOptions = {
  config: { type: 'string', short: 'c' },
  validate: { type: 'boolean' },
  'print-config': { type: 'boolean' },
  'print-rules': { type: 'boolean' },
  'log-level': { type: 'string' },
  set: { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' }
} as const

export function usage (name: string, envPrefix: string, printRules = false): string {
  const rules = printRules ? '      --print-rules        print the nft ruleset and policy-routing commands this configuration installs, and exit\n' : ''
  return `Usage: ${name} [options]

Options:
  -c, --config <file>      YAML configuration file
      --validate           check the configuration, print every problem; exit 0 if valid, 2 if not
      --print-config       print the effective configuration (secrets redacted) and exit
${rules}      --log-level <level>  ${LogLevels.join(' | ')} (overrides log.level)
      --set <key=value>    override one option, e.g. --set limits.idleTimeoutMs=60000 (repeatable)
  -h, --help               show this help
  -V, --version            show the version

Precedence: defaults < file < environment (${envPrefix}LOG__LEVEL=debug) < command line.
Exit codes: 0 ok, 1 runtime failure, 2 configuration or usage error.
`
}

type ParsedArgs = ReturnType<typeof parseArgs<{ options: typeof cliOptions }>>['values']

/** Parse argv, load the configuration and run the daemon until `signal` aborts. */
export async function runDaemonCli<T extends TObject> (opts: DaemonCliOptions<T>): Promise<ExitCode> {
  let args: ParsedArgs
  try {
    args = parseArgs({ args: [...opts.argv], options: cliOptions, strict: true, allowPositionals: false }).values
  } catch (err) {
    opts.stderr.write(`${opts.name}: ${(err as Error).message}\nTry --help.\n`)
    return ExitCode.Config
  }
  if (args.help === true) return done(opts.stdout, usage(opts.name, opts.envPrefix, opts.printRules !== undefined), ExitCode.Ok)
  if (args['print-rules'] === true && opts.printRules === undefined) {
    opts.stderr.write(`${opts.name}: --print-rules: this daemon installs no host rules of its own\nTry --help.\n`)
    return ExitCode.Config
  }
  if (args.version === true) return done(opts.stdout, `${opts.name} ${opts.version}\n`, ExitCode.Ok)

  const load = (): LoadedConfig<T> => loadConfig(opts.schema, {
    file: args.config,
    env: opts.env,
    envPrefix: opts.envPrefix,
    argv: { set: args.set, logLevel: args['log-level'] },
    check: opts.check
  })
  let config: LoadedConfig<T>
  try {
    config = load()
  } catch (err) {
    opts.stderr.write(describeLoadError(opts.name, err))
    return ExitCode.Config
  }
  if (args.validate === true) return done(opts.stdout, 'ok\n', ExitCode.Ok)
  const redacted = redactConfig(opts.schema, config)
  if (args['print-config'] === true) return done(opts.stdout, toYaml(redacted), ExitCode.Ok)
  if (args['print-rules'] === true && opts.printRules !== undefined) return done(opts.stdout, opts.printRules(config), ExitCode.Ok)
  return runService(opts, config, redacted, load)
}

function done (out: TextOut, text: string, code: ExitCode): ExitCode {
  out.write(text)
  return code
}

function describeLoadError (name: string, err: unknown): string {
  if (!isHybridError(err)) return `${name}: ${String(err)}\n`
  const problems = (err.detail?.['problems'] ?? []) as ConfigProblem[]
  const lines = problems.map((p) => `  ${formatProblem(p)}\n`).join('')
  return `${name}: ${err.code}: ${problems.length} configuration problem(s):\n${lines}`
}

function levelOf (config: unknown): LogLevel {
  const level = (config as { log?: { level?: unknown } }).log?.level
  return LogLevels.find((l) => l === level) ?? 'info'
}

/** Serialised reloads: re-read, validate, then hand the new configuration to the service. */
function createReloader<T extends TObject> (log: Logger, load: () => LoadedConfig<T>,
  service: () => RunningService<LoadedConfig<T>> | undefined): () => Promise<void> {
  let chain: Promise<void> = Promise.resolve()
  const reloadOnce = async (): Promise<void> => {
    const s = service()
    if (s === undefined) throw new HybridError('HYBRID_ERR_INTERNAL', 'reload requested before the service started')
    let next: LoadedConfig<T>
    try {
      next = load()
    } catch (err) {
      const problems = isHybridError(err) ? err.detail?.['problems'] : undefined
      log.error({ err, problems }, 'reload: configuration refused; keeping the running one')
      s.reloadFailed?.(err)
      throw err
    }
    if (s.reload === undefined) {
      log.warn('reload: not supported by this daemon; restart to apply changes')
      return
    }
    await s.reload(next)
  }
  return async () => {
    const run = chain.then(reloadOnce)
    chain = run.catch(() => {})
    await run
  }
}

async function runService<T extends TObject> (opts: DaemonCliOptions<T>, config: LoadedConfig<T>, redacted: unknown,
  load: () => LoadedConfig<T>): Promise<ExitCode> {
  const destination = opts.logDestination ?? (opts.stdout as DestinationStream)
  const log = createLogger({ level: levelOf(config), name: opts.name, destination })
  log.info({ version: opts.version, config: redacted }, 'starting')
  let service: RunningService<LoadedConfig<T>> | undefined
  const reload = createReloader(log, load, () => service)
  try {
    service = await opts.start(config, log, { reload })
  } catch (err) {
    log.fatal({ err }, 'start failed')
    // The log is JSON on stdout, for collectors; a person (or systemd's journal of stderr) gets one line.
    opts.stderr.write(`${opts.name}: start failed: ${isHybridError(err) ? `${err.code}: ` : ''}${(err as Error).message ?? String(err)}\n`)
    return err instanceof ConfigError ? ExitCode.Config : ExitCode.Runtime
  }
  log.info('started')
  const unregister = opts.onReloadRequest?.(() => {
    log.info('reload requested')
    reload().catch(() => {}) // logged by the reloader or the service
  })
  if (!opts.signal.aborted) await once(opts.signal, 'abort')
  unregister?.()
  log.info('stopping')
  try {
    await service.stop()
  } catch (err) {
    log.error({ err }, 'stop failed')
    return ExitCode.Runtime
  }
  log.info('stopped')
  return ExitCode.Ok
}
