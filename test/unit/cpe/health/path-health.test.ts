/** PathHealth against a real UDP responder on 127.0.0.1 (loopback only; no namespaces). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { echoOf, ProbeType } from '../../../../shared/src/codec/path-probe.ts'
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

const uplink: UplinkState = {
  name: 'dsl',
  role: 'dsl',
  interface: 'lo',
  table: 100,
  addresses: ['127.0.0.1'],
  up: true,
  endpointId: undefined,
  endpointIds: [],
  mode: 'aggregate',
  admin: 'up'
}

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
  const h = new PathHealth(['dsl'],
    { config, target: { host: '127.0.0.1', port: r.port }, metrics, log: createLogger({ level: 'silent', name: 't' }), operstate: () => oper })
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

/** Busy-wait: the event loop is blocked, as on a loaded CPE. */
function block (ms: number): void { const end = Date.now() + ms; while (Date.now() < end) { /* blocked */ } }

/** A probe responder in a child process, answering after 30 ms: it answers while this process's event loop is blocked. */
async function childResponder (t: { after: (fn: () => void) => void }): Promise<number> {
  const code = `const d = require('node:dgram'); const s = d.createSocket('udp4');
    s.on('message', (m, r) => { const b = Buffer.from(m); b.writeUInt8(${ProbeType.Reply}, 5); setTimeout(() => { s.send(b, r.port, r.address) }, 30) });
    s.bind(0, '127.0.0.1', () => { process.stdout.write(String(s.address().port) + '\\n') })`
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.after(() => { child.kill() })
  const [line] = await once(child.stdout, 'data') as [Buffer]
  return Number(line.toString().trim())
}

test('a blocked event loop is not a lost path: replies waiting in the socket count as answers', async (t) => {
  const port = await childResponder(t)
  const { metrics } = createCpeRegistry('0', 'test', ['dsl'])
  const config = { enabled: true, port, intervalMs: 50, timeoutMs: 60, downAfter: 2, upAfter: 2, holdDownMs: 0, window: 10 }
  const h = new PathHealth(['dsl'],
    { config, target: { host: '127.0.0.1', port }, metrics, log: createLogger({ level: 'silent', name: 't' }), operstate: () => 'up' })
  t.after(() => { h.stop() })
  const changes: string[] = []
  h.on('change', (path, state) => changes.push(`${path} ${state}`))
  h.updateUplinks([uplink])
  h.start()
  await until('rtt measured', () => h.view('dsl')?.rttMs !== null, 2000)
  for (let i = 0; i < 5; i++) {
    await sleep(55) // a probe is outstanding most of the time (answered after 30 ms)
    // Blocked in the check phase (as an I/O callback would be): the next loop iteration runs the
    // expired deadline timers before it reads the socket, where the reply already is.
    await new Promise<void>((resolve) => { setImmediate(() => { block(250); resolve() }) })
  }
  await sleep(100)
  assert.deepEqual(changes, [], 'no transition from blocked-loop stalls')
  assert.equal(h.view('dsl')?.lossRatio, 0, 'no probe counted lost')
})

test('adaptive timeout: srtt + 4 × rttvar within [minTimeoutMs, timeoutMs] while another path is up; the last path standing keeps timeoutMs',
  async (t) => {
    const r = await responder()
    t.after(r.close)
    const { metrics } = createCpeRegistry('0', 'test', ['dsl', 'lte'])
    const config = {
      enabled: true,
      port: r.port,
      intervalMs: 50,
      timeoutMs: 400,
      minTimeoutMs: 30,
      downAfter: 3,
      upAfter: 3,
      holdDownMs: 0,
      window: 10
    }
    let lteOper = 'up'
    const h = new PathHealth(['dsl', 'lte'], {
      config,
      target: { host: '127.0.0.1', port: r.port },
      metrics,
      log: createLogger({ level: 'silent', name: 't' }),
      operstate: (i) => (i === 'lte0' ? lteOper : 'up')
    })
    t.after(() => { h.stop() })
    assert.equal(h.view('dsl')?.timeoutMs, 400, 'no RTT yet: the upper bound')
    h.updateUplinks([uplink, { ...uplink, name: 'lte', role: 'lte', interface: 'lte0', table: 200 }])
    h.start()
    await until('adapted', () => (h.view('dsl')?.timeoutMs ?? 400) < 400, 3000)
    const v = h.view('dsl')!
    assert.ok(v.timeoutMs >= 30 && v.timeoutMs < 400, `adaptive on loopback (${v.timeoutMs} ms)`)
    lteOper = 'down'
    await until('lte down', () => h.view('lte')?.state === 'down', 1000)
    assert.equal(h.view('dsl')?.timeoutMs, 400, 'dsl is the last path up: fixed timeoutMs')
    lteOper = 'up'
    await until('lte up', () => h.view('lte')?.state === 'up', 2000)
    await until('adaptive again', () => (h.view('dsl')?.timeoutMs ?? 400) < 400, 1000)
    r.answering.on = false
    const t0 = Date.now()
    await until('down', () => h.view('dsl')?.state === 'down', 3000)
    // 3 probes, 50 ms apart, each judged at its own (short) deadline: well below 2 × interval + 400.
    assert.ok(Date.now() - t0 < 2 * 50 + 400, `down at the adaptive deadline (${Date.now() - t0} ms)`)
  })

test('a sudden RTT rise is not an outage: a late reply re-arms the outstanding probes with the grown timeout', async (t) => {
  const delay = { ms: 0, closed: false }
  const s = dgram.createSocket('udp4')
  s.on('message', (msg, r) => { setTimeout(() => { if (!delay.closed) s.send(echoOf(msg), r.port, r.address) }, delay.ms) })
  s.bind(0, '127.0.0.1')
  await once(s, 'listening')
  t.after(() => { delay.closed = true; s.close() })
  const port = s.address().port
  const { metrics } = createCpeRegistry('0', 'test', ['dsl', 'lte'])
  const config = { enabled: true, port, intervalMs: 50, timeoutMs: 1000, minTimeoutMs: 40, downAfter: 3, upAfter: 3, holdDownMs: 0, window: 20 }
  const h = new PathHealth(['dsl', 'lte'],
    { config, target: { host: '127.0.0.1', port }, metrics, log: createLogger({ level: 'silent', name: 't' }), operstate: () => 'up' })
  t.after(() => { h.stop() })
  const changes: string[] = []
  h.on('change', (path, state) => changes.push(`${path} ${state}`))
  h.updateUplinks([uplink, { ...uplink, name: 'lte', role: 'lte', interface: 'lte0', table: 200 }])
  h.start()
  await until('adapted', () => (h.view('dsl')?.timeoutMs ?? 1000) <= 40, 3000)
  delay.ms = 120 // RTT 0 → 120 ms at once: 3× the adapted timeout
  await sleep(1500)
  assert.deepEqual(changes, [], 'no path went down')
  assert.ok((h.view('dsl')?.timeoutMs ?? 0) > 120, `timeout grew (${String(h.view('dsl')?.timeoutMs)} ms)`)
  assert.ok((h.view('dsl')?.rttMs ?? 0) > 50, 'RTT follows')
})
