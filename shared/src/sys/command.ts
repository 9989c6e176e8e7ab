/**
 * Running system tools (`ip`, `nft`, `sysctl`) for the control plane: always `execFile` with an
 * argv array, never a shell string. A failure throws a HybridError (`HYBRID_ERR_CMD_FAILED`) whose
 * message names the full command and its stderr; `detail` carries argv, exit code and stderr.
 *
 * `CommandRunner` is the injectable form: managers take one, so tests can record the commands or
 * run them inside a network namespace (`prefixedRunner(['ip', 'netns', 'exec', 'ns1'])`).
 */
import { execFile } from 'node:child_process'
import { HybridError } from '../errors.ts'

export interface CommandOptions {
  /** Written to the command's stdin (then closed). */
  input?: string
  /** Kill the command after this long. Default 15000 ms. */
  timeoutMs?: number
}

export type CommandRunner = (argv: readonly string[], opts?: CommandOptions) => Promise<string>

const DEFAULT_TIMEOUT_MS = 15_000
const MAX_BUFFER = 16 << 20

/** The command as a person would type it (arguments with blanks or quotes are single-quoted). */
export function formatArgv (argv: readonly string[]): string {
  return argv.map((a) => /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`).join(' ')
}

/** Run `argv` (no shell); resolves with stdout, rejects with HYBRID_ERR_CMD_FAILED. */
export const runCommand: CommandRunner = async (argv, opts = {}) => {
  const [file, ...args] = argv
  if (file === undefined) throw new HybridError('HYBRID_ERR_INTERNAL', 'runCommand: empty argv')
  return new Promise<string>((resolve, reject) => {
    const child = execFile(file, args, { timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, maxBuffer: MAX_BUFFER, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err === null) { resolve(stdout); return }
        reject(commandError(argv, stderr, err))
      })
    child.stdin?.on('error', () => { /* EPIPE: the exit status tells */ })
    if (opts.input !== undefined) child.stdin?.end(opts.input)
    else child.stdin?.end()
  })
}

function commandError (argv: readonly string[], stderr: string, err: Error & { code?: unknown, signal?: unknown, killed?: boolean }): HybridError {
  const why = err.killed === true ? `killed (${String(err.signal)}, timeout?)` : `exit ${String(err.code)}`
  const text = stderr.trim() === '' ? err.message.trim() : stderr.trim()
  return new HybridError('HYBRID_ERR_CMD_FAILED', `command failed (${why}): ${formatArgv(argv)}: ${text}`, {
    cause: err,
    detail: { argv: [...argv], exitCode: err.code, signal: err.signal, stderr: stderr.trim() }
  })
}

/** A runner that prepends `prefix` to every command (e.g. `ip netns exec <name>`). */
export function prefixedRunner (prefix: readonly string[], base: CommandRunner = runCommand): CommandRunner {
  return async (argv, opts) => base([...prefix, ...argv], opts)
}

/** Parse JSON printed by `ip -j` / `nft -j`; empty output (some `ip -j` versions) is `[]`. */
export function parseJsonOutput (argv: readonly string[], stdout: string): unknown {
  const text = stdout.trim()
  if (text === '') return []
  try {
    return JSON.parse(text) as unknown
  } catch (err) {
    throw new HybridError('HYBRID_ERR_CMD_OUTPUT', `not JSON from ${formatArgv(argv)}: ${text.slice(0, 200)}`, { cause: err })
  }
}

/** Run a `-j` command and return its JSON array (throws HYBRID_ERR_CMD_OUTPUT for anything else). */
export async function runJsonArray (run: CommandRunner, argv: readonly string[]): Promise<Array<Record<string, unknown>>> {
  const value = parseJsonOutput(argv, await run(argv))
  if (!Array.isArray(value)) throw new HybridError('HYBRID_ERR_CMD_OUTPUT', `expected a JSON array from ${formatArgv(argv)}`)
  return value.filter((v): v is Record<string, unknown> => typeof v === 'object' && v !== null)
}

/** The objects of `nft -j list …` output (`{"nftables":[{"metainfo":…},{"table":…}]}`), by kind. */
export function nftJsonObjects (argv: readonly string[], stdout: string, kind: string): Array<Record<string, unknown>> {
  const value = parseJsonOutput(argv, stdout) as { nftables?: unknown }
  if (typeof value !== 'object' || value === null || !Array.isArray(value.nftables)) {
    throw new HybridError('HYBRID_ERR_CMD_OUTPUT', `expected {"nftables":[…]} from ${formatArgv(argv)}`)
  }
  const out: Array<Record<string, unknown>> = []
  for (const item of value.nftables as unknown[]) {
    if (typeof item !== 'object' || item === null) continue
    const inner = (item as Record<string, unknown>)[kind]
    if (typeof inner === 'object' && inner !== null) out.push(inner as Record<string, unknown>)
  }
  return out
}
