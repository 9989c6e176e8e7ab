/**
 * Uplink manager (cpe/src/uplink) against the real kernel, driven in-process through a runner that
 * prefixes `ip netns exec <cpe>`:
 *
 *   cpe dsl0 192.0.2.2/24    2001:db8:10::2/64 ══ dsl0 192.0.2.1    2001:db8:10::1 srv
 *   cpe lte0 198.51.100.2/24 2001:db8:20::2/64 ══ lte0 198.51.100.1 2001:db8:20::1 srv (203.0.113.1 on lo)
 *
 * cpe's main default route goes via DSL (the DSL gateway is discovered from it); the LTE gateway
 * comes from the config. A foreign rule and a foreign endpoint exist before the start and must
 * survive the stop untouched.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import type { ChildProcess } from 'node:child_process'
import { createNamespace, e2eSkipReason, removeNamespaces, veth, type Netns } from '../../lab/netns.ts'
import { createLogger } from '../../shared/src/log.ts'
import { prefixedRunner, runCommand } from '../../shared/src/sys/command.ts'
import { UplinkManager, type UplinkState } from '../../cpe/src/uplink/uplink-manager.ts'
import type { MultipathConfig, UplinkConfig } from '../../cpe/src/config/uplinks.ts'

const PREFIX = 'hat-cpe-u-'
const skip = e2eSkipReason()
let cpe: Netns, srv: Netns
const started: ChildProcess[] = []
const sleep = async (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

const uplinks: UplinkConfig[] = [
  { name: 'dsl', interface: 'dsl0', role: 'dsl' },
  { name: 'lte', interface: 'lte0', role: 'lte', gateway: '198.51.100.1', gateway6: '2001:db8:20::1' }
]
const multipath: MultipathConfig = {
  rules: 'managed', mode: 'aggregate', subflows: 2, addAddrAccepted: 2, tableBase: 100, rulePriority: 100, looseRpFilter: true, pollIntervalMs: 250
}

before(async () => {
  if (skip !== undefined) return
  await removeNamespaces(PREFIX)
  cpe = await createNamespace(`${PREFIX}cpe`)
  srv = await createNamespace(`${PREFIX}srv`)
  await veth(cpe, 'dsl0', srv, 'dsl0')
  await veth(cpe, 'lte0', srv, 'lte0')
  const cmds: Array<[Netns, string[]]> = [
    [cpe, ['ip', 'addr', 'add', '192.0.2.2/24', 'dev', 'dsl0']],
    [cpe, ['ip', 'addr', 'add', '2001:db8:10::2/64', 'dev', 'dsl0', 'nodad']],
    [cpe, ['ip', 'addr', 'add', '198.51.100.2/24', 'dev', 'lte0']],
    [cpe, ['ip', 'addr', 'add', '2001:db8:20::2/64', 'dev', 'lte0', 'nodad']],
    [cpe, ['ip', 'route', 'add', 'default', 'via', '192.0.2.1', 'dev', 'dsl0']],
    [cpe, ['ip', '-6', 'route', 'add', 'default', 'via', '2001:db8:10::1', 'dev', 'dsl0']],
    // Foreign objects that must survive.
    [cpe, ['ip', 'rule', 'add', 'from', '192.0.2.99', 'lookup', '150', 'priority', '120']],
    [cpe, ['ip', 'mptcp', 'endpoint', 'add', '203.0.113.99', 'signal']],
    [srv, ['ip', 'addr', 'add', '192.0.2.1/24', 'dev', 'dsl0']],
    [srv, ['ip', 'addr', 'add', '2001:db8:10::1/64', 'dev', 'dsl0', 'nodad']],
    [srv, ['ip', 'addr', 'add', '198.51.100.1/24', 'dev', 'lte0']],
    [srv, ['ip', 'addr', 'add', '2001:db8:20::1/64', 'dev', 'lte0', 'nodad']],
    [srv, ['ip', 'addr', 'add', '203.0.113.1/32', 'dev', 'lo']],
    [srv, ['ip', 'mptcp', 'limits', 'set', 'subflows', '2', 'add_addr_accepted', '2']]
  ]
  for (const [ns, argv] of cmds) await ns.exec(argv)
  const server = srv.spawn(['mptcpize', 'run', 'socat', 'TCP4-LISTEN:5201,reuseaddr,fork', 'EXEC:cat'], { stdio: 'ignore' })
  started.push(server)
  for (let i = 0; i < 100 && !(await srv.exec(['ss', '-ltnH'])).includes(':5201'); i++) await sleep(20)
})

after(async () => {
  for (const c of started) c.kill('SIGKILL')
  if (skip === undefined) await removeNamespaces(PREFIX)
})

async function snapshot (): Promise<Record<string, string>> {
  const routes = async (fam: string): Promise<string> =>
    (await cpe.exec(['ip', fam, 'route', 'show', 'table', 'all'])).split('\n').filter((l) => !l.includes('fe80:')).join('\n')
  return {
    rule4: await cpe.exec(['ip', '-4', 'rule', 'show']),
    rule6: await cpe.exec(['ip', '-6', 'rule', 'show']),
    routes4: await routes('-4'),
    routes6: await routes('-6'),
    endpoints: await cpe.exec(['ip', 'mptcp', 'endpoint', 'show']),
    limits: await cpe.exec(['ip', 'mptcp', 'limits', 'show']),
    rpFilter: await cpe.exec(['sysctl', 'net.ipv4.conf.dsl0.rp_filter', 'net.ipv4.conf.lte0.rp_filter']),
    nft: await cpe.exec(['nft', 'list', 'ruleset'])
  }
}

/** Established subflows at the server for port 5201, as "local peer" pairs. */
async function serverSubflows (): Promise<string[]> {
  const out = await srv.exec(['ss', '-tnH', 'state', 'established', '( sport = :5201 )'])
  return out.split('\n').filter((l) => l.trim() !== '').map((l) => l.trim().split(/\s+/).slice(-2).join(' '))
}

async function until<T> (what: string, probe: () => Promise<T | undefined>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timeout: ${what}`)
    await sleep(50)
  }
}

test('uplink manager: routing, limits, endpoints, two subflows, backup mode, address change, clean stop', { skip }, async () => {
  const before = await snapshot()
  const log = createLogger({ level: 'silent', name: 'cpe-uplinks-test' })
  const run = prefixedRunner(['ip', 'netns', 'exec', cpe.name], runCommand)
  const manager = await UplinkManager.start({ uplinks, multipath, log, run })
  const changes: UplinkState[][] = []
  manager.on('change', (s) => changes.push(s))
  try {
    const rules4 = await cpe.exec(['ip', '-4', 'rule', 'show'])
    assert.match(rules4, /100:\s+from 192\.0\.2\.2 lookup 100/)
    assert.match(rules4, /100:\s+from 198\.51\.100\.2 lookup 101/)
    const rules6 = await cpe.exec(['ip', '-6', 'rule', 'show'])
    assert.match(rules6, /100:\s+from 2001:db8:10::2 lookup 100/)
    assert.match(rules6, /100:\s+from 2001:db8:20::2 lookup 101/)
    assert.match(await cpe.exec(['ip', 'route', 'show', 'table', '100']), /default via 192\.0\.2\.1 dev dsl0/, 'DSL gateway discovered')
    assert.match(await cpe.exec(['ip', 'route', 'show', 'table', '101']), /default via 198\.51\.100\.1 dev lte0/, 'LTE gateway from config')
    assert.match(await cpe.exec(['ip', '-6', 'route', 'show', 'table', '101']), /default via 2001:db8:20::1 dev lte0/)
    assert.match(await cpe.exec(['ip', 'mptcp', 'limits', 'show']), /add_addr_accepted 2 subflows 2/)
    assert.equal((await cpe.exec(['sysctl', '-n', 'net.ipv4.conf.lte0.rp_filter'])).trim(), '2')
    const eps = JSON.parse(await cpe.exec(['ip', '-j', 'mptcp', 'endpoint', 'show'])) as Array<Record<string, unknown>>
    const lteEp = eps.find((e) => e['address'] === '198.51.100.2')
    assert.ok(lteEp !== undefined && lteEp['subflow'] === true && lteEp['backup'] === undefined, 'LTE endpoint subflow, not backup')
    assert.ok(eps.some((e) => e['address'] === '2001:db8:20::2'))
    assert.ok(!eps.some((e) => e['address'] === '192.0.2.2'), 'no endpoint for the primary (DSL)')

    const state = manager.uplinks()
    assert.deepEqual(state.map((s) => [s.name, s.up, s.addresses, s.mode, s.endpointId === undefined]), [
      ['dsl', true, ['192.0.2.2', '2001:db8:10::2'], 'aggregate', true],
      ['lte', true, ['198.51.100.2', '2001:db8:20::2'], 'aggregate', false]
    ])
    assert.equal(state[1]?.endpointId, lteEp['id'])

    // An MPTCP connection from the CPE gets one subflow per uplink.
    const client = cpe.spawn(['mptcpize', 'run', 'socat', 'STDIO', 'TCP4:203.0.113.1:5201'], { stdio: ['pipe', 'pipe', 'ignore'] })
    started.push(client)
    client.stdin?.write('hello\n')
    await once(createInterface({ input: client.stdout as NodeJS.ReadableStream }), 'line')
    const subflows = await until('two subflows', async () => { const s = await serverSubflows(); return s.length >= 2 ? s : undefined })
    assert.deepEqual(subflows.map((s) => s.split(' ')[1]?.replace(/:\d+$/, '')).sort(), ['192.0.2.2', '198.51.100.2'])
    client.kill('SIGKILL')

    // Backup mode: the LTE endpoint flag changes in place (same id).
    await manager.setMode('backup')
    const epsB = JSON.parse(await cpe.exec(['ip', '-j', 'mptcp', 'endpoint', 'show'])) as Array<Record<string, unknown>>
    assert.equal(epsB.find((e) => e['address'] === '198.51.100.2')?.['backup'], true)
    assert.equal(epsB.find((e) => e['address'] === '198.51.100.2')?.['id'], lteEp['id'])
    assert.equal(manager.uplinks()[1]?.mode, 'backup')

    // The LTE address changes: rule, route and endpoint follow (by polling).
    await cpe.exec(['ip', 'addr', 'del', '198.51.100.2/24', 'dev', 'lte0'])
    await cpe.exec(['ip', 'addr', 'add', '198.51.100.3/24', 'dev', 'lte0'])
    await until('manager followed the address change', async () =>
      manager.uplinks()[1]?.addresses.includes('198.51.100.3') === true && manager.uplinks()[1]?.endpointId !== undefined ? true : undefined)
    const rulesAfter = await cpe.exec(['ip', '-4', 'rule', 'show'])
    assert.match(rulesAfter, /from 198\.51\.100\.3 lookup 101/)
    assert.doesNotMatch(rulesAfter, /from 198\.51\.100\.2 /)
    const epsC = JSON.parse(await cpe.exec(['ip', '-j', 'mptcp', 'endpoint', 'show'])) as Array<Record<string, unknown>>
    assert.equal(epsC.find((e) => e['address'] === '198.51.100.3')?.['backup'], true)
    assert.ok(!epsC.some((e) => e['address'] === '198.51.100.2'))
    assert.match(await cpe.exec(['ip', 'route', 'show', 'table', '101']), /default via 198\.51\.100\.1 dev lte0/,
      'route re-created after the kernel dropped it')
    assert.ok(changes.length >= 2, 'change events for mode and address')
  } finally {
    await manager.stop()
  }
  // Restore the original LTE address, then compare with the state before the start.
  await cpe.exec(['ip', 'addr', 'del', '198.51.100.3/24', 'dev', 'lte0'])
  await cpe.exec(['ip', 'addr', 'add', '198.51.100.2/24', 'dev', 'lte0'])
  assert.deepEqual(await snapshot(), before, 'stop removed exactly what the manager added (foreign rule and endpoint intact)')
})

test('uplink manager: a failing command names the command and its stderr', { skip }, async () => {
  const log = createLogger({ level: 'silent', name: 'cpe-uplinks-test' })
  const run = prefixedRunner(['ip', 'netns', 'exec', cpe.name], runCommand)
  const bad: UplinkConfig[] = [{ name: 'lte', interface: 'lte0', role: 'lte', gateway: '203.0.113.250' },
    { name: 'dsl', interface: 'dsl0', role: 'dsl' }]
  const before = await snapshot()
  await assert.rejects(UplinkManager.start({ uplinks: bad, multipath, log, run }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'HYBRID_ERR_CMD_FAILED')
    assert.match(err.message, /ip -4 route replace default via 203\.0\.113\.250 dev lte0 table 100: .*(unreachable|invalid gateway)/i)
    return true
  })
  assert.deepEqual(await snapshot(), before, 'a failed start leaves nothing behind')
})
