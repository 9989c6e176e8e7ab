/**
 * Entry point of `hybrid-cpe` (bin → dist/cpe/src/main.js). The only file that touches the process:
 * argv/env, signals, exit code, crash handlers.
 *
 *   SIGTERM / SIGINT  → stop: readiness off, stop accepting (new LAN connections flow natively),
 *                       drain ≤ limits.drainTimeoutMs, remove rules, exit 0
 *   SIGHUP            → reload: re-read and validate the file; on failure keep the running config
 *   uncaughtException / unhandledRejection → log fatal, exit 1 (the supervisor restarts us; the nft
 *                       holder exits with us, so LAN traffic fails open)
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runDaemonCli } from '../../shared/src/config/cli.ts'
import { createLogger } from '../../shared/src/log.ts'
import { createCpe } from './cpe.ts'
import { ConfigSchema, ENV_PREFIX } from './config.ts'

const NAME = 'hybrid-cpe'

/** The package version, from the nearest package.json above this file (source or dist/). */
function packageVersion (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
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

const crashLog = createLogger({ level: 'fatal', name: NAME })
function crash (kind: string) {
  return (err: unknown): void => {
    crashLog.fatal({ err }, kind)
    process.exit(1)
  }
}
process.on('uncaughtException', crash('uncaught exception'))
process.on('unhandledRejection', crash('unhandled rejection'))

const controller = new AbortController()
const stop = (): void => { controller.abort() }
process.once('SIGTERM', stop)
process.once('SIGINT', stop)

const version = packageVersion()
const code = await runDaemonCli({
  name: NAME,
  version,
  schema: ConfigSchema,
  envPrefix: ENV_PREFIX,
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
    const service = createCpe(config, {
      log,
      version,
      commit: process.env['HYBRID_COMMIT'] ?? 'unknown',
      requestReload: control.reload
    })
    await service.start()
    return service
  }
})
process.exitCode = code
// Nothing else should keep the loop alive after stop; make sure a stray handle cannot hang exit.
setTimeout(() => { process.exit(code) }, 2000).unref()
