/**
 * Holder of an nftables `flags owner` table: a long-lived `nft -i` child, fed through a pipe, creates
 * the table and makes every later change to it (docs/cpe-control-plane.md; docs/design/threat-model.md, threat 14). The kernel deletes an
 * owner table when the netlink socket that created it closes, so the table lives exactly as long as
 * this child — and the child lives as long as the daemon:
 *
 * - the daemon exits or is SIGKILLed → the pipe's write end closes → `nft -i` reads EOF and exits →
 *   the table vanishes (fail-open: traffic is routed natively again);
 * - `nft` itself dies → the table vanishes, `'exit'` is emitted and later calls reject with
 *   HYBRID_ERR_NFT_HOLDER;
 * - another process cannot delete or change the table (EPERM), and `nft flush ruleset` elsewhere
 *   leaves it intact.
 *
 * Close-on-exec: libuv creates the child's pipes with O_CLOEXEC on the daemon's side, so the write end
 * never leaks into other children (a leaked copy would keep the table alive after the daemon died).
 *
 * `apply(text)` checks the text with `nft -c` (on a renamed copy: a second process may not even
 * dry-run changes to an owned table) and installs it in ONE transaction on the holder's line:
 * `table … { flags owner ; } ; delete table … ; <ruleset>` (nft 1.0.6 has no `destroy`).
 * Interactive mode reads one transaction per line, so the ruleset is flattened onto one line:
 * keep set elements on one line and no trailing `#` comments.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { EventEmitter, once } from 'node:events'
import { HybridError } from '../errors.ts'
import { formatArgv, runCommand, type CommandRunner } from './command.ts'
import { installHint } from './system-packages.ts'

export type NftFamily = 'inet' | 'ip' | 'ip6'

export interface NftOwnerOptions {
  family: NftFamily
  /** Table name (`hybrid_cpe`). */
  table: string
  /** Prepended to `nft -i` and to the `nft -c` check (tests: `['ip', 'netns', 'exec', ns]`). */
  commandPrefix?: readonly string[]
  /** Runner of the `nft -c` check. Default: runCommand. */
  run?: CommandRunner
  /** Deadline of one holder transaction. Default 10000 ms. */
  timeoutMs?: number
}

interface Pending { marker: string, resolve: (stderr: string) => void, reject: (err: Error) => void, timer: NodeJS.Timeout }

const TABLE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,30}$/

/** One line for `nft -i`: drop blank and comment lines, join the rest with ` ; `. */
export function flattenRuleset (text: string): string {
  return text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#')).join(' ; ')
}

/** The same ruleset with its table renamed (for the `nft -c` dry run while the real one is owned). */
export function renameTable (text: string, family: NftFamily, from: string, to: string): string {
  const header = new RegExp(`^(\\s*table\\s+${family}\\s+)${from}(\\s*\\{)`, 'm')
  return text.replace(header, `$1${to}$2`)
}

/** HYBRID_ERR_NFT_HOLDER for a holder that could not be spawned; for ENOENT it names the binary's Debian package. */
function spawnError (argv: readonly string[], err: Error & { code?: unknown }): HybridError {
  const file = argv[0] ?? 'nft'
  const why = err.code === 'ENOENT' ? `'${file}' not found on PATH ${installHint(file)}` : String(err)
  return new HybridError('HYBRID_ERR_NFT_HOLDER', `cannot start ${formatArgv(argv)}: ${why}`,
    { cause: err, detail: { argv: [...argv], errno: err.code } })
}

export class NftOwner extends EventEmitter<{ exit: [code: number | null, signal: NodeJS.Signals | null] }> {
  readonly family: NftFamily
  readonly table: string
  #child: ChildProcess
  #prefix: readonly string[]
  #run: CommandRunner
  #timeoutMs: number
  #stderr = ''
  /** The last stderr bytes, whatever they answered: named when the holder exits. */
  #stderrTail = ''
  #pending: Pending[] = []
  #queue: Promise<unknown> = Promise.resolve()
  #seq = 0
  #exited = false
  #closing = false
  /** Settles once: resolved on 'spawn', rejected on a spawn 'error' (ENOENT, EACCES …). */
  readonly #spawned: Promise<void>

  private constructor (opts: NftOwnerOptions, child: ChildProcess) {
    super()
    this.family = opts.family
    this.table = opts.table
    this.#child = child
    this.#prefix = opts.commandPrefix ?? []
    this.#run = opts.run ?? runCommand
    this.#timeoutMs = opts.timeoutMs ?? 10_000
    child.stderr?.setEncoding('utf8')
    child.stderr?.on('data', (chunk: string) => { this.#onStderr(chunk) })
    child.stdout?.resume()
    child.stdin?.on('error', () => { /* EPIPE after the holder died: 'exit' reports it */ })
    // 'close', not 'exit': it comes after stderr is drained, so the exit error names what nft (or ip netns exec) said
    child.on('close', (code, signal) => { this.#onExit(code, signal) })
    this.#spawned = new Promise<void>((resolve, reject) => {
      // A child that never started emits 'error' and never 'exit': count it as exited right here.
      const onSpawnError = (err: Error): void => { this.#exited = true; reject(spawnError(child.spawnargs, err)) }
      child.once('error', onSpawnError)
      child.once('spawn', () => { child.off('error', onSpawnError); resolve() })
    })
    this.#spawned.catch(() => { /* start() reports it */ })
    child.on('error', () => { /* after spawn: a failed kill(); 'exit' reports the end */ })
  }

  /**
   * Spawn `nft -i` and create the (empty) owner table. Rejects if the table is owned elsewhere, and at
   * once (HYBRID_ERR_NFT_HOLDER naming the binary and its Debian package) if `nft` cannot be spawned.
   */
  static async start (opts: NftOwnerOptions): Promise<NftOwner> {
    if (!TABLE_NAME.test(opts.table)) throw new HybridError('HYBRID_ERR_INTERNAL', `bad nft table name ${JSON.stringify(opts.table)}`)
    const argv = [...(opts.commandPrefix ?? []), 'nft', '-i']
    let child: ChildProcess
    try {
      child = spawn(argv[0] as string, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] })
    } catch (err) { // spawn() throws for some errnos instead of emitting 'error'
      throw spawnError(argv, err as Error)
    }
    const owner = new NftOwner(opts, child)
    try {
      await owner.#spawned
      const t = `${opts.family} ${opts.table}`
      await owner.#transact(`table ${t} { flags owner ; } ; delete table ${t} ; table ${t} { flags owner ; }`, 'HYBRID_ERR_NFT_HOLDER')
    } catch (err) {
      await owner.close()
      throw err
    }
    return owner
  }

  /** PID of the `nft -i` holder. */
  get pid (): number | undefined { return this.#child.pid }
  get alive (): boolean { return !this.#exited }

  /**
   * Check `rulesetText` (a full `table <family> <name> { flags owner … }` definition) with `nft -c`,
   * then replace the table with it atomically. On failure the previous ruleset stays installed.
   */
  async apply (rulesetText: string): Promise<void> {
    const t = `${this.family} ${this.table}`
    const first = flattenRuleset(rulesetText).split(' ; ')[0]
    if (first !== `table ${t} {`) {
      throw new HybridError('HYBRID_ERR_NFT_CHECK',
      `ruleset must define exactly "table ${t} { … }", starts with ${JSON.stringify(first)}`)
    }
    if (!/^\s*flags owner\s*;?\s*$/m.test(rulesetText)) throw new HybridError('HYBRID_ERR_NFT_CHECK', `table ${t} must carry "flags owner"`)
    await this.check(rulesetText)
    await this.#transact(`table ${t} { flags owner ; } ; delete table ${t} ; ${flattenRuleset(rulesetText)}`, 'HYBRID_ERR_NFT_APPLY')
  }

  /** Dry run (`nft -c -f -`) of the ruleset under a scratch table name. */
  async check (rulesetText: string): Promise<void> {
    const scratch = renameTable(rulesetText, this.family, this.table, `${this.table}_check`)
    const argv = [...this.#prefix, 'nft', '-c', '-f', '-']
    try {
      await this.#run(argv, { input: scratch })
    } catch (err) {
      const stderr = (err as HybridError).detail?.['stderr']
      throw new HybridError('HYBRID_ERR_NFT_CHECK', `nft -c rejected the ruleset for ${this.family} ${this.table}: ${String(stderr ?? err)}`,
        { cause: err })
    }
  }

  /** Remove the table (by ending the holder) and wait until `nft -i` exited. Idempotent. */
  async close (): Promise<void> {
    this.#closing = true
    await this.#spawned.catch(() => undefined) // settles at once: 'spawn' or 'error' is the child's first event
    if (this.#exited) return
    const exited = once(this.#child, 'exit')
    this.#child.stdin?.end()
    const timer = setTimeout(() => { this.#child.kill('SIGKILL') }, 3000)
    try { await exited } finally { clearTimeout(timer) }
  }

  /** Send one line plus a sync marker; resolve when the marker's error came back. */
  async #transact (line: string, code: 'HYBRID_ERR_NFT_APPLY' | 'HYBRID_ERR_NFT_HOLDER'): Promise<void> {
    const op = this.#queue.then(async () => {
      const stderr = await this.#send(line)
      if (stderr.trim() !== '') {
        throw new HybridError(code, `nft -i refused the ${this.family} ${this.table} batch: ${stderr.trim()}`,
          { detail: { stderr } })
      }
    })
    this.#queue = op.catch(() => undefined)
    return op
  }

  async #send (line: string): Promise<string> {
    if (this.#exited || this.#closing) throw new HybridError('HYBRID_ERR_NFT_HOLDER', `nft -i holder of ${this.family} ${this.table} is not running`)
    const marker = `list table ${this.family} ${this.table}_sync${++this.#seq}`
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending = this.#pending.filter((p) => p.marker !== marker)
        reject(new HybridError('HYBRID_ERR_NFT_HOLDER', `nft -i did not answer within ${this.#timeoutMs} ms`))
      }, this.#timeoutMs)
      this.#pending.push({ marker, resolve, reject, timer })
      this.#child.stdin?.write(`${line}\n${marker}\n`)
    })
  }

  /** The marker fails with "Error: …\n<marker>\n   ^^^\n"; what precedes that error is the batch's. */
  #onStderr (chunk: string): void {
    this.#stderr += chunk
    this.#stderrTail = (this.#stderrTail + chunk).slice(-400)
    for (;;) {
      const p = this.#pending[0]
      if (p === undefined) { this.#stderr = ''; return }
      const at = this.#stderr.indexOf(`${p.marker}\n`)
      if (at < 0) return
      const caretEnd = this.#stderr.indexOf('\n', at + p.marker.length + 1)
      if (caretEnd < 0) return
      const errorStart = this.#stderr.lastIndexOf('Error:', at)
      const own = this.#stderr.slice(0, errorStart < 0 ? at : errorStart)
      this.#stderr = this.#stderr.slice(caretEnd + 1)
      this.#pending.shift()
      clearTimeout(p.timer)
      p.resolve(own)
    }
  }

  #onExit (code: number | null, signal: NodeJS.Signals | null): void {
    this.#exited = true
    for (const p of this.#pending) {
      clearTimeout(p.timer)
      const stderr = this.#stderrTail.trim() === '' ? '' : `: ${this.#stderrTail.trim()}`
      p.reject(new HybridError('HYBRID_ERR_NFT_HOLDER',
        `nft -i holder of ${this.family} ${this.table} exited (code ${String(code)}, signal ${String(signal)})${stderr}`))
    }
    this.#pending = []
    if (!this.#closing) this.emit('exit', code, signal)
  }
}
