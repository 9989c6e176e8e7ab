/**
 * The configuration loader of both daemons. Precedence: schema defaults < YAML file < environment
 * (`<prefix>A__B=value`) < command line (`--set a.b=value`, `--log-level`). The merged result is
 * validated against the daemon's TypeBox schema with Ajv (unknown keys rejected), then deep-frozen.
 * Then the daemon's cross-field checks (`check`, e.g. cpe/src/config/check.ts) run on the typed
 * result. Every problem is reported at once, each with its JSON pointer and the file, variable or
 * flag it came from; a ConfigError carries them in `detail.problems`.
 *
 * Pure apart from reading `file` (through `readFile` when given): the caller passes `env` and the
 * parsed argv, so tests need no process state.
 */
import type { Static, TObject } from 'typebox'
import { readConfigFile, type FileSource, type ReadText } from './file-source.ts'
import { deepFreeze, type DeepReadonly } from './freeze.ts'
import { LayeredConfig, type Origin } from './layers.ts'
import { argvOverrides, envOverrides, type ArgvOverrides, type Override } from './override-source.ts'
import { configErrorFrom, fromPointer, toPointer, type ConfigCheck, type ConfigProblem } from './problem.ts'
import { asNode } from './schema-walk.ts'
import { validateConfig, type ErrorObject } from './validator.ts'

export interface LoadConfigOptions<C = unknown> {
  /** YAML file; omitted: defaults, environment and command line only. */
  file?: string | undefined
  /** Environment (pass `process.env` from main.ts, a literal in tests). */
  env?: Readonly<Record<string, string | undefined>>
  /** Variable prefix including the trailing underscore: `HYBRID_CPE_` or `HYBRID_CONC_`; unset: `env` is ignored. */
  envPrefix?: string
  argv?: ArgvOverrides
  /**
   * Cross-field checks the schema cannot express, run once the schema accepted the result (so they
   * see typed data with defaults). Their problems are reported like schema problems, with origin.
   */
  check?: ConfigCheck<C> | undefined
  /**
   * Reads `file`'s text; default `readFileSync(file, 'utf8')`. For callers that already hold the
   * text (the config fuzz target: no temp file per input). A throw with an errno `code` is reported
   * like a failed read ("cannot read file: CODE"). Everything after the read is the same.
   */
  readFile?: ReadText | undefined
}

export type LoadedConfig<T extends TObject> = DeepReadonly<Static<T>>

/** Load, merge, validate and freeze. Throws ConfigError listing every problem. */
export function loadConfig<T extends TObject> (schema: T, options: LoadConfigOptions<LoadedConfig<T>> = {}): LoadedConfig<T> {
  const defaults: Record<string, unknown> = {}
  validateConfig(schema, defaults) // fills in defaults; missing required keys are reported below
  const layers = new LayeredConfig(defaults)
  const problems: ConfigProblem[] = []
  const file = options.file === undefined ? undefined : readConfigFile(options.file, options.readFile)
  if (file !== undefined && options.file !== undefined) { // (both: narrows options.file)
    problems.push(...file.problems)
    if (file.data !== undefined) layers.mergeTree(file.data, { source: 'file', origin: options.file })
  }
  const env = options.envPrefix === undefined
    ? { overrides: [], problems: [] }
    : envOverrides(asNode(schema), options.env ?? {}, options.envPrefix)
  const argv = argvOverrides(asNode(schema), options.argv ?? {})
  problems.push(...env.problems, ...argv.problems)
  applyOverrides(layers, [...env.overrides, ...argv.overrides])
  // A file that cannot be read or parsed would only add misleading "required" errors.
  if (file === undefined || file.data !== undefined) {
    problems.push(...validateConfig(schema, layers.root).map((e) => toProblem(e, layers, file, options.file)))
  }
  if (problems.length === 0 && options.check !== undefined) {
    problems.push(...options.check(layers.root as LoadedConfig<T>).map((p) => locate(p.path.map(String), p.message, layers, file, options.file)))
  }
  if (problems.length > 0) throw configErrorFrom(sortProblems(problems))
  return deepFreeze(layers.root as Static<T>)
}

const sourceRank = { file: 0, default: 0, env: 1, argv: 2 } as const

/** File problems by line, then environment, then command line; stable otherwise. */
function sortProblems (problems: ConfigProblem[]): ConfigProblem[] {
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => sourceRank[a.p.source] - sourceRank[b.p.source] || (a.p.line ?? 0) - (b.p.line ?? 0) || a.i - b.i)
    .map(({ p }) => p)
}

function applyOverrides (layers: LayeredConfig, overrides: readonly Override[]): void {
  for (const o of overrides) {
    const origin: Origin = { source: o.source, origin: o.origin }
    layers.setAt(o.segments, o.value, origin)
  }
}

function toProblem (e: ErrorObject, layers: LayeredConfig, file: FileSource | undefined, fileName: string | undefined): ConfigProblem {
  const { segments, message } = describeError(e)
  return locate(segments, message, layers, file, fileName)
}

/** A problem at `segments`, with the layer (file line, variable, flag) that set the value. */
function locate (segments: string[], message: string, layers: LayeredConfig, file: FileSource | undefined,
  fileName: string | undefined): ConfigProblem {
  const origin = layers.originOf(segments)
  const path = toPointer(segments)
  if (origin === undefined) {
    const problem: ConfigProblem = fileName === undefined
      ? { path, message, source: 'default', origin: '(no config file)' }
      : { path, message, source: 'file', origin: fileName }
    const at = file?.locate(segments)
    return at === undefined ? problem : { ...problem, ...at }
  }
  const problem: ConfigProblem = { path, message, ...origin }
  const at = origin.source === 'file' ? file?.locate(segments) : undefined
  return at === undefined ? problem : { ...problem, ...at }
}

function describeError (e: ErrorObject): { segments: string[], message: string } {
  const segments = fromPointer(e.instancePath)
  const params = e.params as Record<string, unknown>
  switch (e.keyword) {
    case 'additionalProperties':
      return { segments: [...segments, String(params['additionalProperty'])], message: 'unknown key' }
    case 'required':
      return { segments: [...segments, String(params['missingProperty'])], message: 'is required' }
    case 'format':
      return { segments, message: params['format'] === 'ip' ? 'must be an IP address literal' : e.message ?? 'bad format' }
    case 'enum':
      return { segments, message: `must be one of: ${(params['allowedValues'] as unknown[]).map(String).join(', ')}` }
    default:
      return { segments, message: e.message ?? e.keyword }
  }
}
