/**
 * Reading a (TypeBox = JSON Schema) configuration schema as data: child schemas, environment variable
 * segment resolution, secret paths. Only the subset our config schemas use: object, array, enum,
 * string, integer, number, boolean.
 */
import type { TSchema } from 'typebox'

/** A JSON Schema node viewed as plain data. */
export type SchemaNode = TSchema & {
  type?: string
  properties?: Record<string, SchemaNode>
  required?: string[]
  items?: SchemaNode
  enum?: unknown[]
  default?: unknown
  description?: string
  unit?: string
  secret?: boolean
  minimum?: number
  maximum?: number
  minLength?: number
  maxLength?: number
  minItems?: number
  maxItems?: number
  pattern?: string
  format?: string
}

export function asNode (schema: TSchema): SchemaNode {
  return schema as SchemaNode
}

/** The schema of `segment` under `node`, or undefined when the schema has no such child. */
export function childSchema (node: SchemaNode | undefined, segment: string | number): SchemaNode | undefined {
  if (node === undefined) return undefined
  if (node.type === 'array') return typeof segment === 'number' ? node.items : undefined
  if (node.properties === undefined || typeof segment !== 'string') return undefined
  return Object.hasOwn(node.properties, segment) ? node.properties[segment] : undefined
}

/** True when values for this schema are strings, so raw text must not be parsed as YAML. */
export function isStringSchema (node: SchemaNode | undefined): boolean {
  if (node === undefined) return false
  if (node.type === 'string') return true
  return node.enum !== undefined && node.enum.every((v) => typeof v === 'string')
}

const normalise = (s: string): string => s.replaceAll('_', '').toLowerCase()

/** `IDLE_TIMEOUT_MS` → `idleTimeoutMs` (used when the schema does not know the key). */
export function camelCase (segment: string): string {
  return segment.toLowerCase().replace(/_+([a-z0-9])/g, (_m, c: string) => c.toUpperCase())
}

/**
 * Resolve one `__`-separated segment of an environment variable name against the schema:
 * `IDLE_TIMEOUT_MS` and `IDLETIMEOUTMS` both find `idleTimeoutMs`; digits index arrays. Unknown
 * segments become camelCase keys, which the validator then reports as unknown keys.
 */
export function resolveEnvSegment (node: SchemaNode | undefined, segment: string): string | number {
  if (node?.type === 'array' && /^\d+$/.test(segment)) return Number(segment)
  const wanted = normalise(segment)
  for (const key of Object.keys(node?.properties ?? {})) {
    if (normalise(key) === wanted) return key
  }
  return camelCase(segment)
}

/** Resolve a dotted `--set` path: digits index arrays, other segments are keys as written. */
export function resolveDottedPath (schema: SchemaNode, dotted: string): (string | number)[] {
  const out: (string | number)[] = []
  let node: SchemaNode | undefined = schema
  for (const part of dotted.split('.')) {
    const seg: string | number = node?.type === 'array' && /^\d+$/.test(part) ? Number(part) : part
    out.push(seg)
    node = childSchema(node, seg)
  }
  return out
}

/** The schema at a path of segments, or undefined. */
export function schemaAt (schema: SchemaNode, segments: readonly (string | number)[]): SchemaNode | undefined {
  let node: SchemaNode | undefined = schema
  for (const seg of segments) node = childSchema(node, seg)
  return node
}

/** Paths of every `secret: true` option; array items appear as `*`. */
export function secretPaths (node: SchemaNode, prefix: string[] = []): string[][] {
  if (node.secret === true) return [prefix]
  if (node.type === 'array' && node.items !== undefined) return secretPaths(node.items, [...prefix, '*'])
  const out: string[][] = []
  for (const [key, child] of Object.entries(node.properties ?? {})) out.push(...secretPaths(child, [...prefix, key]))
  return out
}
