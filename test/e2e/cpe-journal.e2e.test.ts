/**
 * The CPE's crash journal against the real kernel (issue 18): a control plane (uplink manager +
 * interception, test/e2e/cpe-journal-agent.ts) is SIGKILLed, which leaves its rules, routes,
 * endpoints, limits, rp_filter and the interception's fwmark rule and local route behind. The next
 * start — with OTHER tables, priorities and marks, so a plain "remove what I would add" cannot find
 * the old objects — undoes them first; its clean stop then leaves the namespace exactly as before
 * the first start (foreign rule and endpoint intact).
 *
 *   cpe dsl0 192.0.2.2/24 ══ srv 192.0.2.1 · cpe lte0 198.51.100.2/24 ══ srv 198.51.100.1 · cpe lan0 (veth, no peer traffic)
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'
import { createNamespace, e2eSkipReason, removeNamespaces, veth, type Netns } from '../../lab/netns.ts'
import { testTempDir } from '../helpers/temp-dir.ts'

const PREFIX = 'hat-cj-'
const skip = e2eSkipReason()
const agentScript = fileURLToPath(new URL('./cpe-journal-agent.ts', import.meta.url))
let cpe: Netns, srv: Netns
const started: ChildProcess[] = []
const sleep = async (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

const uplinks = [
  { name: 'dsl', interface: 'dsl0', role: 'dsl' },
  { name: 'lte', interface: 'lte0', role: 'lte', gateway: '198.51.100.1' }
]
const multipath = (tableBase: number, rulePriority: number): Record<string, unknown> =>
  ({ rules: 'managed', mode: 'aggregate', subflows: 2, addAddrAccepted: 2, tableBase, rulePriority, looseRpFilter: true, pollIntervalMs: 250 })
const intercept = (mark: number, routeTable: number, rulePriority: number): Record<string, unknown> => ({
  rules: 'managed',
  lanInterfaces: ['lan0'],
  port: 7001,
  ipv6: false,
  mark,
  socketMark: 2,
  routeTable,
  rulePriority,
  bypass: { destinations: [], ports: [], sources: [] }
})

before(async () => {
  if (skip !== undefined) return
  await removeNamespaces(PREFIX)
  cpe = await createNamespace(`${PREFIX}cpe`)
  srv = await createNamespace(`${PREFIX}srv`)
  await veth(cpe, 'dsl0', srv, 'dsl0')
  await veth(cpe, 'lte0', srv, 'lte0')
  await cpe.exec(['ip', 'link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'lan1'])
  const cmds: Array<[Netns, string[]]> = [
    [cpe, ['ip', 'link', 'set', 'lan0', 'up']],
    [cpe, ['ip', 'addr', 'add', '192.0.2.2/24', 'dev', 'dsl0']],
    [cpe, ['ip', 'addr', 'add', '198.51.100.2/24', 'dev', 'lte0']],
    [cpe, ['ip', 'route', 'add', 'default', 'via', '192.0.2.1', 'dev', 'dsl0']],
    [cpe, ['sysctl', '-qw', 'net.ipv4.conf.dsl0.rp_filter=1', 'net.ipv4.conf.lte0.rp_filter=1']],
    [cpe, ['ip', 'rule', 'add', 'from', '192.0.2.99', 'lookup', '150', 'priority', '120']],
    [cpe, ['ip', 'mptcp', 'endpoint', 'add', '203.0.113.99', 'signal']],
    [srv, ['ip', 'addr', 'add', '192.0.2.1/24', 'dev', 'dsl0']],
    [srv, ['ip', 'addr', 'add', '198.51.100.1/24', 'dev', 'lte0']]
  ]
  for (const [ns, argv] of cmds) await ns.exec(argv)
})

after(async () => {
  for (const c of started) c.kill('SIGKILL')
  if (skip === undefined) await removeNamespaces(PREFIX)
})

interface Snapshot { rules: string, routes: string, endpoints: string, limits: string, rpFilter: string, nft: string }

async function snapshot (): Promise<Snapshot> {
  const routes = async (): Promise<string> => (await cpe.exec(['ip', '-4', 'route', 'show', 'table',
    'all'])).split('\n').filter((l) => !l.includes('fe80:')).join('\n')
  return {
    rules: await cpe.exec(['ip', '-4', 'rule', 'show']),
    routes: await routes(),
    endpoints: await cpe.exec(['ip', 'mptcp', 'endpoint', 'show']),
    limits: await cpe.exec(['ip', 'mptcp', 'limits', 'show']),
    rpFilter: await cpe.exec(['sysctl', 'net.ipv4.conf.dsl0.rp_filter', 'net.ipv4.conf.lte0.rp_filter']),
    nft: await cpe.exec(['nft', 'list', 'ruleset'])
  }
}

function agent (input: Record<string, unknown>): { child: ChildProcess, next: (type: string) => Promise<Record<string, unknown>> } {
  const child = cpe.spawn([process.execPath, '--import', 'tsx', agentScript, JSON.stringify(input)], { stdio: ['ignore', 'pipe', 'inherit'] })
  started.push(child)
  const seen: Array<Record<string, unknown>> = []
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (l) => { seen.push(JSON.parse(l) as Record<string, unknown>) })
  return {
    child,
    next: async (type) => {
      for (let i = 0; i < 400; i++) {
        const m = seen.find((x) => x['type'] === type)
        if (m !== undefined) return m
        if (child.exitCode !== null) throw new Error(`agent exited ${child.exitCode} before ${type}`)
        await sleep(25)
      }
      throw new Error(`agent: no ${type} within 10 s`)
    }
  }
}

test('SIGKILL leaves rules, routes, endpoints, limits, rp_filter and the fwmark rule; the next start (other tables and marks) undoes them; its clean stop restores the namespace', { skip, timeout: 60_000 }, async () => {
  const dir = testTempDir('hat-cj-')
  const clean = await snapshot()
  const first = agent({ dir, uplinks, multipath: multipath(100, 100), intercept: intercept(1, 300, 50) })
  assert.equal((await first.next('ready'))['leftovers'], 0)
  await sleep(600) // a few reconcile passes
  first.child.kill('SIGKILL')
  await new Promise((resolve) => first.child.once('exit', resolve))
  const left = await snapshot()
  assert.match(left.rules, /fwmark 0x1 lookup 300/, 'the interception rule survived the SIGKILL')
  assert.match(left.rules, /lookup 10[01]/, 'the uplinks\' source rules survived')
  assert.match(left.rpFilter, /= 2/, 'loose rp_filter survived')
  assert.notEqual(left.endpoints, clean.endpoints)

  const second = agent({ dir, uplinks, multipath: multipath(200, 110), intercept: intercept(4, 310, 60) })
  const ready = await second.next('ready')
  assert.ok(Number(ready['leftovers']) >= 6, `the dead run's entries were undone (${String(ready['leftovers'])})`)
  const running = await snapshot()
  assert.doesNotMatch(running.rules, /fwmark 0x1 lookup 300/, 'the old interception rule is gone')
  assert.doesNotMatch(running.rules, /lookup 10[01]\b/, 'the old source rules are gone')
  assert.match(running.rules, /fwmark 0x4 lookup 310/)
  second.child.kill('SIGTERM')
  const stopped = await second.next('stopped')
  assert.equal(stopped['journal'], 0, 'everything undone: nothing left in the journal')
  assert.deepEqual(await snapshot(), clean,
    'after the clean stop the namespace is as before the first start (rp_filter 1, foreign rule and endpoint intact)')
})
