/**
 * Logging with pino: JSON lines on stdout, synchronous by default (an asynchronous destination can
 * lose the last lines on a crash). There is no module-level logger: main.ts creates the root logger
 * and passes it down; components take `childFor(log, 'component')`, connections `connLogger(...)`.
 *
 * Stable keys: component, connId, mode, path, src, dst, bytesUp, bytesDown, err.
 */
import { pino, type DestinationStream, type Logger } from 'pino'
import type { LogLevel } from './config/common-schema.ts'

export type { Logger }

/** Keys whose values never reach a log line, at the top level and up to three levels down. */
const SECRET_KEYS = ['password', 'token', 'authorization', 'secret', 'secrets', 'cookie']

export const REDACT_PATHS: readonly string[] = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`])

export interface CreateLoggerOptions {
  level: LogLevel | 'silent'
  /** Daemon name, logged as `name` on every line. */
  name: string
  /** Default: stdout, synchronous. Tests pass a memory stream. */
  destination?: DestinationStream | NodeJS.WritableStream
}

export function createLogger (options: CreateLoggerOptions): Logger {
  const destination = options.destination ?? pino.destination({ dest: 1, sync: true })
  return pino({
    level: options.level,
    name: options.name,
    redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) }
  }, destination)
}

/** Child logger of one component (`listener`, `relay`, `mgmt` …). */
export function childFor (log: Logger, component: string): Logger {
  return log.child({ component })
}

/** Fields a connection logger may carry; untrusted values go only into these keys. */
export interface ConnLogFields {
  mode?: string
  path?: string
  src?: string
  dst?: string
}

/**
 * Child logger of one connection. Only the known keys of `extra` are copied, so a caller can never
 * build a child from untrusted keys.
 */
export function connLogger (log: Logger, connId: string | number, extra: ConnLogFields = {}): Logger {
  const bindings: Record<string, string | number> = { connId }
  for (const key of ['mode', 'path', 'src', 'dst'] as const) {
    const v = extra[key]
    if (v !== undefined) bindings[key] = v
  }
  return log.child(bindings)
}
