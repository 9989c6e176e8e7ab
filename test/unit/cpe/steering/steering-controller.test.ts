/** SteeringController with a recording command runner, fake health and fake counters (no system changes). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { createLogger } from '../../../../shared/src/log.ts'
import { createCpeRegistry } from '../../../../cpe/src/metrics.ts'
import { SteeringController } from '../../../../cpe/src/steering/steering-controller.ts'
import { endpointFlagWriter } from '../../../../cpe/src/steering/backup-flags.ts'
import type { SteeringConfig } from '../../../../cpe/src/config/steering.ts'
import type { UplinkSource } from '../../../../cpe/src/paths/uplink-observer.ts'
import type { UplinkState } from '../../../../cpe/src/uplink/uplink-manager.ts'

const state = (name: string, iface: string, address: string): UplinkState =>
  ({
    name,
    role: name === 'dsl' ? 'dsl' : 'lte',
    interface: iface,
    table: name === 'dsl' ? 100 : 200,
    addresses: [address],
    up: true,
    endpointId: undefined,
    endpointIds: [],
    mode: 'aggregate',
    admin: 'up'
  })

const config = (over: Partial<SteeringConfig> = {}): SteeringConfig => ({
  priority: { dslDownKbps: 50_000, dslUpKbps: 10_000, highPercent: 85, lowPercent: 60, holdUpMs: 0, holdDownMs: 0, sampleMs: 50 },
  smallestDelay: { marginMs: 5, holdMs: 0 },
  classes: [],
  classRulePriority: 31900,
  ...over
})

function setup (cfg: SteeringConfig, managed = false) {
  const cmds: string[] = []
  const endpoints = [{ id: 1, address: '198.51.100.66', backup: false }]
  const run = async (argv: readonly string[]): Promise<string> => {
    const line = argv.join(' ')
    cmds.push(line)
    if (line === 'ip -j mptcp endpoint show') return JSON.stringify(endpoints.map((e) => ({ ...e, subflow: true })))
    const m = /^ip mptcp endpoint change id (\d+) (backup|nobackup)$/.exec(line)
    if (m !== null) { const e = endpoints.find((x) => x.id === Number(m[1])); if (e !== undefined) e.backup = m[2] === 'backup' }
    return ''
  }
  const modes: string[] = []
  const source = Object.assign(new EventEmitter(), {
    mode: 'aggregate' as 'aggregate' | 'backup',
    uplinks: () => [state('dsl', 'dsl0', '198.51.100.2'), state('lte', 'lte0', '198.51.100.66')],
    setMode: async (m: 'aggregate' | 'backup') => { modes.push(m); source.mode = m },
    setAdmin: async () => {},
    refresh: async () => {},
    stop: async () => {}
  })
  const health = Object.assign(new EventEmitter(), {
    up: new Map([['dsl', true], ['lte', true]]),
    rtt: new Map<string, number>([['dsl', 20], ['lte', 60]]),
    isUp (p: string) { return health.up.get(p) ?? false },
    rttMs (p: string) { return health.rtt.get(p) }
  })
  let rx = 0
  let rateMbps = 0
  let t = 0
  const { registry, metrics } = createCpeRegistry('0', 'test', ['dsl', 'lte'], false)
  const start = async (): Promise<SteeringController> => SteeringController.start({
    config: cfg,
    uplinks: [{ name: 'dsl', interface: 'dsl0', table: 100, primary: true }, { name: 'lte', interface: 'lte0', table: 200, primary: false }],
    source: source as unknown as UplinkSource,
    managed: managed ? { mode: 'aggregate' } : undefined,
    health,
    capabilities: { healthEnabled: true, primaryIsDsl: true, others: 1 },
    metrics,
    log: createLogger({ level: 'silent', name: 'test' }),
    run,
    readCounters: async () => ({ rxBytes: rx, txBytes: 0 }),
    now: () => t
  })
  /** Advance the fake clock and counters by `ms` at the current rate, in `sampleMs` steps, letting the timer run. */
  const advance = async (ms: number): Promise<void> => {
    for (let d = 0; d < ms; d += 50) { t += 50; rx += rateMbps * 125_000 * 0.05; await new Promise((resolve) => setTimeout(resolve, 60)) }
  }
  return { cmds, endpoints, modes, health, registry, start, advance, setRate: (r: number) => { rateMbps = r } }
}

test('active-standby: LTE endpoint flagged backup at start (MP_PRIO through endpoint change), restored at stop', async () => {
  const s = setup(config({ mode: 'active-standby' }))
  const c = await s.start()
  assert.ok(s.cmds.includes('ip mptcp endpoint change id 1 backup'))
  assert.equal(c.view().backup['lte'], true)
  assert.match(await s.registry.metrics(), /hybrid_steering_mode\{mode="active-standby"\} 1/)
  assert.match(await s.registry.metrics(), /hybrid_steering_backup_changes_total\{path="lte",to="backup",reason="steering"\} 1/)
  await c.stop()
  assert.equal(s.endpoints[0]?.backup, false, 'original flag back')
})

test('primary down clears the flag (failover wins); back up: backup again; the failback pulse holds backup in load-balancing', async () => {
  const s = setup(config({ mode: 'active-standby' }))
  const c = await s.start()
  s.health.up.set('dsl', false)
  s.health.emit('change')
  await s.advance(100)
  assert.equal(s.endpoints[0]?.backup, false)
  s.health.up.set('dsl', true)
  s.health.emit('change')
  await s.advance(100)
  assert.equal(s.endpoints[0]?.backup, true)
  await c.setMode('load-balancing')
  assert.equal(s.endpoints[0]?.backup, false)
  await c.holdBackup(200)
  assert.equal(s.endpoints[0]?.backup, true, 'pulse on')
  assert.ok(c.view().failbackPulseUntil !== null)
  await s.advance(150)
  assert.equal(s.endpoints[0]?.backup, true, 'still in the pulse')
  await s.advance(200)
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.equal(s.endpoints[0]?.backup, false, 'pulse over: the mode\'s flag is back')
  assert.match(await s.registry.metrics(), /hybrid_steering_backup_changes_total\{path="lte",to="nobackup",reason="failover"\} 1/)
  assert.match(await s.registry.metrics(), /hybrid_steering_backup_changes_total\{path="lte",to="backup",reason="failback"\} 1/)
  await c.stop()
})

test('priority-based: DSL loaded → LTE added; load gone → backup again', async () => {
  const s = setup(config({ mode: 'priority-based' }))
  const c = await s.start()
  s.setRate(10)
  await s.advance(300)
  assert.equal(s.endpoints[0]?.backup, true)
  s.setRate(48)
  await s.advance(300)
  assert.equal(s.endpoints[0]?.backup, false)
  assert.equal(c.view().lteActive, true)
  s.setRate(5)
  await s.advance(300)
  assert.equal(s.endpoints[0]?.backup, true)
  await c.stop()
})

test('smallest-delay: the slower LTE is backup; LTE faster → flag cleared', async () => {
  const s = setup(config({ mode: 'smallest-delay' }))
  const c = await s.start()
  await s.advance(100)
  assert.equal(s.endpoints[0]?.backup, true)
  s.health.rtt.set('lte', 10)
  await s.advance(150)
  assert.equal(c.view().preferred, 'lte')
  assert.equal(s.endpoints[0]?.backup, false)
  await c.stop()
})

test('no mode: nothing touched; a pulse flags backup and puts the original flag back', async () => {
  const s = setup(config())
  const c = await s.start()
  assert.ok(!s.cmds.some((l) => l.includes('endpoint change')))
  await c.holdBackup(100)
  assert.equal(s.endpoints[0]?.backup, true)
  await s.advance(200)
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.equal(s.endpoints[0]?.backup, false)
  await c.stop()
})

test('managed: flags through the uplink manager\'s mode; unsupported modes are refused with a stable code', async () => {
  const s = setup(config({ mode: 'active-standby' }), true)
  const c = await s.start()
  assert.deepEqual(s.modes, ['backup'])
  await c.setMode('load-balancing')
  assert.deepEqual(s.modes, ['backup', 'aggregate'])
  await c.stop()
  const s2 = setup(config({ mode: 'smallest-delay' }))
  await assert.rejects(SteeringController.start({
    config: config({ mode: 'smallest-delay' }),
    uplinks: [],
    source: {} as UplinkSource,
    managed: undefined,
    health: undefined,
    capabilities: { healthEnabled: false, primaryIsDsl: true, others: 1 },
    metrics: createCpeRegistry('0', 't', ['dsl'], false).metrics,
    log: createLogger({ level: 'silent', name: 't' })
  }),
  { code: 'HYBRID_ERR_STEERING_UNSUPPORTED' })
  assert.equal(s2.cmds.length, 0)
})

test('class rules: added while the pinned access is healthy, removed when it goes down and at stop', async () => {
  const s = setup(config({ mode: 'load-balancing', classes: [{ name: 'voip', destinations: ['203.0.113.0/25'], port: 5060, access: 'dsl' }] }))
  const c = await s.start()
  assert.ok(s.cmds.includes('ip -4 rule add to 203.0.113.0/25 ipproto tcp dport 5060 lookup 100 priority 31900'))
  s.health.up.set('dsl', false)
  s.health.emit('change')
  await s.advance(100)
  assert.ok(s.cmds.includes('ip -4 rule del to 203.0.113.0/25 ipproto tcp dport 5060 lookup 100 priority 31900'))
  assert.deepEqual(c.view().classes, [{ name: 'voip', access: 'dsl', active: false }])
  s.health.up.set('dsl', true)
  s.health.emit('change')
  await s.advance(100)
  await c.stop()
  assert.equal(s.cmds.filter((l) => l.includes('rule del to 203.0.113.0/25')).length, 2)
})

test('pinnedSource: the pinned access address of the concentrator family while it is healthy; none without a class, when down, or after stop',
  async () => {
    const s = setup(config({
      classes: [{ name: 'bulk', destinations: ['203.0.113.12/32', '2001:db8:9::/48'], access: 'lte' },
        { name: 'voip', destinations: ['203.0.113.0/25'], port: 5060, access: 'dsl' }]
    }))
    const c = await s.start()
    assert.equal(c.pinnedSource({ address: '203.0.113.12', port: 80 }, 4), '198.51.100.66')
    assert.equal(c.pinnedSource({ address: '::ffff:203.0.113.12', port: 80 }, 4), '198.51.100.66', 'mapped form')
    assert.equal(c.pinnedSource({ address: '203.0.113.5', port: 5060 }, 4), '198.51.100.2')
    assert.equal(c.pinnedSource({ address: '203.0.113.5', port: 80 }, 4), undefined, 'port of the class does not match')
    assert.equal(c.pinnedSource({ address: '192.0.2.1', port: 80 }, 4), undefined, 'no class')
    assert.equal(c.pinnedSource({ address: '2001:db8:9::1', port: 443 }, 6), undefined, 'the uplink has no IPv6 address')
    s.health.up.set('lte', false)
    assert.equal(c.pinnedSource({ address: '203.0.113.12', port: 80 }, 4), undefined, 'access down: failover steering decides')
    s.health.up.set('lte', true)
    await c.stop()
    assert.equal(c.pinnedSource({ address: '203.0.113.12', port: 80 }, 4), undefined)
  })

test('rules off: a fullmesh endpoint (transparent mode) keeps fullmesh when its backup flag changes', async () => {
  const cmds: string[] = []
  const run = async (argv: readonly string[]): Promise<string> => {
    cmds.push(argv.join(' '))
    return argv.includes('-j') ? JSON.stringify([{ id: 1, address: '198.51.100.66', subflow: true, fullmesh: true, dev: 'lte0' }]) : ''
  }
  const source = { uplinks: () => [state('dsl', 'dsl0', '198.51.100.2'), state('lte', 'lte0', '198.51.100.66')] } as unknown as UplinkSource
  const w = endpointFlagWriter(source, run)
  await w.apply(new Map([['lte', true]]))
  assert.ok(cmds.includes('ip mptcp endpoint change id 1 backup fullmesh'), cmds.join('\n'))
})
