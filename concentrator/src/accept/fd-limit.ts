/**
 * The process's open-file limit (what `ulimit -n` prints: the soft RLIMIT_NOFILE), read from
 * /proc/self/limits, and the connection cap derived from it: two fds per relayed connection plus
 * 64 for everything else, floor((RLIMIT_NOFILE − 64) / 2) (threat 4). Node 20 has no getrlimit;
 * /proc needs no FFI.
 */
import { readFileSync } from 'node:fs'

/** Hard upper bound of the derived cap (also the schema maximum of limits.maxConnections). */
export const MaxDerivedConnections = 1_048_576

/** Soft limit from the text of /proc/self/limits; `undefined` if absent. `unlimited` → Infinity. */
export function parseOpenFilesLimit (text: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith('Max open files'))
  if (line === undefined) return undefined
  const soft = line.slice('Max open files'.length).trim().split(/\s+/)[0]
  if (soft === 'unlimited') return Infinity
  if (soft === undefined || !/^\d+$/.test(soft)) return undefined
  return Number(soft)
}

export function connectionsForFdLimit (nofile: number): number {
  if (!Number.isFinite(nofile)) return MaxDerivedConnections
  return Math.max(1, Math.min(MaxDerivedConnections, Math.floor((nofile - 64) / 2)))
}

/** The soft RLIMIT_NOFILE of this process; 1024 (the usual default) if /proc is unreadable. */
export function readOpenFilesLimit (read: () => string = () => readFileSync('/proc/self/limits', 'utf8')): number {
  try {
    return parseOpenFilesLimit(read()) ?? 1024
  } catch {
    return 1024
  }
}

/** `limits.maxConnections`, with 0 meaning "derive from the fd limit". */
export function effectiveMaxConnections (configured: number, nofile: () => number = readOpenFilesLimit): number {
  return configured > 0 ? configured : connectionsForFdLimit(nofile())
}
