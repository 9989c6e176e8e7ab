/**
 * System prerequisites of a daemon, checked once at process start so that a missing piece fails in
 * well under a second with one error naming every problem and its fix, instead of surfacing later
 * as a hang or an obscure command failure. Each daemon declares what its configuration needs
 * (cpe/src/prerequisites.ts, concentrator/src/prerequisites.ts); `checkPrerequisites` probes it:
 *
 * - `binary`: an executable the daemon will exec, resolved on PATH without running it; the fix
 *   names its Debian package from system-packages.json;
 * - `mptcp`: `net.mptcp.enabled` is 1 and socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP) succeeds;
 * - `nft-tproxy`: the kernel accepts a table with a `tproxy` statement and `socket transparent`
 *   (and `flags owner` when `owner`), checked with `nft -c -f -` — a dry run, nothing is applied;
 * - `tun`: /dev/net/tun can be opened for reading and writing.
 *
 * Every probe is injectable (`PrerequisiteProbes`), so the checks are testable without the host.
 */
import { accessSync, constants, readFileSync, statSync } from 'node:fs'
import { isAbsolute, join } from 'node:path'
import { HybridError } from '../errors.ts'
import { closeFd, openStreamSocket } from '../net/sockopt.ts'
import { runCommand, type CommandRunner } from './command.ts'
import { installHint } from './system-packages.ts'

/** One thing the daemon needs from its host; `for` says which feature needs it (shown in the message). */
export type Requirement =
  | { readonly kind: 'binary', readonly name: string, readonly for: string }
  | { readonly kind: 'mptcp', readonly for: string }
  | { readonly kind: 'nft-tproxy', readonly owner: boolean, readonly for: string }
  | { readonly kind: 'tun', readonly for: string }

export interface PrerequisiteProblem {
  readonly kind: Requirement['kind']
  /** The missing piece: `nft`, `net.mptcp.enabled`, `/dev/net/tun` … */
  readonly what: string
  /** What is wrong and how to fix it, one sentence. */
  readonly message: string
}

export interface PrerequisiteProbes {
  /** PATH to resolve binaries on (the daemon passes its own). */
  readonly path: string
  /** `/proc/sys` value of a dotted key, trimmed; undefined when the file does not exist. */
  readonly readSysctl?: (key: string) => string | undefined
  /** socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP) and close; the error text on failure. */
  readonly openMptcpSocket?: () => string | undefined
  /** Whether a device node can be opened read-write. */
  readonly canOpenDevice?: (path: string) => boolean
  /** Runner of the `nft -c` dry run. Default runCommand. */
  readonly run?: CommandRunner
  /** Deadline of the `nft -c` dry run. Default 500 ms (the whole start must fail within 1 s). */
  readonly nftTimeoutMs?: number
}

/** Absolute path of `name` on `path` (an executable regular file), without running it. */
export function resolveOnPath (name: string, path: string): string | undefined {
  if (name.includes('/')) return isExecutableFile(name) ? name : undefined
  for (const dir of path.split(':')) {
    if (dir === '' || !isAbsolute(dir)) continue // an empty or relative entry would search the cwd
    const file = join(dir, name)
    if (isExecutableFile(file)) return file
  }
  return undefined
}

function isExecutableFile (file: string): boolean {
  try {
    accessSync(file, constants.X_OK)
    return statSync(file).isFile()
  } catch {
    return false
  }
}

const readProcSys = (key: string): string | undefined => {
  try {
    return readFileSync(`/proc/sys/${key.replaceAll('.', '/')}`, 'utf8').trim()
  } catch {
    return undefined
  }
}

const tryMptcpSocket = (): string | undefined => {
  try {
    closeFd(openStreamSocket({ family: 4, protocol: 'mptcp', onMptcpUnavailable: 'fail' }).fd)
    return undefined
  } catch (err) {
    return (err as Error).message
  }
}

const canOpenReadWrite = (path: string): boolean => {
  try {
    accessSync(path, constants.R_OK | constants.W_OK)
    return true
  } catch {
    return false
  }
}

/** The scratch table of the `nft -c` dry run (never installed). */
export function nftProbeRuleset (owner: boolean): string {
  return [
    'table inet hybrid_prereq_check {',
    ...(owner ? ['  flags owner'] : []),
    '  chain prerouting {',
    '    type filter hook prerouting priority mangle; policy accept;',
    '    socket transparent 1 meta mark set 1 accept',
    '    meta nfproto ipv4 meta l4proto tcp tproxy ip to :1 meta mark set 1 accept',
    '    meta nfproto ipv6 meta l4proto tcp tproxy ip6 to :1 meta mark set 1 accept',
    '  }',
    '}',
    ''
  ].join('\n')
}

/** One requirement per probe (binaries by name, the rest by kind): their `for`s joined, `owner` or-ed. */
function merge (requirements: readonly Requirement[]): Requirement[] {
  const byProbe = new Map<string, Requirement>()
  for (const r of requirements) {
    const key = r.kind === 'binary' ? `binary:${r.name}` : r.kind
    const prev = byProbe.get(key)
    if (prev === undefined) { byProbe.set(key, r); continue }
    const needFor = prev.for.split(', ').includes(r.for) ? prev.for : `${prev.for}, ${r.for}`
    byProbe.set(key,
      prev.kind === 'nft-tproxy' && r.kind === 'nft-tproxy' ? { ...prev, owner: prev.owner || r.owner, for: needFor } : { ...prev, for: needFor })
  }
  return [...byProbe.values()]
}

function binaryProblem (name: string, needFor: string, path: string): PrerequisiteProblem | undefined {
  if (resolveOnPath(name, path) !== undefined) return undefined
  return { kind: 'binary', what: name, message: `missing system binary '${name}' ${installHint(name)} (needed for ${needFor}; PATH=${path})` }
}

function mptcpProblem (needFor: string, probes: PrerequisiteProbes): PrerequisiteProblem | undefined {
  const enabled = (probes.readSysctl ?? readProcSys)('net.mptcp.enabled')
  const what = 'net.mptcp.enabled'
  if (enabled === undefined) {
    return {
      kind: 'mptcp',
      what,
      message: `kernel without MPTCP (no /proc/sys/net/mptcp/enabled; needed for ${needFor}): use a kernel >= 5.6 built with CONFIG_MPTCP=y`
    }
  }
  if (enabled !== '1') {
    return {
      kind: 'mptcp',
      what,
      message: `kernel MPTCP is disabled (net.mptcp.enabled=${enabled}; needed for ${needFor}): enable it with sysctl -w net.mptcp.enabled=1 (per network namespace)`
    }
  }
  const failure = (probes.openMptcpSocket ?? tryMptcpSocket)()
  if (failure === undefined) return undefined
  return { kind: 'mptcp', what: 'IPPROTO_MPTCP', message: `cannot create an MPTCP socket (needed for ${needFor}): ${failure}` }
}

/** `nftMissingReported`: a `binary` requirement already names a missing nft (report it once). */
async function nftProblem (owner: boolean, needFor: string, probes: PrerequisiteProbes,
  nftMissingReported: boolean): Promise<PrerequisiteProblem | undefined> {
  const nft = resolveOnPath('nft', probes.path)
  if (nft === undefined) return nftMissingReported ? undefined : binaryProblem('nft', needFor, probes.path)
  try {
    await (probes.run ?? runCommand)([nft, '-c', '-f', '-'], { input: nftProbeRuleset(owner), timeoutMs: probes.nftTimeoutMs ?? 500 })
    return undefined
  } catch (err) {
    const stderr = String((err as HybridError).detail?.['stderr'] ?? (err as Error).message).split('\n')[0]
    const features = owner ? 'tproxy, socket transparent and owner tables' : 'tproxy and socket transparent'
    return {
      kind: 'nft-tproxy',
      what: 'nftables tproxy',
      message: `the kernel refused a dry run of nftables ${features} (needed for ${needFor}): ${stderr}; ` +
        'needs CAP_NET_ADMIN, nftables >= 1.0.1 (flags owner) and the kernel modules nft_tproxy, nft_socket (CONFIG_NFT_TPROXY, CONFIG_NFT_SOCKET)'
    }
  }
}

function tunProblem (needFor: string, probes: PrerequisiteProbes): PrerequisiteProblem | undefined {
  if ((probes.canOpenDevice ?? canOpenReadWrite)('/dev/net/tun')) return undefined
  return {
    kind: 'tun',
    what: '/dev/net/tun',
    message: `cannot open /dev/net/tun (needed for ${needFor}): load the tun module (modprobe tun, CONFIG_TUN) and run with CAP_NET_ADMIN`
  }
}

/** Every problem of `requirements` on this host (empty: all met). Binary problems come first. */
export async function findPrerequisiteProblems (requirements: readonly Requirement[], probes: PrerequisiteProbes): Promise<PrerequisiteProblem[]> {
  const merged = merge(requirements)
  const needsNftBinary = merged.some((r) => r.kind === 'binary' && r.name === 'nft')
  const found = await Promise.all(merged.map(async (r) => {
    switch (r.kind) {
      case 'binary': return binaryProblem(r.name, r.for, probes.path)
      case 'mptcp': return mptcpProblem(r.for, probes)
      case 'nft-tproxy': return nftProblem(r.owner, r.for, probes, needsNftBinary)
      case 'tun': return tunProblem(r.for, probes)
    }
  }))
  return found.filter((p): p is PrerequisiteProblem => p !== undefined)
}

/** One HYBRID_ERR_PREREQUISITE naming every problem (`detail.problems`). */
export function prerequisiteError (problems: readonly PrerequisiteProblem[]): HybridError {
  const list = problems.map((p, i) => `(${i + 1}) ${p.message}`).join('; ')
  return new HybridError('HYBRID_ERR_PREREQUISITE', `${problems.length} system prerequisite(s) not met: ${list}`, { detail: { problems } })
}

/** Resolves when every requirement is met; rejects with one HYBRID_ERR_PREREQUISITE listing all problems. */
export async function checkPrerequisites (requirements: readonly Requirement[], probes: PrerequisiteProbes): Promise<void> {
  const problems = await findPrerequisiteProblems(requirements, probes)
  if (problems.length > 0) throw prerequisiteError(problems)
}
