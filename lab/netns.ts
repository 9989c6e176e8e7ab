/**
 * Network-namespace helpers for end-to-end tests and the lab. Every namespace a test creates carries
 * a prefix; `removeNamespaces(prefix)` tears them all down (also after a crash), killing only the
 * processes that live inside those namespaces.
 *
 * Addresses used inside namespaces must come from documentation ranges (192.0.2.0/24,
 * 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32).
 */
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { promisify } from 'node:util'

const execFileP = promisify(execFile)

export class CommandError extends Error {
  readonly argv: readonly string[]
  readonly stderr: string
  constructor (argv: readonly string[], stderr: string, cause: unknown) {
    super(`command failed: ${argv.join(' ')}: ${stderr.trim()}`, { cause })
    this.name = 'CommandError'
    this.argv = argv
    this.stderr = stderr
  }
}

/** Run a command (never through a shell); throws a CommandError naming the command and its stderr. */
export async function run (argv: readonly string[], opts: { timeoutMs?: number, input?: string } = {}): Promise<string> {
  const [file, ...args] = argv
  if (file === undefined) throw new Error('run: empty argv')
  try {
    if (opts.input !== undefined) return await runWithInput(argv, opts.input, opts.timeoutMs ?? 30_000)
    const { stdout } = await execFileP(file, args, { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 << 20 })
    return stdout
  } catch (err) {
    if (err instanceof CommandError) throw err
    const stderr = (err as { stderr?: string }).stderr ?? String(err)
    throw new CommandError(argv, stderr, err)
  }
}

async function runWithInput (argv: readonly string[], input: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const [file, ...args] = argv as [string, ...string[]]
    const child = execFile(file, args, { timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err !== null) reject(new CommandError(argv, stderr, err))
      else resolve(stdout)
    })
    child.stdin?.end(input)
  })
}

/** Run a command, ignoring failure (for idempotent teardown). */
export async function tryRun (argv: readonly string[]): Promise<boolean> {
  try { await run(argv); return true } catch { return false }
}

export interface Netns {
  readonly name: string
  /** Run a command inside the namespace. */
  exec: (argv: readonly string[], opts?: { timeoutMs?: number, input?: string }) => Promise<string>
  /** Spawn a long-running process inside the namespace. The caller owns it (kill by PID). */
  spawn: (argv: readonly string[], opts?: SpawnOptions) => ChildProcess
}

export function netns (name: string): Netns {
  return {
    name,
    exec: async (argv, opts) => run(['ip', 'netns', 'exec', name, ...argv], opts),
    spawn: (argv, opts) => spawn('ip', ['netns', 'exec', name, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], ...opts })
  }
}

export async function listNamespaces (): Promise<string[]> {
  const out = await run(['ip', '-j', 'netns', 'list']).catch(() => '')
  if (out.trim() === '') return []
  return (JSON.parse(out) as Array<{ name: string }>).map((n) => n.name)
}

/** Create a namespace (loopback up, forwarding on); any stale one of the same name is removed first. */
export async function createNamespace (name: string): Promise<Netns> {
  await removeNamespace(name)
  await run(['ip', 'netns', 'add', name])
  const ns = netns(name)
  await ns.exec(['ip', 'link', 'set', 'lo', 'up'])
  return ns
}

/** Kill every process inside the namespace (by PID, as listed by `ip netns pids`), then delete it. */
export async function removeNamespace (name: string): Promise<void> {
  const pids = (await run(['ip', 'netns', 'pids', name]).catch(() => '')).split(/\s+/).filter((p) => p !== '')
  for (const pid of pids) {
    try { process.kill(Number(pid), 'SIGKILL') } catch { /* already gone */ }
  }
  if (pids.length > 0) await waitGone(pids.map(Number), 2000)
  await tryRun(['ip', 'netns', 'del', name])
}

export async function removeNamespaces (prefix: string): Promise<string[]> {
  const names = (await listNamespaces()).filter((n) => n.startsWith(prefix))
  for (const n of names) await removeNamespace(n)
  return names
}

/**
 * A prefix owned by this process, `<base><pid>-`: runs of the same tool (the relay benchmark) never
 * delete each other's namespaces; `removeStaleRuns(base)` clears those of dead runs.
 */
export function ownPrefix (base: string, pid = process.pid): string {
  return `${base}${pid}-`
}

/** Namespaces `<base><pid>-…` whose pid is not alive (pure; `isAlive` injected). Others are left alone. */
export function staleRunNamespaces (names: readonly string[], base: string, isAlive: (pid: number) => boolean): string[] {
  return names.filter((n) => {
    if (!n.startsWith(base)) return false
    const m = /^(\d+)-/.exec(n.slice(base.length))
    return m?.[1] !== undefined && !isAlive(Number(m[1]))
  })
}

/** Remove the namespaces of dead runs under `base` (see ownPrefix). */
export async function removeStaleRuns (base: string): Promise<string[]> {
  const names = staleRunNamespaces(await listNamespaces(), base, alive)
  for (const n of names) await removeNamespace(n)
  return names
}

async function waitGone (pids: number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (pids.every((pid) => !alive(pid))) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

/** Create a veth pair between two namespaces and bring both ends up. */
export async function veth (a: Netns, aIf: string, b: Netns, bIf: string): Promise<void> {
  await run(['ip', 'link', 'add', aIf, 'netns', a.name, 'type', 'veth', 'peer', 'name', bIf, 'netns', b.name])
  await a.exec(['ip', 'link', 'set', aIf, 'up'])
  await b.exec(['ip', 'link', 'set', bIf, 'up'])
}

/**
 * Why end-to-end tests cannot run here, or undefined when they can (root and kernel MPTCP present).
 * Tests call `t.skip(reason)` only then; CI has both, so there they always run.
 */
export function e2eSkipReason (): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, nftables)'
  try {
    if (readFileSync('/proc/sys/net/mptcp/enabled', 'utf8').trim() !== '1') return 'kernel MPTCP disabled (sysctl net.mptcp.enabled=1)'
  } catch {
    return 'kernel without MPTCP (/proc/sys/net/mptcp/enabled missing)'
  }
  return undefined
}
