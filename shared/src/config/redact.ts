/**
 * Redaction of `secret: true` options for `--print-config` and the start-up log line.
 */
import type { TSchema } from 'typebox'
import { isPlainObject } from './layers.ts'
import { asNode, secretPaths } from './schema-walk.ts'

export const REDACTED = '[redacted]'

function redactAt (value: unknown, path: readonly string[]): unknown {
  const [head, ...rest] = path
  if (head === undefined) return value === undefined ? value : REDACTED
  if (head === '*' && Array.isArray(value)) return value.map((v) => redactAt(v, rest))
  if (!isPlainObject(value) || !Object.hasOwn(value, head)) return value
  return { ...value, [head]: redactAt(value[head], rest) }
}

/** A copy of `config` with every secret option replaced by `[redacted]`. */
export function redactConfig<C> (schema: TSchema, config: C): C {
  let out: unknown = config
  for (const path of secretPaths(asNode(schema))) out = redactAt(out, path)
  return out as C
}
