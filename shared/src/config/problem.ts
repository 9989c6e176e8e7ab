/**
 * A configuration problem names where it is (JSON pointer), where the value came from (file,
 * environment variable or command-line flag) and what is wrong. Loading collects every problem and
 * throws one ConfigError carrying them all in `detail.problems`.
 */
import { ConfigError, type ErrorCode } from '../errors.ts'

/** Where a value came from. `default` is used when no layer set the value (a required key is missing). */
export type ConfigSource = 'file' | 'env' | 'argv' | 'default'

export interface ConfigProblem {
  /** JSON pointer into the configuration, e.g. `/limits/idleTimeoutMs` (`` for the root). */
  path: string
  message: string
  source: ConfigSource
  /** File name, environment variable name or flag (`--set limits.idleTimeoutMs`, `--log-level`). */
  origin: string
  /** 1-based line and column in the file, when known. */
  line?: number
  column?: number
}

/**
 * A problem found by a daemon's cross-field check (cpe/src/config/check.ts,
 * concentrator/src/config/check.ts): where (path segments) and what. The loader adds the origin.
 */
export interface CheckProblem {
  path: readonly (string | number)[]
  message: string
}

/** A daemon's cross-field check: pure (at most reading a small file it names), every problem at once. */
export type ConfigCheck<C> = (config: C) => readonly CheckProblem[]

/** `/a/b: message`, for the start-time guards of components built without the loader (tests). */
export const formatCheckProblem = (p: CheckProblem): string => `${toPointer(p.path)}: ${p.message}`

/** RFC 6901 pointer from path segments. */
export function toPointer (segments: readonly (string | number)[]): string {
  return segments.map((s) => '/' + String(s).replaceAll('~', '~0').replaceAll('/', '~1')).join('')
}

/** Path segments from an RFC 6901 pointer. */
export function fromPointer (pointer: string): string[] {
  if (pointer === '') return []
  return pointer.slice(1).split('/').map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
}

/** `config.yaml:3:5: /limits/idleTimeoutMs: must be integer` */
export function formatProblem (p: ConfigProblem): string {
  const where = p.line === undefined ? p.origin : `${p.origin}:${p.line}:${p.column ?? 1}`
  return `${where}: ${p.path === '' ? '(root)' : p.path}: ${p.message}`
}

function codeFor (problems: readonly ConfigProblem[]): ErrorCode {
  if (problems.some((p) => p.message.startsWith('cannot read'))) return 'HYBRID_ERR_CONFIG_READ'
  if (problems.some((p) => p.source === 'file' && p.message.startsWith('YAML'))) return 'HYBRID_ERR_CONFIG_PARSE'
  if (problems.every((p) => p.source === 'env')) return 'HYBRID_ERR_CONFIG_ENV'
  if (problems.every((p) => p.source === 'argv')) return 'HYBRID_ERR_CONFIG_ARGV'
  return 'HYBRID_ERR_CONFIG_INVALID'
}

/** One ConfigError for all problems; the message lists them, one per line. */
export function configErrorFrom (problems: readonly ConfigProblem[]): ConfigError {
  const code = codeFor(problems)
  const lines = problems.map((p) => '  ' + formatProblem(p))
  const noun = problems.length === 1 ? 'problem' : 'problems'
  return new ConfigError(code, `configuration has ${problems.length} ${noun}:\n${lines.join('\n')}`, {
    detail: { problems: problems.map((p) => ({ ...p })) }
  })
}
