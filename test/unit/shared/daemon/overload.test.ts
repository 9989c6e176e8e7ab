import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import pino from 'pino'
import { DefaultOverload, OverloadSchema } from '../../../../shared/src/config/overload-schema.ts'
import type { OverloadConfig } from '../../../../shared/src/config/overload-schema.ts'
import { loadConfig } from '../../../../shared/src/config/load-config.ts'
import { busyThreshold, EVENT_LOOP_SUSTAIN_TICKS, OverloadActions, OverloadManager, thresholdsOf } from '../../../../shared/src/daemon/overload.ts'
import type { OverloadRelay } from '../../../../shared/src/daemon/overload.ts'
import { countOpenFiles, createResourceMonitors } from '../../../../shared/src/daemon/resource-monitors.ts'
import type { ResourceMonitors, ResourceReading } from '../../../../shared/src/daemon/resource-monitors.ts'
import { createCommonMetrics } from '../../../../shared/src/metrics/common-metrics.ts'
import type { RelayEndReason } from '../../../../shared/src/net/relay.ts'
import { Type } from 'typebox'

const defaults = (): OverloadConfig => loadConfig(Type.Object({ overload: OverloadSchema }), {}).overload as OverloadConfig
const t = thresholdsOf(defaults())

test('the schema defaults are the documented ones', () => {
  const c = defaults()
  assert.equal(c.enabled, true)
  assert.deepEqual(c.thresholds,
    { stopAcceptBusiest: DefaultOverload.stopAcceptBusiest, refuseNew: DefaultOverload.refuseNew, shedIdle: DefaultOverload.shedIdle })
  assert.deepEqual(c.resources, { eventLoopDelayMs: 2000, heapBytes: 0, openFiles: 0, bufferedBytes: 128 * 1024 * 1024 })
  assert.equal(c.hysteresisPercent, 10)
  assert.equal(c.releaseAfterMs, 5000)
})

test('a bad overload key is a config error naming the key', () => {
  assert.throws(() => loadConfig(Type.Object({ overload: OverloadSchema }),
    { env: { HYBRID_X_OVERLOAD__THRESHOLDS__REFUSE_NEW: '0' }, envPrefix: 'HYBRID_X_' }),
  (err: Error & { detail?: { problems?: Array<{ path: string }> } }) => {
    assert.match(String((err as { code?: string }).code), /^HYBRID_ERR_CONFIG_/)
    assert.ok(err.detail?.problems?.some((p) => p.path.includes('refuseNew')), JSON.stringify(err.detail))
    return true
  })
})

test('actions start in steps at their thresholds', () => {
  const a = new OverloadActions(t)
  assert.deepEqual(a.update(0.5, 0), [])
  assert.deepEqual(a.update(0.8, 1000), [{ action: 'stop_accept_busiest', active: true }])
  assert.deepEqual(a.update(0.91, 2000), [{ action: 'refuse_new', active: true }])
  assert.deepEqual(a.update(0.95, 3000), [{ action: 'shed_idle', active: true }])
  assert.deepEqual([...a.active], ['stop_accept_busiest', 'refuse_new', 'shed_idle'])
})

test('hysteresis: an action stays above its release point and is released only after releaseAfterMs under it', () => {
  const a = new OverloadActions(t) // release points 0.7 / 0.8 / 0.85, after 5 s
  a.update(0.96, 0)
  assert.equal(a.active.size, 3)
  assert.deepEqual(a.update(0.86, 1000), [], 'under the start, above the release point: all stay')
  assert.deepEqual(a.update(0.84, 2000), [], 'under shed_idle\'s release point: the 5 s start now')
  assert.deepEqual(a.update(0.84, 6999), [])
  assert.deepEqual(a.update(0.84, 7000), [{ action: 'shed_idle', active: false }])
  assert.deepEqual(a.update(0.5, 8000), [], 'refuse_new and stop_accept_busiest start their calm period')
  assert.deepEqual(a.update(0.75, 9000), [], 'back over stop_accept_busiest\'s release point: its calm period restarts')
  assert.deepEqual(a.update(0.5, 13_000), [{ action: 'refuse_new', active: false }])
  assert.deepEqual(a.update(0.5, 17_999), [], 'stop_accept_busiest calm since 13 000')
  assert.deepEqual(a.update(0.5, 18_000), [{ action: 'stop_accept_busiest', active: false }])
  assert.equal(a.active.size, 0)
})

test('a short dip under the release point does not release', () => {
  const a = new OverloadActions(t)
  a.update(0.9, 0)
  a.update(0.1, 1000)
  a.update(0.85, 4000) // back above both release points (0.7, 0.8): the calm periods restart
  a.update(0.1, 5000)
  assert.deepEqual(a.update(0.1, 9999), [])
  assert.deepEqual(a.update(0.1, 10_000), [{ action: 'stop_accept_busiest', active: false }, { action: 'refuse_new', active: false }])
})

test('busiest sources: the fewest that hold half the connections, and the smallest count among them', () => {
  assert.equal(busyThreshold([]), Infinity)
  assert.equal(busyThreshold([0, 0]), Infinity)
  assert.equal(busyThreshold([7]), 7, 'a single source is the busiest')
  assert.equal(busyThreshold([100, 1, 1, 1]), 100)
  assert.equal(busyThreshold([40, 30, 20, 10]), 30, '40+30 ≥ half of 100')
  assert.equal(busyThreshold([5, 5, 5, 5]), 5, 'equal sources: all are as busy as the busiest')
})

interface FakeRelay extends OverloadRelay { up: number, buf: number, aborted?: RelayEndReason }

function fakeRelay (id: number, buf = 0): FakeRelay {
  const r: FakeRelay = {
    id,
    up: 0,
    buf,
    progress: () => ({ up: r.up, down: 0 }),
    buffered: () => ({ client: r.buf, server: 0 }),
    abort: (reason) => { r.aborted = reason }
  }
  return r
}

function harness (config: Partial<OverloadConfig> = {}) {
  const reading: ResourceReading = { eventLoopDelayMs: 0, heapBytes: 0, openFiles: 0, bufferedBytes: 0 }
  const monitors: ResourceMonitors = {
    start: () => {},
    stop: () => {},
    read: () => ({ ...reading }),
    heapLimit: () => 1000,
    openFilesLimit: () => 100
  }
  const registry = new Registry()
  const metrics = createCommonMetrics(registry)
  const relays: FakeRelay[] = []
  const counts: number[] = []
  let clock = 0
  let shed = 0
  const m = new OverloadManager({ ...defaults(), ...config }, {
    log: pino({ level: 'silent' }),
    metrics,
    relays: () => relays,
    sourceCounts: () => counts,
    monitors,
    now: () => clock,
    onShed: (n) => { shed += n }
  })
  const value = async (name: string, labels: Record<string, string>): Promise<number | undefined> => {
    const json = await registry.getMetricsAsJSON()
    return json.find((x) => x.name === name)?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value
  }
  return { m, reading, relays, counts, value, at: (ms: number) => { clock = ms }, shed: () => shed }
}

test('pressure is value ÷ limit per resource; the limits default to heap_size_limit and RLIMIT_NOFILE', async () => {
  const h = harness()
  Object.assign(h.reading, { eventLoopDelayMs: 1000, heapBytes: 300, openFiles: 10 })
  h.relays.push(fakeRelay(1, 64 * 1024 * 1024))
  h.m.tick()
  assert.deepEqual(h.m.status().pressure, { event_loop: 0.5, heap: 0.3, fds: 0.1, buffered: 0.5 })
  assert.deepEqual(h.m.status().limits, { eventLoopDelayMs: 2000, heapBytes: 1000, openFiles: 100, bufferedBytes: 128 * 1024 * 1024 })
  assert.equal(await h.value('hybrid_overload_pressure', { resource: 'event_loop' }), 0.5)
  assert.equal(await h.value('hybrid_buffered_bytes', { side: 'client' }), 64 * 1024 * 1024)
  assert.equal(await h.value('hybrid_buffered_bytes', { side: 'server' }), 0)
  assert.deepEqual(h.m.status().active, [])
})

test('start() reads the resources at once: the status is true before the first interval, and nothing acts yet', () => {
  const h = harness({ intervalMs: 60_000 })
  Object.assign(h.reading, { heapBytes: 300, openFiles: 95 })
  h.m.start()
  try {
    assert.equal(h.m.status().readings.openFiles, 95)
    assert.equal(h.m.status().pressure.fds, 0.95)
    assert.equal(h.m.status().pressure.heap, 0.3)
    assert.deepEqual(h.m.status().active, [], 'actions start at a tick, not at the first reading')
  } finally {
    h.m.stop()
  }
})

test('the highest pressure drives the actions; admission follows them; metrics show them', async () => {
  const h = harness()
  h.counts.push(10, 2)
  h.reading.openFiles = 85
  h.m.tick()
  assert.deepEqual(h.m.status().active, ['stop_accept_busiest'])
  assert.equal(await h.value('hybrid_overload_active', { action: 'stop_accept_busiest' }), 1)
  assert.equal(await h.value('hybrid_overload_activations_total', { action: 'stop_accept_busiest' }), 1)
  assert.equal(h.m.admit(10), false, 'the busiest source is refused')
  assert.equal(h.m.admit(9), true, 'a source under the busiest count is not')
  assert.equal(h.m.admit(0), true)
  h.reading.openFiles = 10
  h.reading.eventLoopDelayMs = 1840 // 0.92, for three ticks
  h.m.tick()
  h.m.tick()
  h.m.tick()
  assert.deepEqual(h.m.status().active, ['stop_accept_busiest', 'refuse_new'])
  assert.equal(h.m.admit(0), false, 'refuse_new: nobody')
  assert.equal(await h.value('hybrid_overload_active', { action: 'refuse_new' }), 1)
})

test('the event loop counts only a delay that lasts EVENT_LOOP_SUSTAIN_TICKS readings', () => {
  const h = harness()
  for (const ms of [0, 0, 5000, 0, 5000, 5000]) {
    h.reading.eventLoopDelayMs = ms
    h.m.tick()
  }
  assert.deepEqual(h.m.status().active, [], 'spikes, even two in a row, are not overload')
  assert.equal(h.m.status().pressure.event_loop, 0)
  h.m.tick() // a third reading of 5000 ms in a row
  assert.equal(EVENT_LOOP_SUSTAIN_TICKS, 3)
  assert.equal(h.m.status().pressure.event_loop, 2.5)
  assert.equal(h.m.status().active.length, 3)
})

test('shed_idle closes only relays idle for shedIdleAfterMs, and only while it is active', () => {
  const h = harness({ shedIdleAfterMs: 3000 })
  const idle = fakeRelay(1)
  const busy = fakeRelay(2)
  h.relays.push(idle, busy)
  h.m.tick() // t=0: both seen
  h.at(4000)
  busy.up = 10
  h.m.tick() // not overloaded: nothing shed although idle is idle for 4 s
  assert.equal(idle.aborted, undefined)
  h.reading.openFiles = 99
  h.at(5000)
  busy.up = 20
  h.m.tick()
  assert.equal(idle.aborted, 'overload')
  assert.equal(busy.aborted, undefined, 'moved bytes within the last 3 s')
  assert.equal(h.shed(), 1)
  h.relays.splice(0, 1)
  h.at(9000)
  h.m.tick() // busy idle since 5000: 4 s ≥ 3 s
  assert.equal(busy.aborted, 'overload')
})

test('disabled: resources are measured and exported, no action is taken; a reload that disables clears the actions', async () => {
  const h = harness({ enabled: false })
  h.reading.openFiles = 100
  h.m.tick()
  assert.deepEqual(h.m.status().active, [])
  assert.equal(h.m.status().pressure.fds, 1)
  assert.equal(h.m.admit(1000), true)
  const on = harness()
  on.reading.openFiles = 100
  on.m.tick()
  assert.equal(on.m.status().active.length, 3)
  on.m.update({ ...defaults(), enabled: false })
  assert.deepEqual(on.m.status().active, [])
  assert.equal(await on.value('hybrid_overload_active', { action: 'refuse_new' }), 0)
  assert.equal(on.m.admit(1000), true)
})

test('countOpenFiles counts a directory\'s entries (minus the one readdir holds), 0 when unreadable', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hybrid-fds-'))
  try {
    for (const n of ['0', '1', '2', '3']) writeFileSync(join(dir, n), '')
    assert.equal(countOpenFiles(dir), 3)
    assert.equal(countOpenFiles(join(dir, 'missing')), 0)
    assert.ok(countOpenFiles() >= 3, 'this process has stdin, stdout and stderr at least')
  } finally {
    rmSync(dir, { recursive: true })
  }
})

test('the real monitors: heap and fds read from the process; a blocked event loop is seen', async () => {
  const mon = createResourceMonitors()
  mon.start(100)
  try {
    await new Promise((resolve) => setTimeout(resolve, 100))
    const quiet = mon.read()
    assert.ok(quiet.heapBytes > 1_000_000 && quiet.heapBytes < mon.heapLimit(), String(quiet.heapBytes))
    assert.ok(quiet.openFiles >= 3 && quiet.openFiles < mon.openFilesLimit())
    const until = Date.now() + 400
    while (Date.now() < until) { /* block the loop for 400 ms */ }
    await new Promise((resolve) => setTimeout(resolve, 50))
    const blocked = mon.read()
    assert.ok(blocked.eventLoopDelayMs >= 200, `a 400 ms block read as ${blocked.eventLoopDelayMs} ms`)
  } finally {
    mon.stop()
  }
})
