/** FailoverController with a recording command runner and a fake health source (no system changes). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { createLogger } from '../../../../shared/src/log.ts'
import { createCpeRegistry } from '../../../../cpe/src/metrics.ts'
import { FailoverController } from '../../../../cpe/src/failover/failover-controller.ts'
import type { HealthStateName, Transition } from '../../../../cpe/src/health/health-state.ts'
import type { UplinkSource } from '../../../../cpe/src/paths/uplink-observer.ts'
import type { UplinkState } from '../../../../cpe/src/uplink/uplink-manager.ts'

class FakeHealth extends EventEmitter<{ change: [string, HealthStateName, Transition] }> {
  up = new Map([['dsl', true], ['lte', true]])
  isUp (p: string): boolean { return this.up.get(p) ?? false }
  set (p: string, to: HealthStateName): void {
    this.up.set(p, to === 'up')
    this.emit('change', p, to, { from: to === 'up' ? 'down' : 'up', to, reason: to === 'up' ? 'probes_answered' : 'probes_lost', at: 0, detail: '' })
  }
}

const state = (name: string, iface: string, address: string): UplinkState =>
  ({
    name,
    role: name === 'dsl' ? 'dsl' : 'lte',
    interface: iface,
    table: 0,
    addresses: [address],
    up: true,
    endpointId: undefined,
    endpointIds: [],
    mode: 'aggregate',
    admin: 'up'
  })

function setup (managed: boolean, onSteered?: (path: string, state: string) => void) {
  const cmds: string[] = []
  const sysctl = new Map([['net.mptcp.blackhole_timeout', '3600'], ['net.mptcp.stale_loss_cnt', '4'], ['net.ipv4.tcp_retries2', '15'],
    ['net.ipv4.tcp_rto_max_ms', '120000']])
  let endpoints: Array<{ id: number, address: string }> = []
  const batches: string[] = []
  const run = async (argv: readonly string[], opts?: { input?: string }): Promise<string> => {
    if (argv.includes('-batch')) {
      // one `ip -4|-6 [-force] -batch -`: its lines recorded as the commands they stand for
      batches.push(argv.join(' '))
      for (const l of (opts?.input ?? '').split('\n').filter((x) => x !== '')) cmds.push(`ip ${argv[1] ?? ''} ${l}`)
      return ''
    }
    const line = argv.join(' ')
    cmds.push(line)
    if (argv[0] === 'sysctl' && argv[1] === '-n') return `${sysctl.get(argv[2] ?? '') ?? ''}\n`
    if (argv[0] === 'sysctl') { const [k, v] = (argv[2] ?? '').split('='); sysctl.set(k ?? '', v ?? ''); return '' }
    if (line === 'ip -j mptcp endpoint show') return JSON.stringify(endpoints.map((e) => ({ ...e, subflow: true })))
    if (line.startsWith('ip mptcp endpoint add ')) endpoints.push({ id: 10 + endpoints.length, address: argv[4] ?? '' })
    if (line.startsWith('ip mptcp endpoint delete id ') && argv[5] !== '0') endpoints = endpoints.filter((e) => String(e.id) !== argv[5])
    return ''
  }
  const admin: string[] = []
  const source = Object.assign(new EventEmitter(), {
    mode: 'aggregate' as const,
    uplinks: () => [state('dsl', 'dsl0', '198.51.100.2'), state('lte', 'lte0', '198.51.100.66')],
    setMode: async () => {},
    setAdmin: async (name: string, a: 'up' | 'down') => { admin.push(`${name} ${a}`) },
    refresh: async () => {},
    stop: async () => {}
  }) as unknown as UplinkSource
  const health = new FakeHealth()
  const { registry, metrics } = createCpeRegistry('0', 'test', ['dsl', 'lte'], false)
  const start = async (): Promise<FailoverController> => FailoverController.start({
    config: {
      enabled: true,
      rulePriority: 32000,
      failbackBackupMs: 1500,
      kernel: { blackholeTimeout: 0, staleLossCnt: 1, rtoMaxMs: 1000, tcpRetries2: 60 }
    },
    uplinks: [{ name: 'dsl', table: 100, primary: true }, { name: 'lte', table: 200, primary: false }],
    source,
    managed,
    fullmesh: false,
    health,
    metrics,
    log: createLogger({ level: 'silent', name: 'test' }),
    run,
    readMib: async () => '',
    ...(onSteered === undefined ? {} : { onSteered }),
    now: () => 5
  })
  return { cmds, batches, sysctl, health, registry, admin, start, endpoints: () => endpoints }
}

const settle = async (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20))

test('start sets the kernel profile and steers to dsl; stop removes the rules and restores every value', async () => {
  const s = setup(false)
  const c = await s.start()
  assert.equal(s.sysctl.get('net.mptcp.blackhole_timeout'), '0')
  assert.equal(s.sysctl.get('net.ipv4.tcp_rto_max_ms'), '1000')
  assert.ok(s.cmds.includes('ip -4 rule add lookup 100 priority 32001'))
  assert.ok(s.cmds.includes('ip -6 rule del priority 32001'), 'rules a killed agent left at the steering priorities are removed first')
  assert.deepEqual(s.batches, ['ip -4 -force -batch -', 'ip -6 -force -batch -', 'ip -4 -batch -', 'ip -6 -batch -'],
    'cleanup, then one batch per family')
  assert.equal(c.view().steeredTo, 'dsl')
  s.cmds.length = 0
  await c.stop()
  await c.stop() // idempotent
  assert.deepEqual(Object.fromEntries(s.sysctl),
    { 'net.mptcp.blackhole_timeout': '3600', 'net.mptcp.stale_loss_cnt': '4', 'net.ipv4.tcp_retries2': '15', 'net.ipv4.tcp_rto_max_ms': '120000' })
  assert.equal(s.cmds.filter((l) => l.includes('rule del')).length, 4)
  assert.equal(s.cmds.filter((l) => l.startsWith('sysctl -qw')).length, 4)
})

test('dsl down → steered to lte, id-0 REMOVE for its addresses; up → steered back, endpoint added (owned, removed at stop)', async () => {
  const s = setup(false)
  const c = await s.start()
  s.health.set('dsl', 'down')
  await settle()
  assert.equal(c.view().steeredTo, 'lte')
  assert.ok(s.cmds.includes('ip -4 rule add lookup 200 priority 32001'))
  assert.ok(s.cmds.includes('ip -4 rule del lookup 100 priority 32001'))
  assert.ok(s.cmds.includes('ip mptcp endpoint delete id 0 198.51.100.2'))
  s.health.set('dsl', 'down') // repeated: no second steering change
  await settle()
  assert.equal(s.cmds.filter((l) => l === 'ip -4 rule add lookup 200 priority 32001').length, 1)
  s.health.set('dsl', 'up')
  await settle()
  assert.equal(c.view().steeredTo, 'dsl')
  assert.ok(s.cmds.includes('ip mptcp endpoint add 198.51.100.2 dev dsl0 subflow'))
  assert.deepEqual(s.endpoints().map((e) => e.address), ['198.51.100.2'])
  const text = await s.registry.metrics()
  assert.match(text, /hybrid_path_failovers_total\{from_path="dsl",to_path="lte"\} 2/)
  assert.match(text, /hybrid_failback_subflow_recreations_total\{path="dsl"\} 1/)
  assert.match(text, /hybrid_failover_steering\{path="dsl"\} 1/)
  await c.stop()
  assert.deepEqual(s.endpoints(), [], 'own endpoint removed at stop')
})

test('managed: lte down → uplink manager takes its endpoint out; up → back; taken uplinks are given back at stop', async () => {
  const s = setup(true)
  const c = await s.start()
  s.health.set('lte', 'down')
  await settle()
  assert.deepEqual(s.admin, ['lte down'])
  assert.equal(c.view().steeredTo, 'dsl')
  s.health.set('lte', 'up')
  await settle()
  assert.deepEqual(s.admin, ['lte down', 'lte up'])
  s.health.set('lte', 'down')
  await settle()
  await c.stop()
  assert.deepEqual(s.admin, ['lte down', 'lte up', 'lte down', 'lte up'])
})

test('failback of the primary asks for the backup pulse after the subflow endpoint is re-added; lte failback does not', async () => {
  const s = setup(false)
  const c = await s.start()
  const pulses: Array<{ ms: number, endpointAdded: boolean }> = []
  c.useFailbackPulse(async (ms) => { pulses.push({ ms, endpointAdded: s.cmds.includes('ip mptcp endpoint add 198.51.100.2 dev dsl0 subflow') }) })
  s.health.set('dsl', 'down')
  await settle()
  assert.deepEqual(pulses, [])
  s.health.set('dsl', 'up')
  await settle()
  assert.deepEqual(pulses, [{ ms: 1500, endpointAdded: true }])
  s.health.set('lte', 'down')
  await settle()
  s.health.set('lte', 'up')
  await settle()
  assert.equal(pulses.length, 1)
  await c.stop()
})

test('onSteered (where pending connects re-dial): once per transition, after the steering rules moved, before the dead path is withdrawn',
  async () => {
  // The withdraw (`ip mptcp endpoint delete id 0 <address>`) resets the dead path's SYN_SENT
  // connects (EPIPE in the lab), so a re-dial after it would come too late (docs/failover.md).
    const s = setup(false, (path, state) => { s.cmds.push(`steered ${path} ${state}`) })
    const c = await s.start()
    try {
      s.cmds.length = 0
      s.health.set('dsl', 'down')
      await settle()
      const at = s.cmds.indexOf('steered dsl down')
      assert.ok(at > 0, s.cmds.join('\n'))
      assert.equal(s.cmds.filter((e) => e.startsWith('steered')).length, 1)
      assert.ok(s.cmds.slice(0, at).some((e) => e.includes('rule add lookup 200')), 'steering before the hook')
      assert.ok(s.cmds.slice(at).some((e) => e.startsWith('ip mptcp endpoint delete id 0 198.51.100.2')), 'withdraw after the hook')
      assert.ok(!s.cmds.slice(0, at).some((e) => e.includes('endpoint delete')), 'no withdraw before the hook')
    } finally {
      await c.stop()
    }
  })
