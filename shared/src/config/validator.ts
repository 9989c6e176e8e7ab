/**
 * Ajv 8 set up the way fastify validates its own options: every error at once (`allErrors`),
 * defaults filled in (`useDefaults`), strict schema and type checks. One compiled validator per
 * schema object, cached.
 */
import { isIP } from 'node:net'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import type { TSchema } from 'typebox'

function createConfigAjv (): Ajv {
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, strictTypes: true, strictTuples: true })
  ajv.addKeyword({ keyword: 'secret', schemaType: 'boolean' })
  ajv.addKeyword({ keyword: 'unit', schemaType: 'string' })
  ajv.addFormat('ip', { type: 'string', validate: (s: string) => isIP(s) !== 0 })
  return ajv
}

const cache = new WeakMap<TSchema, ValidateFunction>()

/** The compiled validator of `schema`. It mutates its argument (defaults). */
export function configValidator (schema: TSchema): ValidateFunction {
  let validate = cache.get(schema)
  if (validate === undefined) {
    validate = createConfigAjv().compile(schema)
    cache.set(schema, validate)
  }
  return validate
}

/** Run the validator on `data` (mutated: defaults filled in) and return its errors, empty when valid. */
export function validateConfig (schema: TSchema, data: unknown): ErrorObject[] {
  const validate = configValidator(schema)
  return validate(data) ? [] : [...(validate.errors ?? [])]
}

export type { ErrorObject }
