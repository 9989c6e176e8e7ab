/**
 * LAN interception (cpe/src/intercept) against the real kernel: nftables TPROXY into IP_TRANSPARENT
 * listeners, the owner table held by `nft -i`, fail-open when the agent is SIGKILLed.
 *
 *   lan  lan0 192.0.2.2/24 2001:db8:1::2/64 ══ lan0 192.0.2.1 2001:db8:1::1  cpe
 *   cpe  wan0 198.51.100.1/24 2001:db8:2::1/64 ══ wan0 198.51.100.2 2001:db8:2::2  srv
 *   srv  lo: 203.0.113.10, .20, 2001:db8:3::10, ::20 (servers on 8080 and 2222 answer the peer address)
 *
 * The agent (test/e2e/cpe-intercept-agent.ts) runs as its own process in `cpe` and relays each
 * intercepted connection from the CPE's WAN address; a connection routed natively reaches the server
 * from the LAN client's address. So the server's answer tells which path a connection took.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'
import { createNamespace, e2eSkipReason, removeNamespaces, veth, type Netns } from '../../lab/netns.ts'
import type { InterceptRulesetInput } from '../../cpe/src/intercept/intercept-ruleset.ts'

const PREFIX = 'hat-cpe-i-'
const skip = e2eSkipReason()
const agentScript = fileURLToPath(new URL('./cpe-intercept-agent.ts', import.meta.url))
/** Answers every connection with the peer address it saw (ports from argv). */
const SERVER_JS = [
  "const net = require('node:net')",
  "for (const p of process.argv.slice(1)) net.createServer((s) => { s.end(s.remoteAddress.replace(/^::ffff:/, '') + '\\n') }).listen({ host: '::', port: Number(p) })",
  "console.log('ready')"
].join('\n')

const config: InterceptRulesetInput = {
  intercept: {
    rules: 'managed',
    lanInterfaces: ['lan0'],
    port: 7001,
    ipv6: true,
    mark: 1,
    socketMark: 2,
    routeTable: 300,
    rulePriority: 50,
    bypass: { destinations: ['203.0.113.20', '2001:db8:3::20/128'], ports: [2222], sources: [] }
  }
}

let lan: Netns, cpe: Netns, srv: Netns
const started: ChildProcess[] = []

interface AgentMsg { type: string, [k: string]: unknown }
class Agent {
  readonly child: ChildProcess
  readonly messages: AgentMsg[] = []
  constructor (ns: Netns, input: InterceptRulesetInput = config) {
    this.child = ns.spawn([process.execPath, '--import', 'tsx', agentScript, JSON.stringify(input)], { stdio: ['ignore', 'pipe', 'inherit'] })
    started.push(this.child)
    createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on('line', (l) => { this.messages.push(JSON.parse(l) as AgentMsg) })
  }

  async waitFor (type: string, timeoutMs = 15_000): Promise<AgentMsg> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      const m = this.messages.find((x) => x.type === type)
      if (m !== undefined) return m
      if (this.child.exitCode !== null) throw new Error(`agent exited (${this.child.exitCode}) before ${type}`)
      await sleep(20)
    }
    throw new Error(`agent: no ${type} within ${timeoutMs} ms`)
  }

  conns (): AgentMsg[] { return this.messages.filter((m) => m.type === 'conn') }
}

const sleep = async (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Connect from the LAN namespace (or `from`); resolves with the server's answer (the address it saw). */
async function fetchPeer (address: string, port: number, timeoutS = 3, from: Netns = lan): Promise<string> {
  const target = address.includes(':') ? `TCP6:[${address}]:${port}` : `TCP4:${address}:${port}`
  return (await from.exec(['socat', '-u', `${target},connect-timeout=${timeoutS}`, 'STDOUT'], { timeoutMs: (timeoutS + 3) * 1000 })).trim()
}

/** Routes of every table, minus link-local ones (the kernel adds those asynchronously after link-up). */
const routes = async (fam: '-4' | '-6'): Promise<string> =>
  (await cpe.exec(['ip', fam, 'route', 'show', 'table', 'all'])).split('\n').filter((l) => !l.includes('fe80:')).join('\n')

async function snapshot (): Promise<Record<string, string>> {
  return {
    nft: await cpe.exec(['nft', 'list', 'ruleset']),
    rule4: await cpe.exec(['ip', '-4', 'rule', 'show']),
    rule6: await cpe.exec(['ip', '-6', 'rule', 'show']),
    routes4: await routes('-4'),
    routes6: await routes('-6'),
    endpoints: await cpe.exec(['ip', 'mptcp', 'endpoint', 'show'])
  }
}

const hasTable = async (): Promise<boolean> => (await cpe.exec(['nft', 'list', 'tables'])).includes('inet hybrid_cpe')

/** Targets of a process's open fds. */
function fdLinks (pid: number): string[] {
  return readdirSync(`/proc/${pid}/fd`).map((fd) => { try { return readlinkSync(`/proc/${pid}/fd/${fd}`) } catch { return '' } })
}

/** The process has exited (a zombie awaiting its reaper counts: its sockets are closed). */
function exited (pid: number): boolean {
  try { return readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] === 'Z' } catch { return true }
}

async function waitFor (what: string, cond: () => boolean | Promise<boolean>, t0: number, timeoutMs = 3000): Promise<number> {
  while (performance.now() - t0 < timeoutMs) {
    if (await cond()) return performance.now() - t0
    await sleep(2)
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`)
}

before(async () => {
  if (skip !== undefined) return
  await removeNamespaces(PREFIX)
  lan = await createNamespace(`${PREFIX}lan`)
  cpe = await createNamespace(`${PREFIX}cpe`)
  srv = await createNamespace(`${PREFIX}srv`)
  await veth(lan, 'lan0', cpe, 'lan0')
  await veth(cpe, 'wan0', srv, 'wan0')
  const cmds: Array<[Netns, string[]]> = [
    [lan, ['ip', 'addr', 'add', '192.0.2.2/24', 'dev', 'lan0']],
    [lan, ['ip', 'addr', 'add', '2001:db8:1::2/64', 'dev', 'lan0', 'nodad']],
    [lan, ['ip', 'route', 'add', 'default', 'via', '192.0.2.1']],
    [lan, ['ip', '-6', 'route', 'add', 'default', 'via', '2001:db8:1::1']],
    [cpe, ['ip', 'addr', 'add', '192.0.2.1/24', 'dev', 'lan0']],
    [cpe, ['ip', 'addr', 'add', '2001:db8:1::1/64', 'dev', 'lan0', 'nodad']],
    [cpe, ['ip', 'addr', 'add', '198.51.100.1/24', 'dev', 'wan0']],
    [cpe, ['ip', 'addr', 'add', '2001:db8:2::1/64', 'dev', 'wan0', 'nodad']],
    [cpe, ['ip', 'route', 'add', 'default', 'via', '198.51.100.2']],
    [cpe, ['ip', '-6', 'route', 'add', 'default', 'via', '2001:db8:2::2']],
    [cpe, ['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']],
    [srv, ['ip', 'addr', 'add', '198.51.100.2/24', 'dev', 'wan0']],
    [srv, ['ip', 'addr', 'add', '2001:db8:2::2/64', 'dev', 'wan0', 'nodad']],
    [srv, ['ip', 'route', 'add', 'default', 'via', '198.51.100.1']],
    [srv, ['ip', '-6', 'route', 'add', 'default', 'via', '2001:db8:2::1']]
  ]
  for (const a of ['203.0.113.10/32', '203.0.113.20/32', '2001:db8:3::10/128',
    '2001:db8:3::20/128']) cmds.push([srv, ['ip', 'addr', 'add', a, 'dev', 'lo']])
  for (const [ns, argv] of cmds) await ns.exec(argv)
  for (const [ns, ports] of [[srv, ['8080', '2222']], [cpe, ['8080']]] as const) {
    const s = ns.spawn([process.execPath, '-e', SERVER_JS, ...ports], { stdio: ['ignore', 'pipe', 'inherit'] })
    started.push(s)
    await once(createInterface({ input: s.stdout as NodeJS.ReadableStream }), 'line')
  }
})

after(async () => {
  for (const c of started) c.kill('SIGKILL')
  if (skip === undefined) await removeNamespaces(PREFIX)
})

test('LAN interception: TPROXY v4+v6, bypasses, own address, clean stop restores everything', { skip }, async () => {
  assert.equal(await fetchPeer('203.0.113.10', 8080), '192.0.2.2', 'without the agent: plain routing')
  const before = await snapshot()
  const agent = new Agent(cpe)
  try {
    await interceptAndStop(agent, before)
  } finally {
    agent.child.kill('SIGKILL')
  }
})

async function interceptAndStop (agent: Agent, before: Record<string, string>): Promise<void> {
  const ready = await agent.waitFor('ready')
  assert.ok(await hasTable(), 'owner table installed')
  const table = await cpe.exec(['nft', 'list', 'table', 'inet', 'hybrid_cpe'])
  assert.match(table, /flags owner/)
  assert.match(await cpe.exec(['ip', '-4', 'rule', 'show']), /50:\s+from all fwmark 0x1 lookup 300/)
  assert.match(await cpe.exec(['ip', '-6', 'rule', 'show']), /50:\s+from all fwmark 0x1 lookup 300/)
  assert.match(await cpe.exec(['ip', '-6', 'route', 'show', 'table', '300']), /local default dev lo/)

  // Node gives the holder a socketpair as stdin; the agent's end is close-on-exec, so the agent's
  // other child (`sleep`, stdio ignored) holds no socket or pipe at all.
  assert.match(readlinkSync(`/proc/${String(ready['holderPid'])}/fd/0`), /^(socket|pipe):/)
  assert.deepEqual(fdLinks(Number(ready['sleepPid'])).filter((l) => l.startsWith('socket:')), [], 'sleep inherited no socket')

  // Intercepted: the server sees the CPE's WAN address; the agent saw the original destination.
  assert.equal(await fetchPeer('203.0.113.10', 8080), '198.51.100.1')
  assert.equal(await fetchPeer('2001:db8:3::10', 8080), '2001:db8:2::1')
  assert.deepEqual(agent.conns().map((c) => [c['address'], c['port'], c['family'], c['remote']]), [
    ['203.0.113.10', 8080, 4, '192.0.2.2'],
    ['2001:db8:3::10', 8080, 6, '2001:db8:1::2']
  ])
  // Bypassed destination prefix and port, and the CPE's own address: direct, the agent sees nothing.
  assert.equal(await fetchPeer('203.0.113.20', 8080), '192.0.2.2')
  assert.equal(await fetchPeer('2001:db8:3::20', 8080), '2001:db8:1::2')
  assert.equal(await fetchPeer('203.0.113.10', 2222), '192.0.2.2')
  assert.equal(await fetchPeer('2001:db8:3::10', 2222), '2001:db8:1::2')
  assert.equal(await fetchPeer('192.0.2.1', 8080), '192.0.2.2')
  assert.equal(agent.conns().length, 2, 'no further interception')
  // Direct connections to the transparent port on a CPE address are dropped.
  await assert.rejects(fetchPeer('192.0.2.1', 7001, 1))

  agent.child.kill('SIGTERM')
  await agent.waitFor('stopped')
  assert.deepEqual(await snapshot(), before, 'after a clean stop the ruleset, rules, routes and endpoints are as before')
  assert.equal(await fetchPeer('203.0.113.10', 8080), '192.0.2.2')
}

test('fail-open: SIGKILL of the agent takes the nft holder and the table with it; LAN traffic then flows natively', { skip }, async (t) => {
  const agent = new Agent(cpe)
  const ready = await agent.waitFor('ready')
  assert.equal(await fetchPeer('203.0.113.10', 8080), '198.51.100.1', 'intercepted while the agent lives')
  const holderPid = Number(ready['holderPid'])
  const t0 = performance.now()
  agent.child.kill('SIGKILL')
  const tableGoneMs = await waitFor('table gone after the agent was SIGKILLed', async () => !await hasTable(), t0)
  const holderGoneMs = await waitFor('nft -i holder exited', () => exited(holderPid), t0)
  assert.ok(await (async () => { try { process.kill(Number(ready['sleepPid']), 0); return true } catch { return false } })(),
    'the agent\'s other child still lives (and held no pipe)')
  assert.equal(await fetchPeer('203.0.113.10', 8080), '192.0.2.2', 'native routing (the fwmark rule left behind is inert)')
  assert.equal(await fetchPeer('2001:db8:3::10', 8080), '2001:db8:1::2')
  t.diagnostic(`kill -9 → table gone after ${tableGoneMs.toFixed(1)} ms, holder exited after ≤ ${holderGoneMs.toFixed(1)} ms`)
  process.kill(Number(ready['sleepPid']), 'SIGKILL')
})

test('no relay loop: a connection addressed to the CPE itself on the interception port is never relayed (from the WAN; also without the nft table)',
  { skip }, async () => {
    const managed = new Agent(cpe)
    try {
      await managed.waitFor('ready')
      // From the Internet side to the CPE's WAN address: the table's first rule drops the SYN on any interface.
      await assert.rejects(fetchPeer('198.51.100.1', 7001, 1, srv))
      await assert.rejects(fetchPeer('2001:db8:2::1', 7001, 1, srv))
      assert.deepEqual(managed.conns(), [], 'nothing relayed')
      managed.child.kill('SIGTERM')
      await managed.waitFor('stopped')
    } finally {
      managed.child.kill('SIGKILL')
    }
    // rules: external (no table at all): the agent itself resets connections whose local address is its own.
    const external = new Agent(cpe, { intercept: { ...config.intercept, rules: 'external' } })
    try {
      await external.waitFor('ready')
      for (const [address, family] of [['198.51.100.1', 4], ['2001:db8:2::1', 6], ['192.0.2.1', 4]] as const) {
        const from = address === '192.0.2.1' ? lan : srv
        const t0 = performance.now()
        const answer = await fetchPeer(address, 7001, 2, from).catch(() => 'refused')
        assert.ok(answer === '' || answer === 'refused',
        `${address}: reset with no bytes (a reset may reach socat as EOF or as an error), got ${answer}`)
        assert.ok(performance.now() - t0 < 1500, 'reset at once, not a timeout')
        await waitFor(`refusal of ${address} reported`,
          () => external.messages.some((m) => m.type === 'refused' && m['address'] === address && m['family'] === family), performance.now())
      }
      assert.deepEqual(external.conns(), [], 'nothing relayed')
    } finally {
      external.child.kill('SIGKILL')
    }
  })
