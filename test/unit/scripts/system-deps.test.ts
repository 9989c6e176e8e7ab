// The pure parts of the installer scripts/system-deps.mjs: arguments, selection by `for`, the
// presence rule and the command text. The installing itself is proven by test/system/fresh-machine.sh.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import {
  parseArgs, selectPackages, searchDirs, resolveBinary, checkPackages, installCommandText, aptInstallArgs,
  foreignBinaries, whoText, UsageError, LIST_PATH, SBIN_DIRS, EXIT_OK, EXIT_USAGE
} from '../../../scripts/system-deps.mjs'
import type { SystemPackage } from '../../../scripts/system-deps.mjs'

const script = new URL('../../../scripts/system-deps.mjs', import.meta.url).pathname
const pkg = (name: string, binaries: string[], ...forWho: string[]): SystemPackage => ({ package: name, binaries, for: forWho, why: `why ${name}` })
const LIST = [
  pkg('iproute2', ['ip', 'tc', 'ss'], 'cpe', 'concentrator', 'lab', 'test'),
  pkg('mptcpize', ['mptcpize'], 'test'),
  pkg('curl', ['curl'], 'lab', 'test'),
  pkg('debootstrap', ['debootstrap'], 'ci')
]
const names = (ps: readonly SystemPackage[]): string[] => ps.map((p) => p.package)

test('parseArgs: defaults to all packages, installing, not quiet', () => {
  assert.deepEqual(parseArgs([]), { who: undefined, check: false, quiet: false, help: false })
  assert.deepEqual(parseArgs(['--all', '--check', '--quiet']), { who: undefined, check: true, quiet: true, help: false })
})

test('parseArgs: --for takes a comma list, as a separate or = argument, repeated, deduplicated', () => {
  assert.deepEqual(parseArgs(['--for', 'lab,test']).who, ['lab', 'test'])
  assert.deepEqual(parseArgs(['--for=test', '--for', 'test, bench,']).who, ['test', 'bench'])
  assert.equal(parseArgs(['-q', '--for', 'lab']).quiet, true)
  assert.equal(parseArgs(['--help']).help, true)
})

test('parseArgs: rejects unknown arguments, a missing --for value and --all with --for', () => {
  for (const argv of [['--install'], ['test'], ['--for'], ['--for', '--check'], ['--for', ','], ['--for=', 'x'], ['--all', '--for', 'lab']]) {
    assert.throws(() => parseArgs(argv), UsageError, JSON.stringify(argv))
  }
})

test('selectPackages: by `for`, in list order; all when who is undefined', () => {
  assert.deepEqual(names(selectPackages(LIST, undefined)), ['iproute2', 'mptcpize', 'curl', 'debootstrap'])
  assert.deepEqual(names(selectPackages(LIST, ['lab'])), ['iproute2', 'curl'])
  assert.deepEqual(names(selectPackages(LIST, ['ci', 'cpe'])), ['iproute2', 'debootstrap'])
  assert.deepEqual(names(selectPackages(LIST, ['test'])), ['iproute2', 'mptcpize', 'curl'])
})

test('selectPackages: an unknown `for` is a usage error naming the known ones', () => {
  assert.throws(() => selectPackages(LIST, ['tests']),
    (err: Error) => err instanceof UsageError && /known: ci, concentrator, cpe, lab, test/.test(err.message))
})

test('searchDirs: PATH first, then the sbin directories a user PATH lacks; no duplicates or relative entries', () => {
  assert.deepEqual(searchDirs('/usr/bin:/bin'), ['/usr/bin', '/bin', ...SBIN_DIRS])
  assert.deepEqual(searchDirs('/usr/sbin::.:bin:/usr/bin'), ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/sbin'])
  assert.deepEqual(searchDirs(undefined), [...SBIN_DIRS])
})

test('resolveBinary: a name given as an absolute path is checked as it is (programs off PATH)', () => {
  const isExec = (f: string): boolean => f === '/usr/lib/podman/netavark'
  assert.equal(resolveBinary('/usr/lib/podman/netavark', ['/usr/bin'], isExec), '/usr/lib/podman/netavark')
  assert.equal(resolveBinary('/usr/lib/podman/aardvark-dns', ['/usr/bin'], isExec), undefined)
})

test('resolveBinary: the first directory holding an executable wins', () => {
  const exec = new Set(['/usr/sbin/ip', '/root/.pyenv/shims/python3', '/usr/bin/python3'])
  const isExec = (f: string): boolean => exec.has(f)
  assert.equal(resolveBinary('ip', ['/usr/bin', '/usr/sbin'], isExec), '/usr/sbin/ip')
  assert.equal(resolveBinary('python3', ['/root/.pyenv/shims', '/usr/bin'], isExec), '/root/.pyenv/shims/python3')
  assert.equal(resolveBinary('nft', ['/usr/bin', '/usr/sbin'], isExec), undefined)
})

test('checkPackages: a package is missing when any of its binaries is; present ones say where', () => {
  const at: Record<string, string> = { ip: '/usr/sbin/ip', ss: '/usr/bin/ss', curl: '/usr/local/bin/curl' }
  const { missing, present } = checkPackages(LIST, (b) => at[b])
  assert.deepEqual(missing.map((m) => [m.pkg.package, m.binaries]),
    [['iproute2', ['tc']], ['mptcpize', ['mptcpize']], ['debootstrap', ['debootstrap']]])
  assert.deepEqual(present.map((p) => [p.pkg.package, p.found]), [['curl', { curl: '/usr/local/bin/curl' }]])
  assert.deepEqual(foreignBinaries(present), ['curl at /usr/local/bin/curl'])
})

test('installCommandText: the exact command, with sudo for a non-root user', () => {
  assert.equal(installCommandText(['mptcpize', 'curl']), 'apt-get update && apt-get install -y --no-install-recommends mptcpize curl')
  assert.equal(installCommandText(['nftables'], { sudo: true }), 'sudo apt-get update && sudo apt-get install -y --no-install-recommends nftables')
})

test('aptInstallArgs: non-interactive, no recommends (so the list must name everything), waits for the dpkg lock', () => {
  const args = aptInstallArgs(['mptcpize'])
  assert.deepEqual(args.slice(-5), ['install', '-y', '-q', '--no-install-recommends', 'mptcpize'])
  assert.ok(args.includes('DPkg::Lock::Timeout=300'))
})

test('whoText', () => {
  assert.equal(whoText(undefined), 'all')
  assert.equal(whoText(['lab', 'test']), 'lab,test')
})

test('the real list: schema, known `for` values, test needs mptcpize (only recommended by mptcpd)', () => {
  const list = (JSON.parse(readFileSync(LIST_PATH, 'utf8')) as { packages: SystemPackage[] }).packages
  const known = new Set(['cpe', 'concentrator', 'lab', 'test', 'bench', 'containers', 'ci'])
  for (const p of list) {
    assert.deepEqual(Object.keys(p).sort(), ['binaries', 'for', 'package', 'why'], p.package)
    assert.ok(p.binaries.length > 0 && p.for.length > 0 && p.why.length > 0, p.package)
    for (const f of p.for) assert.ok(known.has(f), `${p.package}: for ${f}`)
  }
  assert.equal(new Set(list.map((p) => p.package)).size, list.length, 'no package twice')
  assert.ok(names(selectPackages(list, ['test'])).includes('mptcpize'))
  assert.deepEqual(names(selectPackages(list, ['ci'])), ['debootstrap'])
})

test('the command line: --help exits 0 on stdout, a bad argument exits 2 with the usage on stderr', () => {
  const help = spawnSync(process.execPath, [script, '--help'], { encoding: 'utf8' })
  assert.equal(help.status, EXIT_OK)
  assert.match(help.stdout, /^usage: node scripts\/system-deps.mjs/)
  const bad = spawnSync(process.execPath, [script, '--for', 'nobody-needs-this'], { encoding: 'utf8' })
  assert.equal(bad.status, EXIT_USAGE)
  assert.equal(bad.stdout, '')
  assert.match(bad.stderr, /--for nobody-needs-this: not in the list/)
})

test('docs/system-packages.md has a table row for every package of the list, with its `for`', () => {
  const doc = readFileSync(new URL('../../../docs/system-packages.md', import.meta.url), 'utf8')
  const list = (JSON.parse(readFileSync(LIST_PATH, 'utf8')) as { packages: SystemPackage[] }).packages
  for (const p of list) {
    const row = doc.split('\n').find((l) => l.startsWith(`| \`${p.package}\` |`))
    assert.ok(row !== undefined, `docs/system-packages.md: no row for ${p.package}`)
    assert.equal(row.split('|')[3]?.trim(), p.for.join(', '), `docs/system-packages.md: ${p.package}'s for`)
  }
})
