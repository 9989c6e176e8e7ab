/**
 * Logging with pino: JSON lines on stdout, synchronous by default (an asynchronous destination can
 * lose the last lines on a crash). There is no module-level logger: main.ts creates the root logger
 * and passes it down; components take `childFor(log, 'component')`, connections `connLogger(...)`.
 *
 * Stable keys: component, connId, mode, path, src, dst, bytesUp, bytesDown, err.
 *
 * `component` appears once per line. A component's sub-component nests with a dot
 * (`childFor(childFor(root, 'cpe'), 'intercept')` logs `"component":"cpe.intercept"`). pino appends
 * child bindings without deduplicating them, so `component` is not a binding: each child carries
 * its path in a symbol property (inherited by its own children, including fastify's request
 * loggers) and the root logger's `mixin` writes it. A logger not made by `createLogger` (tests
 * passing a bare pino) has no mixin; there `childFor` falls back to a plain `component` binding.
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

/** Component path of a logger made by `childFor` (inherited: pino children are `Object.create(parent)`). */
const COMPONENT = Symbol('hybrid.log.component')
/** Set on loggers whose root was made by `createLogger`, i.e. whose mixin writes `component`. */
const WRITES_COMPONENT = Symbol('hybrid.log.writesComponent')

interface Tagged { [COMPONENT]?: string, [WRITES_COMPONENT]?: true }

const componentMixin = (_merge: object, _level: number, logger: Logger): object => {
  const component = (logger as Tagged)[COMPONENT]
  return component === undefined ? {} : { component }
}

export function createLogger (options: CreateLoggerOptions): Logger {
  const destination = options.destination ?? pino.destination({ dest: 1, sync: true })
  const log = pino({
    level: options.level,
    name: options.name,
    redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    mixin: componentMixin
  }, destination)
  ;(log as Tagged)[WRITES_COMPONENT] = true
  return log
}

/** Child logger of one component (`listener`, `relay`, `mgmt` …); nested components join with a dot. */
export function childFor (log: Logger, component: string): Logger {
  const tagged = log as Tagged
  if (tagged[WRITES_COMPONENT] !== true) return log.child({ component })
  const parent = tagged[COMPONENT]
  const child = log.child({})
  ;(child as Tagged)[COMPONENT] = parent === undefined ? component : `${parent}.${component}`
  return child
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
