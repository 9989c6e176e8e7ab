/**
 * Reload checks both daemons share (pure): the configuration keys read at start only, and the
 * refusal of a reload that changes one of them — HYBRID_ERR_CONFIG_INVALID naming the first key
 * that differs ("needs a restart"); the running configuration stays.
 */
import { ConfigError } from '../errors.ts'

/** A start-only key and how to read it from a configuration. */
export type StartOnlyKeys<C> = ReadonlyArray<readonly [key: string, pick: (c: C) => unknown]>

/** Deep equality of two parsed configuration values (plain JSON data). */
export const sameConfigValue = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)

/** The first start-only key whose value differs between the two configurations, if any. */
export function firstStartOnlyChange<C> (keys: StartOnlyKeys<C>, current: C, next: C): string | undefined {
  return keys.find(([, pick]) => !sameConfigValue(pick(current), pick(next)))?.[0]
}

/** Throws ConfigError (detail.key) when `next` changes a start-only key. */
export function refuseStartOnlyChange<C> (keys: StartOnlyKeys<C>, current: C, next: C): void {
  const key = firstStartOnlyChange(keys, current, next)
  if (key !== undefined) {
    throw new ConfigError('HYBRID_ERR_CONFIG_INVALID', `${key}: changed; this key needs a restart (nothing was applied)`,
      { detail: { key } })
  }
}
