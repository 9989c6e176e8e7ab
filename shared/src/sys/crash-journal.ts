/**
 * What a daemon changed in its network namespace and how to undo it, kept on disk so that a
 * SIGKILL, an OOM kill or a power cut cannot lose it. Each change is recorded BEFORE it is made
 * (write to a temporary file, fsync, rename), and forgotten after it was undone at stop; a clean
 * stop leaves no file. The next start reads what a dead previous run left and undoes it first
 * (`undoJournal`), so that:
 *
 * - a sysctl is restored to the value found before the FIRST run changed it, not to the value the
 *   crashed run left (which a naive "save at start, restore at stop" would restore);
 * - endpoints, rules and routes of the dead run are removed even when the new run's configuration
 *   differs (another join port, another priority);
 * - two instances in one network namespace are refused (HYBRID_ERR_STATE_LOCKED) instead of
 *   fighting over the same kernel state.
 *
 * One file per daemon and network namespace: `<dir>/<name>-netns<inode>.json`, the inode of
 * /proc/self/ns/net (the lab runs several daemons on one host, one namespace each).
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { ConfigError, HybridError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { sysctlWriteArgv } from './sysctl-profile.ts'
import { runJsonArray, type CommandRunner } from './command.ts'

/** One undoable change. `undo` commands are run as given (argv, no shell). */
export type JournalEntry =
  | { readonly kind: 'sysctl', readonly key: string, readonly before: string }
  | { readonly kind: 'command', readonly undo: readonly string[] }
  | { readonly kind: 'mptcp-endpoint', readonly address: string, readonly port?: number }

/** What the appliers need of a journal (SysctlProfile, HagSetup, …). */
export interface JournalRecorder {
  record: (entry: JournalEntry) => void
  forget: (entry: JournalEntry) => void
}

interface JournalFile { readonly pid: number, readonly name: string, readonly written: string, readonly entries: JournalEntry[] }

export interface CrashJournalOptions {
  /** Directory (created 0700 if missing); from the daemon's `stateDir`. */
  readonly dir: string
  /** `concentrator` or `cpe`. */
  readonly name: string
  readonly log: Logger
  /** Identity of the network namespace (tests). Default: inode of /proc/self/ns/net. */
  readonly netnsId?: string
  /** Whether a pid is alive (tests). Default: kill(pid, 0). */
  readonly isAlive?: (pid: number) => boolean
  /** Config key named in errors (default `stateDir`). */
  readonly key?: string
}

const sameEntry = (a: JournalEntry, b: JournalEntry): boolean => JSON.stringify(a) === JSON.stringify(b)

function pidAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function validEntry (e: unknown): e is JournalEntry {
  if (typeof e !== 'object' || e === null) return false
  const r = e as Record<string, unknown>
  if (r['kind'] === 'sysctl') return typeof r['key'] === 'string' && typeof r['before'] === 'string'
  if (r['kind'] === 'command') return Array.isArray(r['undo']) && (r['undo'] as unknown[]).every((a) => typeof a === 'string')
  if (r['kind'] === 'mptcp-endpoint') return typeof r['address'] === 'string' && (r['port'] === undefined || typeof r['port'] === 'number')
  return false
}

/** Parse a journal file's text (pure). Unknown entries are dropped; a file that is not a journal is undefined. */
export function parseJournal (text: string): JournalFile | undefined {
  let v: unknown
  try { v = JSON.parse(text) } catch { return undefined }
  if (typeof v !== 'object' || v === null) return undefined
  const r = v as Record<string, unknown>
  if (typeof r['pid'] !== 'number' || !Array.isArray(r['entries'])) return undefined
  return {
    pid: r['pid'],
    name: String(r['name'] ?? ''),
    written: String(r['written'] ?? ''),
    entries: (r['entries'] as unknown[]).filter(validEntry)
  }
}

/** The journal in `file`, undefined when there is none or it is unreadable (logged). */
function readJournalFile (file: string, key: string, log: Logger): JournalFile | undefined {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new ConfigError('HYBRID_ERR_CONFIG_INVALID', `${key}: cannot read ${file}: ${(err as Error).message}`, { cause: err, detail: { key } })
  }
  const found = parseJournal(text)
  if (found === undefined) log.warn({ file }, 'crash journal unreadable: ignored (state of the previous run cannot be undone)')
  return found
}

export class CrashJournal implements JournalRecorder {
  readonly file: string
  #entries: JournalEntry[] = []
  #leftovers: JournalEntry[]
  readonly #name: string

  private constructor (file: string, name: string, leftovers: JournalEntry[]) {
    this.file = file
    this.#name = name
    this.#leftovers = leftovers
  }

  /**
   * Open the journal of this daemon in this namespace. A file of a live other process →
   * HYBRID_ERR_STATE_LOCKED; of a dead one → its entries are `leftovers` (undo them, then
   * `leftoversUndone()`). An unreadable directory → ConfigError naming the key.
   */
  static open (o: CrashJournalOptions): CrashJournal {
    const key = o.key ?? 'stateDir'
    const netns = o.netnsId ?? String(statSync('/proc/self/ns/net').ino)
    try {
      mkdirSync(o.dir, { recursive: true, mode: 0o700 })
    } catch (cause) {
      throw new ConfigError('HYBRID_ERR_CONFIG_INVALID', `${key}: cannot create ${o.dir}: ${(cause as Error).message}`, { cause, detail: { key } })
    }
    const file = join(o.dir, `${o.name}-netns${netns}.json`)
    const found = readJournalFile(file, key, o.log)
    let leftovers: JournalEntry[] = []
    if (found !== undefined && found.entries.length > 0 && found.pid !== process.pid) {
      if ((o.isAlive ?? pidAlive)(found.pid)) {
        throw new HybridError('HYBRID_ERR_STATE_LOCKED',
          `another hybrid-${o.name} (pid ${found.pid}) runs in this network namespace (${file}); one instance per namespace`,
          { detail: { file, pid: found.pid } })
      }
      leftovers = found.entries
    }
    const j = new CrashJournal(file, o.name, leftovers)
    if (leftovers.length > 0) {
      o.log.warn({ file, pid: found?.pid, written: found?.written, entries: leftovers },
        'a previous run did not stop cleanly: undoing what it left in this namespace')
      j.#entries = [...leftovers]
    }
    return j
  }

  /** What a dead previous run left (undo before changing anything). */
  get leftovers (): readonly JournalEntry[] { return this.#leftovers }
  get entries (): readonly JournalEntry[] { return this.#entries }

  /** The leftovers were undone (or were found gone): forget them. */
  leftoversUndone (): void {
    for (const e of this.#leftovers) this.#entries = this.#entries.filter((x) => !sameEntry(x, e))
    this.#leftovers = []
    this.#write()
  }

  /** Record a change BEFORE making it (synchronous, on disk when this returns). */
  record (entry: JournalEntry): void {
    if (this.#entries.some((e) => sameEntry(e, entry))) return
    this.#entries.push(entry)
    this.#write()
  }

  /** The change was undone: forget it (the file goes with the last entry). */
  forget (entry: JournalEntry): void {
    const before = this.#entries.length
    this.#entries = this.#entries.filter((e) => !sameEntry(e, entry))
    if (this.#entries.length !== before) this.#write()
  }

  #write (): void {
    if (this.#entries.length === 0) { rmSync(this.file, { force: true }); return }
    const body: JournalFile = { pid: process.pid, name: this.#name, written: new Date().toISOString(), entries: this.#entries }
    const tmp = `${this.file}.${process.pid}.tmp`
    const fd = openSync(tmp, 'w', 0o600)
    try {
      writeSync(fd, JSON.stringify(body, null, 1) + '\n')
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, this.file)
  }
}

/**
 * Undo leftover entries, newest first (the reverse of how they were made). Sysctls are written
 * back, commands run, endpoints deleted by address (and port) after listing them. Every entry is
 * attempted; failures of commands whose object is already gone are expected and only logged.
 */
export async function undoJournal (entries: readonly JournalEntry[], run: CommandRunner, log: Logger): Promise<void> {
  for (const e of [...entries].reverse()) {
    try {
      if (e.kind === 'sysctl') await run(sysctlWriteArgv({ key: e.key, value: e.before }))
      else if (e.kind === 'command') await run(e.undo)
      else await deleteEndpoints(e, run)
      log.info({ entry: e }, 'undone: left by a previous run')
    } catch (err) {
      log.info({ entry: e, err: (err as Error).message }, 'leftover already gone (or cannot be undone)')
    }
  }
}

async function deleteEndpoints (e: { address: string, port?: number }, run: CommandRunner): Promise<void> {
  const rows = await runJsonArray(run, ['ip', '-j', 'mptcp', 'endpoint', 'show'])
  for (const r of rows) {
    if (r['address'] !== e.address || typeof r['id'] !== 'number') continue
    if (e.port !== undefined && r['port'] !== e.port) continue
    await run(['ip', 'mptcp', 'endpoint', 'delete', 'id', String(r['id'])])
  }
}

/**
 * Open the daemon's journal and first of all undo what a crashed previous run left in this
 * namespace (both daemons start this way, before they change anything).
 */
export async function openJournalAndRecover (o: CrashJournalOptions & { readonly run: CommandRunner }): Promise<CrashJournal> {
  const journal = CrashJournal.open(o)
  if (journal.leftovers.length === 0) return journal
  await undoJournal(journal.leftovers, o.run, o.log)
  journal.leftoversUndone()
  return journal
}
