/**
 * The configuration loader (shared/src/config/load-config.ts) with each daemon's schema, on
 * arbitrary YAML text, handed to it through its `readFile` option (no file system). Input:
 * [daemon][YAML text…]; bit 0 of the first byte picks the CPE or the
 * concentrator schema and cross-field check (the loader runs it as --validate, start and reload
 * do). Asserts: loadConfig either returns a deep-frozen configuration (that the
 * redaction for --print-config accepts) or throws a ConfigError (HYBRID_ERR_CONFIG_*) whose
 * detail.problems is a non-empty list of well-formed problems; never any other exception. Hangs are
 * caught by the runner's watchdog.
 */
import type { TObject } from 'typebox'
import { ConfigSchema as CpeSchema, type CpeConfig } from '../../../cpe/src/config/config.ts'
import { ConfigSchema as ConcentratorSchema, type ConcentratorConfig } from '../../../concentrator/src/config/config.ts'
import { cpeConfigProblems } from '../../../cpe/src/config/check.ts'
import { concentratorConfigProblems } from '../../../concentrator/src/config/check.ts'
import { loadConfig } from '../../../shared/src/config/load-config.ts'
import { redactConfig } from '../../../shared/src/config/redact.ts'
import { configValidator } from '../../../shared/src/config/validator.ts'
import { ConfigError } from '../../../shared/src/errors.ts'
import { check } from '../engine/target.ts'
import type { FuzzTarget } from '../engine/target.ts'

const schemas: readonly TObject[] = [CpeSchema, ConcentratorSchema]
/**
 * Each daemon's cross-field check, as its main.ts passes it to the loader. The concentrator's reads
 * `auth.credentialsFile`: here a fake reader (a fuzzed path must never reach the file system — a
 * read of /dev/zero would hang), which returns one valid line for `/fuzz/credentials`, a malformed
 * one for `/fuzz/bad`, and ENOENT otherwise.
 */
const fakeCredentials = (path: string): string => {
  if (path === '/fuzz/credentials') return 'user:secret\n'
  if (path === '/fuzz/bad') return 'no colon here\n'
  throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' })
}
const checks = [
  (c: unknown) => cpeConfigProblems(c as CpeConfig),
  (c: unknown) => concentratorConfigProblems(c as ConcentratorConfig, { readFile: fakeCredentials })
]
// The input reaches loadConfig through its `readFile` option instead of a temp file: a write plus
// an open/read/close per execution was half of the time, and the bytes are decoded exactly as
// readFileSync(file, 'utf8') decodes them. Only the read syscall is not exercised.
const file = 'fuzz-input.yaml'

function deepFrozen (v: unknown): boolean {
  if (v === null || typeof v !== 'object') return true
  return Object.isFrozen(v) && Object.values(v).every(deepFrozen)
}

function checkError (err: unknown): void {
  if (!(err instanceof ConfigError)) throw err // not the documented error: the fuzzer reports it
  check(err.code.startsWith('HYBRID_ERR_CONFIG_'), `ConfigError code ${err.code}`)
  const problems = err.detail?.['problems']
  check(Array.isArray(problems) && problems.length > 0, 'ConfigError without problems')
  for (const p of problems as Array<Record<string, unknown>>) {
    check(typeof p['path'] === 'string' && typeof p['message'] === 'string' && typeof p['origin'] === 'string',
      `malformed problem ${JSON.stringify(p)}`)
    check(['file', 'env', 'argv', 'default'].includes(p['source'] as string), `problem source ${String(p['source'])}`)
  }
}

/** Property names and enum values of a schema: the words a valid file is made of. */
function schemaWords (s: unknown, out: Set<string>): Set<string> {
  if (s === null || typeof s !== 'object') return out
  const o = s as Record<string, unknown>
  if (o['properties'] !== undefined) for (const k of Object.keys(o['properties'] as object)) out.add(`${k}: `)
  if (Array.isArray(o['enum'])) for (const e of o['enum'] as unknown[]) out.add(String(e))
  for (const v of Object.values(o)) schemaWords(v, out)
  return out
}

// Compile both validators now (seconds on a loaded machine), so the first input is not timed as a hang.
for (const s of schemas) configValidator(s)

const yamlTokens = ['\n', '\n  ', '\n- ', ': ', '- ', '{ ', ' }', '[', ']', ', ', '"', "'", '&a ', '*a', '<<: ', '!!str ', '!!int ', '!!binary ',
  '---\n', '...\n', '? ', '|\n  ', '>\n  ', '# ', 'null', 'true', '~', '0x1f', '1e3', '.inf', '-1']

export const target: FuzzTarget = {
  // 4 KiB: three times the largest real file (deploy/compose/transparent/concentrator.yaml, 1.4 KiB),
  // room for 100+ aliases; YAML parsing is linear in the input, so bigger inputs only cost time.
  maxLen: 4 * 1024,
  dictionary: [...yamlTokens, ...schemas.flatMap((s) => [...schemaWords(s, new Set())])],
  fuzz (data) {
    if (data.length < 1) return
    const schema = schemas[(data[0] as number) & 1] as TObject
    const crossField = checks[(data[0] as number) & 1]
    const text = data.toString('utf8', 1)
    let config: unknown
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0 // yaml builds an Error per syntax problem; its stack was ~10 % of the time
    try {
      config = loadConfig(schema, { file, readFile: () => text, check: crossField })
    } catch (err) {
      Error.stackTraceLimit = limit
      if (!(err instanceof ConfigError)) config = loadConfig(schema, { file, readFile: () => text, check: crossField }) // again, for the stack
      checkError(err)
      return
    } finally {
      Error.stackTraceLimit = limit
    }
    check(deepFrozen(config), 'configuration is not deep-frozen')
    redactConfig(schema, config as Record<string, unknown>)
  }
}
