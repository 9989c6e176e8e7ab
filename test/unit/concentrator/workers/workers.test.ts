/**
 * `workers` (concentrator/src/config/workers.ts) and the supervisor's pure merges
 * (concentrator/src/workers/metrics-merge.ts): the loader refuses bad values naming the key and the
 * file; the merged /metrics keeps every worker's series apart under a `worker` label; session pages
 * merge largest first; a reload that changes `workers` needs a restart.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { stringify } from 'yaml'
import { loadConfig } from '../../../../shared/src/config/load-config.ts'
import { ConfigSchema } from '../../../../concentrator/src/config/config.ts'
import { concentratorConfigProblems } from '../../../../concentrator/src/config/check.ts'
import { resolveWorkers, workersProblems } from '../../../../concentrator/src/config/workers.ts'
import { checkReload } from '../../../../concentrator/src/config/reload-plan.ts'
import { mergeSessionPages, mergeWorkerMetrics, type MetricsJson } from '../../../../concentrator/src/workers/metrics-merge.ts'
import { workerIndex } from '../../../../concentrator/src/workers/ipc.ts'
import { sumMetric } from '../../../../lab/daemons.ts'
import { configRefusal } from '../../../helpers/config-refusal.ts'
import { testTempDir } from '../../../helpers/temp-dir.ts'

const dir = testTempDir('conc-workers-')
let n = 0
const listener = { host: '192.0.2.1', port: 1080, mode: 'socks5' }
const writeConfig = (extra: Record<string, unknown>): string => {
  const file = join(dir, `conc-${++n}.yaml`)
  writeFileSync(file, stringify({ listeners: [listener], ...extra }))
  return file
}

for (const [name, value, message] of [
  ['above the maximum', 65, /<= 64|maximum|65/],
  ['negative', -1, /minimum|>= 0|-1/],
  ['not an integer', 1.5, /integer/],
  ['a word', 'two', /integer|number/]
] as const) {
  test(`workers ${name} (${JSON.stringify(value)}): refused by the loader with the key and the file`, () => {
    const file = writeConfig({ workers: value })
    const { code, problems } = configRefusal(ConfigSchema, file, concentratorConfigProblems)
    assert.match(code, /^HYBRID_ERR_CONFIG/)
    const p = problems.find((x) => x.path === '/workers')
    assert.ok(p !== undefined, JSON.stringify(problems))
    assert.match(p.message, message)
    assert.equal(p.origin, file)
  })
}

test('workers > 1 with transparent mode: accepted (the supervisor applies the HAG setup once, the workers bind the TPROXY listeners)', () => {
  const file = writeConfig({ workers: 2, transparent: { enabled: true, accessInterfaces: ['acc0'] } })
  assert.equal(loadConfig(ConfigSchema, { file, check: concentratorConfigProblems }).workers, 2)
})

test('workers > 1 (and 0 = per CPU) with an ephemeral listener port (configs built without the loader): a problem at that listener', () => {
  for (const workers of [2, 0]) {
    const problems = workersProblems({ workers, listeners: [{ port: 1080 }, { port: 0 }] })
    assert.deepEqual(problems.map((p) => p.path), [['listeners', 1, 'port']])
    assert.match(problems[0]?.message ?? '', /fixed port/)
  }
  assert.deepEqual(workersProblems({ workers: 1, listeners: [{ port: 0 }] }), [])
})

test('workers: default 1, 0..64 accepted; 0 resolves to the CPU count (capped at 64, at least 1)', () => {
  assert.equal(loadConfig(ConfigSchema, { file: writeConfig({}), check: concentratorConfigProblems }).workers, 1)
  for (const w of [0, 1, 2, 64]) {
    assert.equal(loadConfig(ConfigSchema, { file: writeConfig({ workers: w }), check: concentratorConfigProblems }).workers, w)
  }
  assert.equal(resolveWorkers(0, () => 2), 2)
  assert.equal(resolveWorkers(0, () => 0), 1)
  assert.equal(resolveWorkers(0, () => 200), 64)
  assert.equal(resolveWorkers(3, () => 200), 3)
  // The environment and the command line set it too (HYBRID_CONC_WORKERS=2).
  assert.equal(loadConfig(ConfigSchema, { file: writeConfig({}), env: { HYBRID_CONC_WORKERS: '2' }, envPrefix: 'HYBRID_CONC_' }).workers, 2)
})

test('a reload that changes workers is refused (needs a restart), naming the key', () => {
  const a = loadConfig(ConfigSchema, { file: writeConfig({ workers: 2 }) })
  const b = loadConfig(ConfigSchema, { file: writeConfig({ workers: 3 }) })
  assert.throws(() => { checkReload(a, b) }, (err: Error & { detail?: { key?: string } }) => err.detail?.key === 'workers' && /restart/.test(err.message))
  assert.doesNotThrow(() => { checkReload(a, a) })
})

test('the worker index comes only from HYBRID_CONCENTRATOR_WORKER (not a config variable)', () => {
  assert.equal(workerIndex({}), undefined)
  assert.equal(workerIndex({ HYBRID_CONCENTRATOR_WORKER: '1' }), 1)
  assert.equal(workerIndex({ HYBRID_CONCENTRATOR_WORKER: 'x' }), undefined)
})

async function workerRegistry (accepted: number, active: number, observed: number[]): Promise<MetricsJson> {
  const r = new Registry()
  r.setDefaultLabels({ daemon: 'concentrator' })
  new Counter({ name: 'hybrid_connections_accepted_total', help: 'h', labelNames: ['mode'], registers: [r] }).inc({ mode: 'socks5' }, accepted)
  new Gauge({ name: 'hybrid_connections_active', help: 'h', labelNames: ['mode'], registers: [r], aggregator: 'omit' }).set({ mode: 'socks5' }, active)
  const h = new Histogram({ name: 'hybrid_x_seconds', help: 'h', buckets: [1, 10], registers: [r] })
  for (const v of observed) h.observe(v)
  return await r.getMetricsAsJSON() as MetricsJson
}

test('metric merge: every worker\'s series under its worker label, nothing summed or dropped; the supervisor\'s own unlabelled', async () => {
  const own = new Registry()
  new Gauge({ name: 'hybrid_concentrator_workers_up', help: 'h', registers: [own] }).set(2)
  const merged = mergeWorkerMetrics(await own.getMetricsAsJSON() as MetricsJson,
    new Map([[1, await workerRegistry(7, 3, [5])], [0, await workerRegistry(5, 2, [0.5, 20])]]))
  const text = await merged.metrics()
  assert.equal(sumMetric(text, 'hybrid_connections_accepted_total', { worker: '0' }), 5)
  assert.equal(sumMetric(text, 'hybrid_connections_accepted_total', { worker: '1' }), 7)
  assert.equal(sumMetric(text, 'hybrid_connections_accepted_total'), 12)
  // A gauge whose aggregator is `omit` (prom-client's default for some) is still there per worker.
  assert.equal(sumMetric(text, 'hybrid_connections_active', { worker: '0', mode: 'socks5', daemon: 'concentrator' }), 2)
  assert.equal(sumMetric(text, 'hybrid_connections_active', { worker: '1' }), 3)
  assert.equal(sumMetric(text, 'hybrid_x_seconds_count', { worker: '0' }), 2)
  assert.equal(sumMetric(text, 'hybrid_x_seconds_bucket', { worker: '1', le: '10' }), 1)
  assert.equal(sumMetric(text, 'hybrid_concentrator_workers_up'), 2)
  assert.doesNotMatch(text.split('\n').filter((l) => l.startsWith('hybrid_concentrator_workers_up')).join('\n'), /worker=/)
  assert.equal(text.match(/^# TYPE hybrid_connections_accepted_total/gm)?.length, 1, 'one family, two series')
})

test('session merge: largest first over every worker, each with its worker; totals added', () => {
  const s = (id: number, bytes: number) => ({ id, bytesUp: bytes, bytesDown: 0 }) as never
  const page = mergeSessionPages(new Map([
    [0, { total: 2, offset: 0, limit: 3, sessions: [s(1, 50), s(2, 10)] }],
    [1, { total: 3, offset: 0, limit: 3, sessions: [s(1, 40), s(2, 30), s(3, 5)] }]
  ]), 1, 2)
  assert.equal(page.total, 5)
  assert.deepEqual(page.sessions.map((x) => [(x as unknown as { worker: number }).worker, x.id]), [[1, 1], [1, 2]])
})
