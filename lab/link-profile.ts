/**
 * Access-link profiles for the lab: rate, one-way delay, jitter and loss per direction
 * (up = CPE → concentrator, down = concentrator → CPE), loaded from lab/profiles.yaml.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { ConfigError } from '../shared/src/errors.ts'

export interface DirectionProfile {
  /** tbf rate in Mbit/s, counted on IP packets (no link-layer header); 0 = no shaping. */
  rateMbit: number
  /** One-way delay added by the delay line. */
  delayMs: number
  /** Delay varies within delayMs ± jitterMs (smoothly, FIFO: never reorders). */
  jitterMs: number
  /** Independent per-packet loss probability in percent. */
  lossPct: number
  /** tbf queue depth in milliseconds at the rate (default 50). */
  queueMs?: number
}

export interface AccessProfile {
  name: string
  up: DirectionProfile
  down: DirectionProfile
}

export const DEFAULT_PROFILES_FILE = fileURLToPath(new URL('./profiles.yaml', import.meta.url))
export const DEFAULT_QUEUE_MS = 50

const LIMITS = {
  rateMbit: [0, 100_000],
  delayMs: [0, 10_000],
  jitterMs: [0, 10_000],
  lossPct: [0, 100],
  queueMs: [1, 10_000]
} as const
type Field = keyof typeof LIMITS
const REQUIRED: readonly Field[] = ['rateMbit', 'delayMs', 'jitterMs', 'lossPct']

/** Load every profile of a YAML file (default lab/profiles.yaml). Errors name the file and key. */
export function loadProfiles (file: string = DEFAULT_PROFILES_FILE): Map<string, AccessProfile> {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError('HYBRID_ERR_CONFIG_READ', `${file}: cannot read link profiles: ${String(err)}`, { cause: err })
  }
  let doc: unknown
  try {
    doc = parse(text)
  } catch (err) {
    throw new ConfigError('HYBRID_ERR_CONFIG_PARSE', `${file}: ${(err as Error).message}`, { cause: err })
  }
  return parseProfiles(doc, file)
}

/** Validate an already parsed document (`{ <name>: { up: {...}, down: {...} } }`). */
export function parseProfiles (doc: unknown, file = '<profiles>'): Map<string, AccessProfile> {
  if (!isRecord(doc)) throw invalid(file, '(root)', 'must be a mapping of profile names')
  const out = new Map<string, AccessProfile>()
  for (const [name, value] of Object.entries(doc)) {
    if (!/^[a-z][a-z0-9-]*$/.test(name)) throw invalid(file, name, 'profile names are lower-case letters, digits and -')
    if (!isRecord(value)) throw invalid(file, name, 'must be a mapping with up and down')
    for (const key of Object.keys(value)) {
      if (key !== 'up' && key !== 'down') throw invalid(file, `${name}.${key}`, 'unknown key (expected up, down)')
    }
    out.set(name, { name, up: parseDirection(value['up'], file, `${name}.up`), down: parseDirection(value['down'], file, `${name}.down`) })
  }
  return out
}

/** Validate one direction; `where` is the key path used in error messages. */
export function parseDirection (value: unknown, file: string, where: string): DirectionProfile {
  if (!isRecord(value)) throw invalid(file, where, 'must be a mapping with rateMbit, delayMs, jitterMs, lossPct')
  for (const key of Object.keys(value)) {
    if (!(key in LIMITS)) throw invalid(file, `${where}.${key}`, `unknown key (expected ${Object.keys(LIMITS).join(', ')})`)
  }
  const num = (field: Field): number | undefined => {
    const v = value[field]
    if (v === undefined) {
      if (REQUIRED.includes(field)) throw invalid(file, `${where}.${field}`, 'is required')
      return undefined
    }
    const [lo, hi] = LIMITS[field]
    if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) {
      throw invalid(file, `${where}.${field}`, `must be a number in [${lo}, ${hi}], got ${JSON.stringify(v)}`)
    }
    return v
  }
  const dir: DirectionProfile = {
    rateMbit: num('rateMbit') ?? 0,
    delayMs: num('delayMs') ?? 0,
    jitterMs: num('jitterMs') ?? 0,
    lossPct: num('lossPct') ?? 0
  }
  const queueMs = num('queueMs')
  if (queueMs !== undefined) dir.queueMs = queueMs
  if (dir.jitterMs > dir.delayMs) throw invalid(file, `${where}.jitterMs`, `must not exceed delayMs (${dir.delayMs})`)
  return dir
}

/** Look a profile up by name; the error lists the known names. */
export function getProfile (name: string, file?: string): AccessProfile {
  const all = loadProfiles(file)
  const p = all.get(name)
  if (p === undefined) {
    throw new ConfigError('HYBRID_ERR_CONFIG_INVALID',
      `${file ?? DEFAULT_PROFILES_FILE}: no profile '${name}' (known: ${[...all.keys()].join(', ')})`)
  }
  return p
}

function invalid (file: string, key: string, why: string): ConfigError {
  return new ConfigError('HYBRID_ERR_CONFIG_INVALID', `${file}: ${key} ${why}`, { detail: { file, key } })
}

function isRecord (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
