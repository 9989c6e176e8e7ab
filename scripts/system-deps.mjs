#!/usr/bin/env node
// The installer of the Debian packages in shared/src/sys/system-packages.json (the one list).
// Plain Node ESM without npm dependencies: it runs before `npm ci` (CI) and as npm's pretest/prelab.
//
//   node scripts/system-deps.mjs [--for lab,test,...|--all] [--check] [--quiet]
//
// A package counts as present when every one of its binaries is an executable file on PATH
// (plus /usr/local/sbin, /usr/sbin and /sbin, which a non-root Debian PATH lacks but the root-run
// tests and daemons have). The question is "will the tests find this binary", so a python3 from
// pyenv or a curl in /usr/local counts; dpkg's status is only reported. Whether the list itself is
// complete — no step hidden by something a developer's machine happens to have — is what
// test/system/fresh-machine.sh proves on a bare Debian chroot, where nothing else provides them.
//
// It prints to stderr only (as npm's prelab, `npm run lab --silent -- --json` keeps a clean stdout).
// Exit codes: 0 everything present (or installed), 2 bad arguments, 3 something missing and not
// installed (--check, not root, or no apt-get: the exact command is printed), 4 installing failed.
import { spawnSync } from 'node:child_process'
import { readFileSync, statSync, accessSync, constants } from 'node:fs'
import { delimiter, join, dirname, isAbsolute } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

export const EXIT_OK = 0
export const EXIT_USAGE = 2
export const EXIT_MISSING = 3
export const EXIT_INSTALL_FAILED = 4

export const LIST_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', 'shared', 'src', 'sys', 'system-packages.json')

/** Directories searched after PATH: Debian puts ip, nft, sysctl, danted there, outside a non-root PATH. */
export const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin']

/** Services that packages start on install; the tests and the lab start their own instances. */
export const SERVICES_STARTED_ON_INSTALL = {
  'dante-server': ['danted'], prometheus: ['prometheus'], haproxy: ['haproxy'], 'shadowsocks-libev': ['shadowsocks-libev']
}

/** Directories whose binaries come from Debian packages; a binary elsewhere is reported as such. */
const DEBIAN_DIRS = new Set(['/usr/bin', '/usr/sbin', '/bin', '/sbin'])

export const USAGE = `usage: node scripts/system-deps.mjs [--for WHO[,WHO...]|--all] [--check] [--quiet]
  --for WHO   only the packages needed by WHO (cpe, concentrator, lab, test, bench, ci, ...; see the list)
  --all       every package in the list (the default)
  --check     report only: never install; exit 3 when something is missing
  --quiet     print nothing when everything is present
The list: shared/src/sys/system-packages.json. Docs: docs/system-packages.md.`

export class UsageError extends Error {}

/**
 * `['--for', 'lab,test', '--check']` → `{ who: ['lab', 'test'], check: true, quiet: false, help: false }`.
 * `who` is undefined for --all (and by default). Throws UsageError on anything else.
 */
export function parseArgs (argv) {
  const opts = { who: undefined, check: false, quiet: false, help: false }
  let sawAll = false
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--check') opts.check = true
    else if (arg === '--quiet' || arg === '-q') opts.quiet = true
    else if (arg === '--help' || arg === '-h') opts.help = true
    else if (arg === '--all') sawAll = true
    else if (arg === '--for' || arg.startsWith('--for=')) {
      const value = arg === '--for' ? argv[++i] : arg.slice('--for='.length)
      if (value === undefined || value.startsWith('--')) throw new UsageError('--for needs a value, e.g. --for lab,test')
      const names = value.split(',').map((s) => s.trim()).filter(Boolean)
      if (names.length === 0) throw new UsageError('--for needs a value, e.g. --for lab,test')
      opts.who = [...new Set([...(opts.who ?? []), ...names])]
    } else throw new UsageError(`unknown argument ${JSON.stringify(arg)}`)
  }
  if (sawAll && opts.who !== undefined) throw new UsageError('--all and --for exclude each other')
  return opts
}

/** The packages whose `for` names one of `who` (all of them when `who` is undefined), in list order. */
export function selectPackages (packages, who) {
  if (who === undefined) return [...packages]
  const known = new Set(packages.flatMap((p) => p.for))
  const unknown = who.filter((w) => !known.has(w))
  if (unknown.length > 0) throw new UsageError(`--for ${unknown.join(',')}: not in the list (known: ${[...known].sort().join(', ')})`)
  return packages.filter((p) => p.for.some((f) => who.includes(f)))
}

/** The directories a binary is looked up in: PATH's, then the sbin directories PATH lacks. */
export function searchDirs (pathVar) {
  const fromPath = (pathVar ?? '').split(delimiter).filter((d) => d !== '' && isAbsolute(d))
  return [...new Set([...fromPath, ...SBIN_DIRS])]
}

function isExecutableFile (file) {
  try {
    if (!statSync(file).isFile()) return false
    accessSync(file, constants.X_OK)
    return true
  } catch { return false }
}

/** The first executable `name` in `dirs`, or undefined. */
export function resolveBinary (name, dirs, isExecutable = isExecutableFile) {
  // A few packages ship their programs off PATH (podman's netavark): the list names them by path.
  if (name.startsWith('/')) return isExecutable(name) ? name : undefined
  for (const dir of dirs) {
    const file = join(dir, name)
    if (isExecutable(file)) return file
  }
  return undefined
}

/**
 * Splits `packages` into missing (some binary unresolvable; with the missing ones) and present
 * (with where each binary was found). `resolve(name)` returns a path or undefined.
 */
export function checkPackages (packages, resolve) {
  const missing = []
  const present = []
  for (const p of packages) {
    const found = p.binaries.map((b) => [b, resolve(b)])
    const absent = found.filter(([, at]) => at === undefined).map(([b]) => b)
    if (absent.length > 0) missing.push({ pkg: p, binaries: absent })
    else present.push({ pkg: p, found: Object.fromEntries(found) })
  }
  return { missing, present }
}

/** `apt-get install -y --no-install-recommends a b` (with `sudo ` and the update step for a non-root user). */
export function installCommandText (packageNames, { sudo = false } = {}) {
  const s = sudo ? 'sudo ' : ''
  return `${s}apt-get update && ${s}apt-get install -y --no-install-recommends ${packageNames.join(' ')}`
}

/** The argument vector the installer runs apt-get install with (after one apt-get update). */
export function aptInstallArgs (packageNames) {
  return ['-o', 'DPkg::Lock::Timeout=300', 'install', '-y', '-q', '--no-install-recommends', ...packageNames]
}

/** `for test, lab` */
export function whoText (who) { return who === undefined ? 'all' : who.join(',') }

/** Binaries resolved outside Debian's directories: `python3 at /root/.pyenv/shims/python3`. */
export function foreignBinaries (present) {
  return present.flatMap(({ found }) => Object.entries(found)
    .filter(([b, at]) => !b.startsWith('/') && !DEBIAN_DIRS.has(dirname(at)))
    .map(([b, at]) => `${b} at ${at}`))
}

function dpkgStatus (names, resolve) {
  const dpkgQuery = resolve('dpkg-query')
  if (dpkgQuery === undefined) return new Map()
  // eslint-disable-next-line no-template-curly-in-string -- dpkg-query's format, not JavaScript's
  const r = spawnSync(dpkgQuery, ['-W', '-f=${Package} ${Status}\\n', ...names], { encoding: 'utf8' })
  const status = new Map()
  for (const line of (r.stdout ?? '').split('\n')) {
    const [name, ...rest] = line.split(' ')
    if (name) status.set(name, rest.join(' ') === 'install ok installed')
  }
  return status
}

function log (line) { process.stderr.write(line + '\n') }

function describeMissing (missing, resolve) {
  const installed = dpkgStatus(missing.map((m) => m.pkg.package), resolve)
  for (const { pkg, binaries } of missing) {
    const note = installed.get(pkg.package) === true ? ' (dpkg says installed: is PATH missing its directory?)' : ''
    log(`  ${pkg.package} [${pkg.for.join(', ')}]: no ${binaries.join(', ')} on PATH${note} — ${pkg.why}`)
  }
}

function stopServices (installedNames) {
  const systemd = isExecutableFile('/usr/bin/systemctl') && (() => { try { return statSync('/run/systemd/system').isDirectory() } catch { return false } })()
  for (const name of installedNames) {
    for (const svc of SERVICES_STARTED_ON_INSTALL[name] ?? []) {
      const r = systemd
        ? spawnSync('systemctl', ['stop', svc], { stdio: 'ignore' })
        : spawnSync('service', [svc, 'stop'], { stdio: 'ignore' })
      log(`  stopped service ${svc} (started by installing ${name}; tests and the lab start their own)${r.status === 0 ? '' : ' — was not running'}`)
    }
  }
}

function aptInstall (names) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const t0 = Date.now()
  for (const [what, args] of [['apt-get update', ['-q', 'update']], ['apt-get install', aptInstallArgs(names)]]) {
    const r = spawnSync('apt-get', args, { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
    if (r.status !== 0) {
      const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-25).join('\n')
      log(`system-deps: ${what} failed (exit ${r.status ?? r.signal ?? r.error?.message}):\n${out}`)
      return false
    }
    if (what === 'apt-get install') {
      const setUp = (r.stdout.match(/^Setting up /gm) ?? []).length
      log(`  apt-get set up ${setUp} package(s) including dependencies in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    }
  }
  return true
}

export function main (argv = process.argv.slice(2), env = process.env) {
  let opts, selected
  const list = JSON.parse(readFileSync(LIST_PATH, 'utf8')).packages
  try {
    opts = parseArgs(argv)
    if (opts.help) { process.stdout.write(USAGE + '\n'); return EXIT_OK }
    selected = selectPackages(list, opts.who)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`system-deps: ${err.message}\n${USAGE}\n`)
    return EXIT_USAGE
  }
  const dirs = searchDirs(env.PATH)
  const resolve = (b) => resolveBinary(b, dirs)
  const { missing, present } = checkPackages(selected, resolve)
  const who = whoText(opts.who)
  if (missing.length === 0) {
    if (!opts.quiet) {
      const foreign = foreignBinaries(present)
      log(`system-deps: ${selected.length} package(s) for ${who} present${foreign.length > 0 ? ` (not from Debian's directories: ${foreign.join(', ')})` : ''}`)
    }
    return EXIT_OK
  }
  const names = missing.map((m) => m.pkg.package)
  const root = typeof process.getuid === 'function' && process.getuid() === 0
  const hasApt = resolve('apt-get') !== undefined
  if (opts.check || !root || !hasApt) {
    const reason = opts.check ? '--check' : !hasApt ? 'no apt-get on this machine' : 'not root'
    log(`system-deps: ${missing.length} of ${selected.length} package(s) for ${who} missing (not installing: ${reason}):`)
    describeMissing(missing, resolve)
    log(`install them with:\n  ${installCommandText(names, { sudo: !root })}`)
    if (!opts.check && root === false && hasApt) log(`or: sudo node scripts/system-deps.mjs${opts.who ? ` --for ${who}` : ''}`)
    return EXIT_MISSING
  }
  log(`system-deps: installing ${missing.length} missing package(s) for ${who}:`)
  for (const { pkg } of missing) log(`  ${pkg.package} [${pkg.for.join(', ')}]: ${pkg.why}`)
  log(`  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${names.join(' ')}`)
  if (!aptInstall(names)) return EXIT_INSTALL_FAILED
  stopServices(names)
  const after = checkPackages(missing.map((m) => m.pkg), resolve).missing
  if (after.length > 0) {
    log('system-deps: installed, but still not on PATH (fix the list entry in shared/src/sys/system-packages.json):')
    for (const { pkg, binaries } of after) log(`  ${pkg.package}: ${binaries.join(', ')}`)
    return EXIT_INSTALL_FAILED
  }
  log(`system-deps: ${selected.length} package(s) for ${who} present (${missing.length} installed)`)
  return EXIT_OK
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main()
}
