/**
 * For the config-check tables of both daemons: load `file` with `schema` and the daemon's
 * cross-field `check`, as its main.ts does, and return the ConfigError's code and problems (the
 * assertion fails if the loader accepts the file).
 */
import assert from 'node:assert/strict'
import type { TObject } from 'typebox'
import { loadConfig, type LoadConfigOptions, type LoadedConfig } from '../../shared/src/config/load-config.ts'
import type { ConfigProblem } from '../../shared/src/config/problem.ts'
import { isHybridError } from '../../shared/src/errors.ts'

export function configRefusal<T extends TObject> (schema: T, file: string,
  check: NonNullable<LoadConfigOptions<LoadedConfig<T>>['check']>): { code: string, problems: ConfigProblem[] } {
  try {
    loadConfig(schema, { file, check })
  } catch (err) {
    assert.ok(isHybridError(err))
    return { code: err.code, problems: (err.detail?.['problems'] ?? []) as ConfigProblem[] }
  }
  assert.fail('the loader accepted the configuration')
}
