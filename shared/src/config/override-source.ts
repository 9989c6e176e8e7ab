/**
 * Overrides from the environment (`<PREFIX>LOG__LEVEL=debug`) and the command line
 * (`--set log.level=debug`, `--log-level debug`). Values are YAML scalars (`10`, `true`, `[a, b]`),
 * except where the schema expects a string: then the raw text is kept (`token=0123` stays a string).
 */
import { parse as parseYaml } from 'yaml'
import { CYCLIC_ALIAS, cyclicNode } from './file-source.ts'
import { toPointer, type ConfigProblem } from './problem.ts'
import { isStringSchema, resolveDottedPath, resolveEnvSegment, schemaAt, childSchema, type SchemaNode } from './schema-walk.ts'

export interface Override {
  segments: (string | number)[]
  value: unknown
  source: 'env' | 'argv'
  /** Variable name or flag. */
  origin: string
}

export interface OverrideResult {
  overrides: Override[]
  problems: ConfigProblem[]
}

/** Command-line overrides as parsed by util.parseArgs. */
export interface ArgvOverrides {
  /** `--set key.path=value`, repeatable, applied in order. */
  set?: readonly string[] | undefined
  /** `--log-level <level>`, applied after every `--set`. */
  logLevel?: string | undefined
}

function parseValue (raw: string, node: SchemaNode | undefined): { value: unknown } | { error: string } {
  if (isStringSchema(node)) return { value: raw }
  try {
    const value: unknown = parseYaml(raw)
    return cyclicNode(value) === undefined ? { value } : { error: CYCLIC_ALIAS }
  } catch (err) {
    return { error: `value is not a YAML scalar or flow value: ${(err as Error).message.split('\n')[0] ?? ''}` }
  }
}

function override (schema: SchemaNode, segments: (string | number)[], raw: string, source: Override['source'],
  origin: string): Override | ConfigProblem {
  const parsed = parseValue(raw, schemaAt(schema, segments))
  if ('error' in parsed) return { path: toPointer(segments), message: parsed.error, source, origin }
  return { segments, value: parsed.value, source, origin }
}

function collect (items: (Override | ConfigProblem)[]): OverrideResult {
  const result: OverrideResult = { overrides: [], problems: [] }
  for (const item of items) {
    if ('segments' in item) result.overrides.push(item)
    else result.problems.push(item)
  }
  return result
}

/**
 * Every `<prefix>A__B_C=value` variable, sorted by name so the result does not depend on the
 * environment's order. `prefix` includes the trailing underscore (`HYBRID_CONC_`).
 */
export function envOverrides (schema: SchemaNode, env: Readonly<Record<string, string | undefined>>, prefix: string): OverrideResult {
  const items: (Override | ConfigProblem)[] = []
  for (const name of Object.keys(env).filter((n) => n.startsWith(prefix)).sort()) {
    const raw = env[name]
    if (raw === undefined) continue
    const parts = name.slice(prefix.length).split('__')
    if (parts.some((p) => p === '')) {
      items.push({ path: '', message: 'variable name has an empty key segment (use single "__" between keys)', source: 'env', origin: name })
      continue
    }
    const segments: (string | number)[] = []
    let node: SchemaNode | undefined = schema
    for (const part of parts) {
      const seg = resolveEnvSegment(node, part)
      segments.push(seg)
      node = childSchema(node, seg)
    }
    items.push(override(schema, segments, raw, 'env', name))
  }
  return collect(items)
}

/** `--set` entries in order, then `--log-level`. */
export function argvOverrides (schema: SchemaNode, argv: ArgvOverrides): OverrideResult {
  const items: (Override | ConfigProblem)[] = []
  for (const entry of argv.set ?? []) {
    const eq = entry.indexOf('=')
    const key = eq < 0 ? entry : entry.slice(0, eq)
    const origin = `--set ${key}`
    if (eq <= 0 || key.split('.').some((p) => p === '')) {
      items.push({ path: '', message: 'expected --set key.path=value', source: 'argv', origin })
      continue
    }
    items.push(override(schema, resolveDottedPath(schema, key), entry.slice(eq + 1), 'argv', origin))
  }
  if (argv.logLevel !== undefined) items.push(override(schema, ['log', 'level'], argv.logLevel, 'argv', '--log-level'))
  return collect(items)
}
