/**
 * The failover controller's `onSteered` hook (where pending connects re-dial, pending-dials.ts)
 * runs after the steering commands of a down transition and BEFORE the withdraw: the withdraw
 * (`ip mptcp endpoint delete id 0 <address>`) resets the dead path's SYN_SENT connects (EPIPE in
 * the lab), so a re-dial after it would come too late. Recording runner, no system changes.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { createLogger } from '../../../../shared/src/log.ts'
import { createCpeRegistry } from '../../../../cpe/src/metrics.ts'
import { FailoverController, type FailoverOptions } from '../../../../cpe/src/failover/failover-controller.ts'
import type { HealthStateName, Transition } from '../../../../cpe/src/health/health-state.ts'
import type { UplinkSource } from '../../../../cpe/src/paths/uplink-observer.ts'

class FakeHealth extends EventEmitter<{ change: [string, HealthStateName, Transition] }> {
  readonly up = new Map([['dsl', true], ['lte', true]])
  isUp (p: string): boolean { return this.up.get(p) ?? false }
  set (p: string, to: HealthStateName): void {
    this.up.set(p, to === 'up')
    this.emit('change', p, to, { from: to === 'up' ? 'down' : 'up', to, reason: to === 'up' ? 'probes_answered' : 'probes_lost', at: 0, detail: '' })
  }
}

test('onSteered: once per transition, after the steering rules moved, before the dead path is withdrawn', async () => {
  const events: string[] = []
  const run = async (argv: readonly string[]): Promise<string> => {
    events.push(argv.join(' '))
    if (argv[0] === 'sysctl' && argv[1] === '-n') return '0\n'
    if (argv.join(' ') === 'ip -j mptcp endpoint show') return '[]'
    return ''
  }
  const source = Object.assign(new EventEmitter(), {
    mode: 'aggregate' as const,
    uplinks: () => [
      { name: 'dsl', role: 'dsl', interface: 'dsl0', table: 0, addresses: ['198.51.100.2'], up: true, endpointId: undefined, endpointIds: [], mode: 'aggregate', admin: 'up' },
      { name: 'lte', role: 'lte', interface: 'lte0', table: 0, addresses: ['198.51.100.66'], up: true, endpointId: undefined, endpointIds: [], mode: 'aggregate', admin: 'up' }
    ],
    setMode: async () => {},
    setAdmin: async () => {},
    refresh: async () => {},
    stop: async () => {}
  }) as unknown as UplinkSource
  const health = new FakeHealth()
  const { metrics } = createCpeRegistry('0', 'test', ['dsl', 'lte'], false)
  const c = await FailoverController.start({
    config: { enabled: true, rulePriority: 32000, kernel: { blackholeTimeout: -1 } } as unknown as FailoverOptions['config'],
    uplinks: [{ name: 'dsl', table: 100, primary: true }, { name: 'lte', table: 200, primary: false }],
    source,
    managed: false,
    fullmesh: false,
    health,
    metrics,
    log: createLogger({ level: 'silent', name: 'test' }),
    run,
    readMib: async () => '',
    onSteered: (path, state) => { events.push(`steered ${path} ${state}`) }
  })
  try {
    events.length = 0
    health.set('dsl', 'down')
    await new Promise((resolve) => setTimeout(resolve, 30))
    const at = events.indexOf('steered dsl down')
    assert.ok(at > 0, events.join('\n'))
    assert.equal(events.filter((e) => e.startsWith('steered')).length, 1)
    assert.ok(events.slice(0, at).some((e) => e.includes('rule add lookup 200')), 'steering before the hook')
    assert.ok(events.slice(at).some((e) => e.startsWith('ip mptcp endpoint delete id 0 198.51.100.2')), 'withdraw after the hook')
    assert.ok(!events.slice(0, at).some((e) => e.includes('endpoint delete')), 'no withdraw before the hook')
  } finally {
    await c.stop()
  }
})
