import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse, stringify } from 'yaml'
import {
  dashboardExpressions, dashboardMetricNames, dashboardPanels, extractMetricNames, extractVariableQueryMetrics,
  variableQueries
} from '../../helpers/dashboard-metrics.ts'
import { PLANNED_METRICS, SCRAPE_GENERATED_METRICS } from '../../fixtures/planned-metrics.ts'
import type { MetricOwner } from '../../fixtures/planned-metrics.ts'
import { udpMetricSpecList } from '../../../shared/src/metrics/udp-metrics.ts'

const root = new URL('../../../', import.meta.url)
const read = (path: string): string => readFileSync(new URL(path, root), 'utf8')
const path = (p: string): string => fileURLToPath(new URL(p, root))

interface DashboardCase {
  readonly file: string,
  readonly job: string,
  readonly owner: Exclude<MetricOwner, 'both'>,
  readonly variables: readonly string[]
}
const DASHBOARDS: readonly DashboardCase[] = [
  { file: 'deploy/grafana/dashboards/hybrid-cpe.json', job: 'hybrid-cpe', owner: 'cpe', variables: ['datasource', 'instance', 'path'] },
  {
    file: 'deploy/grafana/dashboards/hybrid-concentrator.json',
    job: 'hybrid-concentrator',
    owner: 'concentrator',
    variables: ['datasource', 'instance']
  }
]
const GRAFANA_BUILTIN_VARS = new Set(['__rate_interval', '__interval', '__range', '__range_s', '__interval_ms'])

/** docs/metrics.md rows, with the daemon their section names ('both' for the common sections). */
function implementedMetrics (): Map<string, MetricOwner | undefined> {
  const out = new Map<string, MetricOwner | undefined>()
  for (const section of read('docs/metrics.md').split(/^## /m)) {
    const heading = section.slice(0, section.indexOf('\n'))
    const owner: MetricOwner | undefined = /both/i.test(heading) ? 'both' : /cpe/i.test(heading) ? 'cpe' : /concentrator/i.test(heading) ? 'concentrator' : undefined
    for (const m of section.matchAll(/^\| `([a-zA-Z_:][\w:]*)` \|/gm)) if (m[1] !== undefined) out.set(m[1], owner)
  }
  // The shared UDP set is exported by both daemons; docs/metrics.md lists it once, under the CPE.
  for (const spec of udpMetricSpecList) out.set(spec.name, 'both')
  return out
}

const implemented = implementedMetrics()
const planned = new Map(PLANNED_METRICS.map((m) => [m.name, m.owner]))
const known = (name: string): boolean => implemented.has(name) || planned.has(name) || SCRAPE_GENERATED_METRICS.includes(name)
const ownerOf = (name: string): MetricOwner | undefined => implemented.get(name) ?? planned.get(name)

function loadDashboard (file: string): Record<string, unknown> {
  const parsed: unknown = JSON.parse(read(file))
  assert.ok(typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed), `${file}: not a JSON object`)
  return parsed as Record<string, unknown>
}

test('extractMetricNames skips functions, keywords, labels, ranges and by/without clauses', () => {
  assert.deepEqual(extractMetricNames('sum by (mode) (rate(hybrid_connections_accepted_total{job="x", mode=~"socks5|convert"}[$__rate_interval]))'),
    ['hybrid_connections_accepted_total'])
  assert.deepEqual(extractMetricNames('histogram_quantile(0.95, sum without (instance) (rate(hybrid_handshake_duration_seconds_bucket[5m])))'),
    ['hybrid_handshake_duration_seconds'])
  assert.deepEqual(extractMetricNames('sum(a_sum) / sum(a_count) > bool 1e3 and on (path) group_left (role) b offset 5m unless c @ start()'),
    ['a', 'b', 'c'])
  assert.deepEqual(extractMetricNames('time() - max(x_seconds{path="$path"}) * 8 or vector(0)'), ['x_seconds'])
  assert.deepEqual(extractMetricNames('label_replace(up, "dst", "$1", "instance", "(.*):.*") # up'), ['up'])
  assert.deepEqual(extractMetricNames('{__name__="hybrid_path_rtt_seconds_bucket", path="lte"}'), ['hybrid_path_rtt_seconds'])
  // eslint-disable-next-line no-template-curly-in-string -- a Grafana variable, not a template
  assert.deepEqual(extractMetricNames('rate(m[5m:1m]) + n[${__range}]'), ['m', 'n'])
  assert.deepEqual(extractMetricNames('job_instance:hybrid_mptcp_fallback_ratio:rate5m > 0.05'), ['job_instance:hybrid_mptcp_fallback_ratio:rate5m'])
})

test('variable queries: label_values reads its selector only', () => {
  assert.deepEqual(extractVariableQueryMetrics('label_values(hybrid_path_up{job="hybrid-cpe", instance=~"$instance"}, path)'), ['hybrid_path_up'])
  assert.deepEqual(extractVariableQueryMetrics('label_values(instance)'), [])
  assert.deepEqual(extractVariableQueryMetrics('query_result(topk(3, process_open_fds))'), ['process_open_fds'])
  assert.deepEqual(extractVariableQueryMetrics('metrics(hybrid_.*)'), [])
})

for (const d of DASHBOARDS) {
  test(`${d.file}: structure, panels, datasources, queries, variables`, () => {
    const dash = loadDashboard(d.file)
    assert.equal(typeof dash.uid, 'string')
    assert.equal(typeof dash.title, 'string')
    assert.ok(typeof dash.schemaVersion === 'number' && dash.schemaVersion >= 39, 'schemaVersion of Grafana 11 or later')
    const panels = dashboardPanels(dash)
    const ids = panels.map((p) => p.id)
    assert.equal(new Set(ids).size, ids.length, 'unique panel ids')
    assert.ok(ids.every((id) => Number.isInteger(id)), 'integer panel ids')
    for (const p of panels) {
      const grid = p.gridPos as { x: number, y: number, w: number, h: number }
      assert.ok(grid.x >= 0 && grid.w > 0 && grid.x + grid.w <= 24 && grid.h > 0, `panel ${String(p.id)} fits the 24-column grid`)
      if (p.type === 'row') continue
      const ds = p.datasource as { type?: string, uid?: string } | undefined
      assert.equal(ds?.type, 'prometheus', `panel ${String(p.id)} "${String(p.title)}" has a Prometheus datasource`)
      const targets = p.targets as Array<{ expr?: string, refId?: string }> | undefined
      assert.ok(targets !== undefined && targets.length > 0, `panel ${String(p.id)} has targets`)
      assert.ok(targets.every((t) => typeof t.expr === 'string' && t.expr.trim() !== ''), `panel ${String(p.id)} has a query`)
      assert.equal(new Set(targets.map((t) => t.refId)).size, targets.length, `panel ${String(p.id)} refIds unique`)
    }
    const vars = (dash.templating as { list: Array<{ name: string }> }).list.map((v) => v.name)
    for (const v of d.variables) assert.ok(vars.includes(v), `variable $${v}`)
    for (const { where, expr } of [...dashboardExpressions(dash), ...variableQueries(dash)]) {
      for (const m of expr.matchAll(/\$\{?(\w+)/g)) {
        const name = m[1] ?? ''
        assert.ok(vars.includes(name) || GRAFANA_BUILTIN_VARS.has(name), `${where}: undefined variable $${name}`)
      }
      assert.ok(expr.includes(`job="${d.job}"`), `${where}: selects job="${d.job}"`)
    }
  })

  test(`${d.file}: no overlapping panels`, () => {
    const cells = new Map<string, unknown>()
    for (const p of dashboardPanels(loadDashboard(d.file))) {
      const g = p.gridPos as { x: number, y: number, w: number, h: number }
      for (let y = g.y; y < g.y + g.h; y++) {
        for (let x = g.x; x < g.x + g.w; x++) {
          assert.equal(cells.get(`${x},${y}`), undefined, `panel ${String(p.id)} overlaps panel ${String(cells.get(`${x},${y}`))}`)
          cells.set(`${x},${y}`, p.id)
        }
      }
    }
  })

  test(`${d.file}: every metric is implemented or planned, and belongs to this daemon`, (t) => {
    const names = dashboardMetricNames(loadDashboard(d.file))
    assert.ok(names.length > 20)
    const unknown = names.filter((n) => !known(n))
    assert.deepEqual(unknown, [], 'metric names neither in docs/metrics.md nor in test/fixtures/planned-metrics.ts')
    const foreign = names.filter((n) => { const o = ownerOf(n); return o !== undefined && o !== 'both' && o !== d.owner })
    assert.deepEqual(foreign, [], `metrics of the other daemon in the ${d.owner} dashboard`)
    const pending = names.filter((n) => !implemented.has(n) && planned.has(n))
    t.diagnostic(`${d.owner}: planned, not yet implemented: ${pending.length === 0 ? 'none' : pending.join(', ')}`)
  })

  test(`${d.file}: covers every hybrid_ metric of its daemon`, () => {
    const used = new Set(dashboardMetricNames(loadDashboard(d.file)))
    const all = [...implemented.keys(), ...planned.keys()].filter((n) => n.startsWith('hybrid_'))
    const mine = all.filter((n) => { const o = ownerOf(n); return o === 'both' || o === d.owner })
    assert.deepEqual(mine.filter((n) => !used.has(n)), [])
  })
}

test('planned metrics: names follow the rules, none listed twice; report those already implemented', (t) => {
  assert.equal(planned.size, PLANNED_METRICS.length)
  for (const m of PLANNED_METRICS) {
    assert.match(m.name, /^hybrid_[a-z0-9_]+$/)
    assert.equal(m.name.endsWith('_total'), m.type === 'counter', `${m.name}: counters and only counters end in _total`)
  }
  const landed = PLANNED_METRICS.filter((m) => implemented.has(m.name)).map((m) => m.name)
  t.diagnostic(`implemented now, delete from test/fixtures/planned-metrics.ts: ${landed.length === 0 ? 'none' : landed.join(', ')}`)
})

interface PromConfig { rule_files?: string[], scrape_configs: Array<{ job_name: string, static_configs?: Array<{ targets: string[] }> }> }

test('prometheus.yml: valid YAML, jobs hybrid-cpe and hybrid-concentrator, rule files exist', () => {
  const cfg = parse(read('deploy/prometheus/prometheus.yml')) as PromConfig
  assert.deepEqual(cfg.scrape_configs.map((s) => s.job_name).sort(), ['hybrid-concentrator', 'hybrid-cpe'])
  for (const s of cfg.scrape_configs) assert.ok((s.static_configs?.[0]?.targets.length ?? 0) > 0, `${s.job_name} has a target`)
  for (const f of cfg.rule_files ?? []) assert.ok(existsSync(path(`deploy/prometheus/${f}`)), `rule file ${f}`)
})

test('rule files: every metric read is implemented, planned, scrape-generated or recorded', () => {
  const cfg = parse(read('deploy/prometheus/prometheus.yml')) as PromConfig
  const rules = (cfg.rule_files ?? []).flatMap((f) => {
    const doc = parse(read(`deploy/prometheus/${f}`)) as { groups: Array<{ rules: Array<{ record?: string, alert?: string, expr: string }> }> }
    return doc.groups.flatMap((g) => g.rules)
  })
  assert.ok(rules.length > 0)
  const recorded = new Set(rules.flatMap((r) => r.record ?? []))
  for (const r of rules) {
    for (const n of extractMetricNames(r.expr)) assert.ok(known(n) || recorded.has(n), `${r.record ?? r.alert ?? '?'}: unknown metric ${n}`)
  }
})

test('grafana provisioning files are valid YAML', () => {
  const ds = parse(read('deploy/grafana/provisioning/datasources/hybrid-prometheus.yaml')) as {
    apiVersion: number,
    datasources: Array<{ type: string }>
  }
  assert.equal(ds.apiVersion, 1)
  assert.equal(ds.datasources[0]?.type, 'prometheus')
  const dash = parse(read('deploy/grafana/provisioning/dashboards/hybrid.yaml')) as { apiVersion: number, providers: Array<{ type: string }> }
  assert.equal(dash.apiVersion, 1)
  assert.equal(dash.providers[0]?.type, 'file')
})

test('docs/observability.md describes every dashboard row', () => {
  const doc = read('docs/observability.md')
  for (const d of DASHBOARDS) {
    for (const p of dashboardPanels(loadDashboard(d.file))) if (p.type === 'row') assert.ok(doc.includes(String(p.title)), `row "${String(p.title)}"`)
  }
})

const promtool = spawnSync('promtool', ['--version']).status === 0

test('promtool accepts prometheus.yml and the rule files', { skip: promtool ? false : 'promtool not installed (Debian package prometheus)' }, () => {
  execFileSync('promtool', ['check', 'config', path('deploy/prometheus/prometheus.yml')], { stdio: 'pipe' })
  const tests = path('deploy/prometheus/rules/hybrid-rules.test.yml')
  if (existsSync(tests)) execFileSync('promtool', ['test', 'rules', tests], { stdio: 'pipe', cwd: path('deploy/prometheus/rules') })
})

/** Grafana variables replaced by plain values, so Prometheus's own parser can check the queries. */
function substituteGrafanaVariables (expr: string): string {
  const values: Record<string, string> = { __rate_interval: '1m', __interval: '15s', __range: '1h', metered: 'lte' }
  return expr.replace(/\$\{?(\w+)\}?/g, (_m, name: string) => values[name] ?? '.*')
}

test('promtool parses every dashboard query (as recording rules)',
  { skip: promtool ? false : 'promtool not installed (Debian package prometheus)' }, (t) => {
    const rules = DASHBOARDS.flatMap((d) => dashboardExpressions(loadDashboard(d.file)))
      .map(({ expr }, i) => ({ record: `dashboard:query_${i}`, expr: substituteGrafanaVariables(expr) }))
    const dir = mkdtempSync(join(tmpdir(), 'hybrid-dash-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    const file = join(dir, 'dashboard-queries.yml')
    writeFileSync(file, stringify({ groups: [{ name: 'dashboard-queries', rules }] }))
    const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' })
    assert.equal(r.status, 0, r.stdout + r.stderr)
    assert.match(r.stdout, new RegExp(`SUCCESS: ${rules.length} rules found`))
  })
