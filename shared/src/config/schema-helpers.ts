/**
 * Small builders for configuration schemas. Every option carries `description` (and `unit` where it
 * has one) inside the schema as well as in TSDoc, so docs/configuration.md can be generated from the
 * schema (scripts/config-reference.ts) and cannot drift from it.
 *
 * Custom keywords understood by the config validator (./validator.ts):
 * - `unit: string`: documentation only (`ms`, `bytes`, `connections`).
 * - `secret: true`: the value is redacted by `--print-config` and in the start-up log.
 * Custom formats: `ip` (an IPv4 or IPv6 literal, no host names).
 */
import { Type, type TEnum, type TInteger } from 'typebox'

export interface IntegerOptionSpec {
  default: number
  minimum: number
  maximum: number
  unit?: string
  description: string
}

/** An integer option with bounds, unit and default. */
export function integerOption (spec: IntegerOptionSpec): TInteger {
  const { unit, ...rest } = spec
  return Type.Integer(unit === undefined ? rest : { ...rest, unit })
}

/** A duration in milliseconds. */
export function msOption (def: number, description: string, minimum = 1, maximum = 86_400_000): TInteger {
  return integerOption({ default: def, minimum, maximum, unit: 'ms', description })
}

/**
 * A string enumeration as JSON Schema `enum` (one clear error message, unlike a union of literals).
 * Pass `def` for the default; omit it for a required value.
 */
export function stringEnum<const V extends string[]> (values: readonly [...V], description: string, def?: V[number]): TEnum<V> {
  return Type.Enum(values, def === undefined ? { description } : { description, default: def })
}

/** Port number 1–65535. */
export function portOption (description: string, def?: number): TInteger {
  return Type.Integer(def === undefined
    ? { minimum: 1, maximum: 65535, description }
    : { minimum: 1, maximum: 65535, default: def, description })
}
