/** PathHealth against a real UDP responder on 127.0.0.1 (loopback only; no namespaces). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { once } from 'node:events'
import { echoOf } from '../../../../shared/src/codec/path-probe.ts'
import { createLogger } from '../../../../shared/src/log.ts'
import { ProbeGate } from '../../../../concentrator/src/probe/probe-gate.ts'
import { createCpeRegistry } from '../../../../cpe/src/metrics.ts'
import { PathHealth, healthFields } from '../../../../cpe/src/health/path-health.ts'
import type { UplinkState } from '../../../../cpe/src/uplink/uplink-manager.ts'

const sleep = async (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

async function responder (): Promise<{ port: number, answering: { on: boolean }, close: () => void }> {
  const gate = new ProbeGate({ trusted: (s) => s === '127.0.0.1', ratePerSecond: 1000, burst: 1000 })
  const answering = { on: true }
  const s = dgram.createSocket('udp4')
  s.on('message', (msg, r) => { if (answering.on && gate.decide(r.address, msg).answer) s.send(echoOf(msg), r.port, r.address) })
  s.bind(0, '127.0.0.1')
  await once(s, 'listening')
  return { port: s.address().port, answering, close: () => { s.close() } }
}

const uplink: UplinkState = { name: 'dsl', role: 'dsl', interface: 'lo', table: 100, addresses: ['127.0.0.1'], up: true, endpointId: undefined, endpointIds: [], mode: 'aggregate', admin: 'up' }

async function until (what: string, cond: () => boolean, ms: number): Promise<number> {
  const t0 = Date.now()
  for (let i = 0; i < ms / 10; i++) {
    if (cond()) return Date.now() - t0
    await sleep(10)
  }
  throw new Error(`timeout: ${what}`)
}

test('probes up, blackhole → down after N lost, back up after M answers and the hold-down, carrier loss → down at once', async (t) => {
  const r = await responder()
  t.after(r.close)
  const { registry, metrics } = createCpeRegistry('0', 'test', ['dsl'])
  let oper = 'up'
  const config = { enabled: true, port: r.port, intervalMs: 50, timeoutMs: 100, downAfter: 3, upAfter: 3, holdDownMs: 300, window: 10 }
  const h = new PathHealth(['dsl'], { config, target: { host: '127.0.0.1', port: r.port }, metrics, log: createLogger({ level: 'silent', name: 't' }), operstate: () => oper })
  t.after(() => { h.stop() })
  const changes: string[] = []
  h.on('change', (path, state) => changes.push(`${path} ${state}`))
  h.updateUplinks([uplink])
  h.start()
  const pathUp = async (): Promise<number> => (await registry.getSingleMetric('hybrid_path_up')?.get())?.values.find((v) => v.labels['path'] === 'dsl')?.value ?? -1

  await until('rtt measured', () => h.view('dsl')?.rttMs !== null, 2000)
  assert.equal(h.view('dsl')?.state, 'up')
  assert.equal(await pathUp(), 1)

  r.answering.on = false
  const down = await until('down', () => h.view('dsl')?.state === 'down', 3000)
  assert.ok(down >= 150, `not before 3 probes could be lost (${down} ms)`)
  assert.equal(await pathUp(), 0)
  assert.deepEqual(healthFields(h, 'dsl', true).up, false)
  assert.ok((h.view('dsl')?.lossRatio ?? 0) > 0)

  r.answering.on = true
  const up = await until('up', () => h.view('dsl')?.state === 'up', 3000)
  assert.ok(up >= 100, `M answers needed (${up} ms)`)
  assert.equal(await pathUp(), 1)

  await sleep(config.holdDownMs)
  oper = 'down'
  const carrier = await until('carrier down', () => h.view('dsl')?.state === 'down', 1000)
  assert.ok(carrier <= 200, `within about one interval (${carrier} ms)`)
  assert.deepEqual(changes, ['dsl down', 'dsl up', 'dsl down'])
  const text = await registry.metrics()
  assert.match(text, /hybrid_path_state_changes_total\{path="dsl",to="down"\} 2/)
  assert.match(text, /hybrid_path_probe_rtt_seconds\{path="dsl"\} \d/)
})
