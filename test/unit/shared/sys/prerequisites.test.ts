/**
 * Prerequisite checks: PATH resolution against temporary directories, every problem kind with
 * injected probes, and (as root) the real `nft -c` dry run inside a scratch namespace
 * (`hat-pq-prereq`); nothing is ever installed.
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createNamespace, removeNamespaces } from '../../../../lab/netns.ts'
import type { HybridError } from '../../../../shared/src/errors.ts'
import { prefixedRunner } from '../../../../shared/src/sys/command.ts'
import {
  checkPrerequisites, findPrerequisiteProblems, nftProbeRuleset, resolveOnPath, type PrerequisiteProbes, type Requirement
} from '../../../../shared/src/sys/prerequisites.ts'
import { debianPackageOf, installHint, SYSTEM_PACKAGES } from '../../../../shared/src/sys/system-packages.ts'

const dir = mkdtempSync(join(tmpdir(), 'hat-pq-path-'))
after(() => { rmSync(dir, { recursive: true, force: true }) })
const bin = join(dir, 'bin')
mkdirSync(bin)
writeFileSync(join(bin, 'ip'), '#!/bin/sh\nexit 0\n', { mode: 0o755 })
writeFileSync(join(bin, 'sysctl'), 'not executable\n', { mode: 0o644 })
mkdirSync(join(bin, 'nft')) // a directory is not a binary

/** Probes that find everything in order, except what a test overrides. */
const healthy = (over: Partial<PrerequisiteProbes> = {}): PrerequisiteProbes => ({
  path: '/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin',
  readSysctl: () => '1',
  openMptcpSocket: () => undefined,
  canOpenDevice: () => true,
  run: async () => '',
  ...over
})

test('system-packages.json: nft → nftables, ip → iproute2, sysctl → procps; every daemon binary has a package', () => {
  assert.equal(debianPackageOf('nft'), 'nftables')
  assert.equal(debianPackageOf('ip'), 'iproute2')
  assert.equal(debianPackageOf('sysctl'), 'procps')
  assert.equal(debianPackageOf('no-such-tool'), undefined)
  assert.equal(installHint('nft'), '(Debian package nftables): install with apt-get install nftables')
  const daemonBinaries = SYSTEM_PACKAGES.filter((p) => p.for.includes('cpe') || p.for.includes('concentrator')).flatMap((p) => p.binaries)
  for (const b of ['nft', 'ip', 'sysctl']) assert.ok(daemonBinaries.includes(b), b)
})

test('resolveOnPath: executable regular files only; empty and relative PATH entries are not searched', () => {
  assert.equal(resolveOnPath('ip', `/nonexistent:${bin}`), join(bin, 'ip'))
  assert.equal(resolveOnPath('sysctl', bin), undefined, 'not executable')
  assert.equal(resolveOnPath('nft', bin), undefined, 'a directory')
  assert.equal(resolveOnPath('ip', ''), undefined)
  assert.equal(resolveOnPath('ip', `:.:bin:${dir}`), undefined)
  assert.equal(resolveOnPath(join(bin, 'ip'), ''), join(bin, 'ip'), 'a path is checked as it is')
})

test('missing binaries: one problem each, naming the Debian package and the apt-get fix; a binary needed twice is reported once', async () => {
  const reqs: Requirement[] = [
    { kind: 'binary', name: 'nft', for: 'LAN interception' },
    { kind: 'binary', name: 'ip', for: 'LAN interception' },
    { kind: 'binary', name: 'ip', for: 'uplink routing' },
    { kind: 'binary', name: 'sysctl', for: 'uplink routing' },
    { kind: 'nft-tproxy', owner: true, for: 'LAN interception' }
  ]
  let ran = 0
  const problems = await findPrerequisiteProblems(reqs, healthy({ path: bin, run: async () => { ran++; return '' } }))
  assert.deepEqual(problems.map((p) => [p.kind, p.what]), [['binary', 'nft'], ['binary', 'sysctl']])
  assert.match(problems[0]?.message ?? '',
    /^missing system binary 'nft' \(Debian package nftables\): install with apt-get install nftables \(needed for LAN interception;/)
  assert.match(problems[1]?.message ?? '', /'sysctl' \(Debian package procps\): install with apt-get install procps/)
  assert.equal(ran, 0, 'no nft -c dry run without nft, and no second report of it')
  const ipMissing = await findPrerequisiteProblems(reqs.filter((r) => r.kind === 'binary' && r.name === 'ip'), healthy({ path: '/nonexistent' }))
  assert.equal(ipMissing.length, 1)
  assert.match(ipMissing[0]?.message ?? '', /iproute2.*needed for LAN interception, uplink routing/)
})

test('nft-tproxy alone with nft missing names the binary; two tproxy requirements make one dry run, with owner if either asks', async () => {
  const alone = await findPrerequisiteProblems([{ kind: 'nft-tproxy', owner: false, for: 'transparent mode' }], healthy({ path: bin }))
  assert.deepEqual(alone.map((p) => [p.kind, p.what]), [['binary', 'nft']])
  assert.match(alone[0]?.message ?? '', /nftables.*needed for transparent mode/)
  const inputs: Array<string | undefined> = []
  const fakeNft = join(dir, 'fake-nft')
  mkdirSync(fakeNft)
  writeFileSync(join(fakeNft, 'nft'), '#!/bin/sh\n', { mode: 0o755 })
  await findPrerequisiteProblems([{ kind: 'nft-tproxy', owner: false, for: 'a' }, { kind: 'nft-tproxy', owner: true, for: 'b' }],
    healthy({ path: fakeNft, run: async (_argv, o) => { inputs.push(o?.input); return '' } }))
  assert.deepEqual(inputs, [nftProbeRuleset(true)])
})

test('MPTCP: kernel without it, disabled by sysctl, socket refused, enabled', async () => {
  const req: Requirement[] = [{ kind: 'mptcp', for: 'MPTCP listeners' }]
  const none = await findPrerequisiteProblems(req, healthy({ readSysctl: () => undefined }))
  assert.match(none[0]?.message ?? '', /kernel without MPTCP.*CONFIG_MPTCP/)
  let opened = 0
  const off = await findPrerequisiteProblems(req,
    healthy({ readSysctl: (k) => k === 'net.mptcp.enabled' ? '0' : '1', openMptcpSocket: () => { opened++; return undefined } }))
  assert.equal(off[0]?.what, 'net.mptcp.enabled')
  assert.match(off[0]?.message ?? '', /net\.mptcp\.enabled=0.*sysctl -w net\.mptcp\.enabled=1/)
  assert.equal(opened, 0, 'no socket probe when the sysctl already says no')
  const refused = await findPrerequisiteProblems(req, healthy({ openMptcpSocket: () => 'EPROTONOSUPPORT' }))
  assert.match(refused[0]?.message ?? '', /cannot create an MPTCP socket .*EPROTONOSUPPORT/)
  assert.deepEqual(await findPrerequisiteProblems(req, healthy()), [])
})

test('nft-tproxy: the dry run gets the probe table on stdin with a deadline; a refusal names the kernel features', async () => {
  const calls: Array<{ argv: readonly string[], input: string | undefined, timeoutMs: number | undefined }> = []
  const req: Requirement[] = [{ kind: 'nft-tproxy', owner: true, for: 'transparent mode' }]
  const ok = await findPrerequisiteProblems(req,
    healthy({ path: '/usr/sbin:/sbin', run: async (argv, o) => { calls.push({ argv, input: o?.input, timeoutMs: o?.timeoutMs }); return '' } }))
  if (resolveOnPath('nft', '/usr/sbin:/sbin') === undefined) {
    assert.equal(ok[0]?.what, 'nft', 'without nft installed the dry run reports the missing binary')
    return
  }
  assert.deepEqual(ok, [])
  assert.deepEqual(calls[0]?.argv.slice(1), ['-c', '-f', '-'])
  assert.equal(calls[0]?.input, nftProbeRuleset(true))
  assert.equal(calls[0]?.timeoutMs, 500)
  const refusal = Object.assign(new Error('command failed'), { detail: { stderr: 'Error: Could not process rule: No such file or directory\nmore' } })
  const bad = await findPrerequisiteProblems(req, healthy({ path: '/usr/sbin:/sbin', run: async () => { throw refusal } }))
  assert.equal(bad[0]?.kind, 'nft-tproxy')
  assert.match(bad[0]?.message ?? '',
    /tproxy, socket transparent and owner tables .*Could not process rule: No such file or directory; needs CAP_NET_ADMIN/)
})

test('probe ruleset: flags owner only when asked; tproxy for both families', () => {
  assert.match(nftProbeRuleset(true), /flags owner/)
  assert.doesNotMatch(nftProbeRuleset(false), /flags owner/)
  assert.match(nftProbeRuleset(false), /tproxy ip to :1.*\n.*tproxy ip6 to :1/)
})

test('TUN: /dev/net/tun not openable', async () => {
  const problems = await findPrerequisiteProblems([{ kind: 'tun', for: 'the delay line' }], healthy({ canOpenDevice: () => false }))
  assert.match(problems[0]?.message ?? '', /cannot open \/dev\/net\/tun .*modprobe tun/)
})

test('checkPrerequisites: one HYBRID_ERR_PREREQUISITE with every problem, numbered; resolves when all are met', async () => {
  const reqs: Requirement[] = [{ kind: 'binary', name: 'nft', for: 'a' }, { kind: 'mptcp', for: 'b' }]
  await assert.rejects(checkPrerequisites(reqs, healthy({ path: bin, readSysctl: () => '0' })), (e: HybridError) => {
    assert.equal(e.code, 'HYBRID_ERR_PREREQUISITE')
    assert.match(e.message,
      /^2 system prerequisite\(s\) not met: \(1\) missing system binary 'nft' \(Debian package nftables\).*; \(2\) kernel MPTCP is disabled/)
    assert.equal((e.detail?.['problems'] as unknown[]).length, 2)
    return true
  })
  await checkPrerequisites([], healthy({ path: '' }))
  await checkPrerequisites([{ kind: 'binary', name: 'ip', for: 'x' }], healthy({ path: bin }))
})

test('the default probes on this host: MPTCP socket and /dev/net/tun answer without throwing', async () => {
  const problems = await findPrerequisiteProblems([{ kind: 'mptcp', for: 'x' }, { kind: 'tun', for: 'y' }], { path: '' })
  for (const p of problems) assert.ok(['mptcp', 'tun'].includes(p.kind), p.message) // whatever the host has: problems, not exceptions
})

const nsSkip = process.getuid?.() !== 0
  ? 'needs root (network namespace, nft -c)'
  : resolveOnPath('nft', process.env['PATH'] ?? '') === undefined ? 'nft not installed (Debian package nftables)' : undefined

test('the real nft -c dry run in a scratch namespace accepts tproxy, socket transparent and owner tables and installs nothing', { skip: nsSkip },
  async (t) => {
    const ns = await createNamespace('hat-pq-prereq')
    t.after(async () => { await removeNamespaces('hat-pq-prereq') })
    const probes = { path: process.env['PATH'] ?? '', run: prefixedRunner(['ip', 'netns', 'exec', ns.name]) }
    assert.deepEqual(await findPrerequisiteProblems([{ kind: 'nft-tproxy', owner: true, for: 'x' }, { kind: 'nft-tproxy', owner: false, for: 'y' }],
      probes), [])
    assert.equal((await ns.exec(['nft', 'list', 'tables'])).trim(), '', 'check-only: no table left behind')
  })

test('a dry run nft refuses is reported (not thrown): a PATH whose nft always fails', async (t) => {
  const fake = join(dir, 'failing')
  mkdirSync(fake)
  writeFileSync(join(fake, 'nft'), '#!/bin/sh\necho "Error: Could not process rule: Operation not permitted" >&2\nexit 1\n', { mode: 0o755 })
  chmodSync(join(fake, 'nft'), 0o755)
  t.after(() => { rmSync(fake, { recursive: true, force: true }) })
  const started = Date.now()
  const problems = await findPrerequisiteProblems([{ kind: 'nft-tproxy', owner: true, for: 'LAN interception' }], { path: fake })
  assert.ok(Date.now() - started < 1000)
  assert.equal(problems[0]?.kind, 'nft-tproxy')
  assert.match(problems[0]?.message ?? '', /Operation not permitted; needs CAP_NET_ADMIN/)
})

test('symlinked binaries resolve (how the tests build PATHs of selected tools)', () => {
  const links = join(dir, 'links')
  mkdirSync(links)
  symlinkSync(join(bin, 'ip'), join(links, 'ip'))
  assert.equal(resolveOnPath('ip', links), join(links, 'ip'))
})
