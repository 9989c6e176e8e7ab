/**
 * Integration tests that need addresses of their own (non-loopback destinations, IPv6 sources of
 * one /64, tc qdiscs) re-run their own file inside ONE network namespace (`ip netns exec`, with an
 * env flag set): the outer run sets the namespace up, forwards the inner report and tears it down.
 * Each file picks a namespace name of its own so that files can run side by side; env
 * `HAT_IT_NAMESPACE` overrides it (one file at a time: two checkouts running the same file).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createNamespace, e2eSkipReason, removeNamespaces } from '../../lab/netns.ts'

export interface InNamespace {
  /** Namespace name (must start with `hat-`); removed before and after. */
  readonly name: string
  /** The test file itself (`fileURLToPath(import.meta.url)`). */
  readonly self: string
  /** Env variable set to 1 for the inner run. */
  readonly flag: string
  /** Commands run inside the namespace before the inner run. */
  readonly setup: ReadonlyArray<readonly string[]>
  readonly timeoutMs?: number
}

/** True inside the namespace (the caller then declares its tests); outside, declares the one outer test. */
export function runInNamespace (o: InNamespace): boolean {
  if (process.env[o.flag] !== undefined) return true
  const name = process.env['HAT_IT_NAMESPACE'] ?? o.name
  assert.ok(name.startsWith('hat-'), `namespace ${name} must start with hat-`)
  test(`${o.self.split('/').pop() ?? o.self} (runs inside namespace ${name})`, async (t) => {
    const skip = e2eSkipReason()
    if (skip !== undefined) { t.skip(skip); return }
    t.after(async () => { await removeNamespaces(name) })
    const ns = await createNamespace(name)
    for (const argv of o.setup) await ns.exec(argv)
    const child = spawn('ip', ['netns', 'exec', name, process.execPath, '--import', 'tsx', '--test-reporter=spec', o.self], {
      env: innerEnv(o.flag), stdio: ['ignore', 'pipe', 'pipe'], cwd: process.cwd()
    })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += String(d) })
    child.stderr.on('data', (d: Buffer) => { out += String(d) })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, o.timeoutMs ?? 120_000)
    const [code] = await once(child, 'exit') as [number | null]
    clearTimeout(timer)
    assert.equal(code, 0, `inner run failed:\n${out}`)
    t.diagnostic(out.split('\n').filter((l) => /^\s*ℹ (tests|pass|fail)/.test(l)).join('; '))
  })
  return false
}

/** The inner run reports on its own (spec); NODE_TEST_CONTEXT would make it talk to this runner instead. */
function innerEnv (flag: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, [flag]: '1', NODE_NO_WARNINGS: '1' }
  delete env['NODE_TEST_CONTEXT']
  return env
}
