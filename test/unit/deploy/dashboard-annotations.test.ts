/**
 * The CPE dashboard's failover annotations: present, and — with promtool — they fire exactly in
 * the minutes around a failover / failback (promtool test rules evaluates the annotation queries
 * against synthetic series of the counters the CPE exports).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'

interface Annotation {
  name: string,
  expr?: string,
  enable?: boolean,
  step?: string,
  titleFormat?: string,
  textFormat?: string,
  tagKeys?: string,
  datasource?: { type?: string }
}

const dash = JSON.parse(readFileSync(new URL('../../../deploy/grafana/dashboards/hybrid-cpe.json', import.meta.url),
  'utf8')) as { annotations: { list: Annotation[] } }
const byName = (name: string): Annotation => {
  const a = dash.annotations.list.find((x) => x.name === name)
  assert.ok(a !== undefined, `annotation "${name}"`)
  return a
}
/** Grafana's $instance as promtool sees it (everything). */
const promql = (a: Annotation): string => (a.expr ?? '').replace(/\$\{?instance\}?/g, '.*')

const EXPECTED = [
  { name: 'Path failovers', metric: 'hybrid_path_failovers_total', enable: true, tags: 'from_path,to_path' },
  { name: 'Path failbacks', metric: 'hybrid_failback_duration_seconds_count', enable: true, tags: 'path' },
  { name: 'Path state changes', metric: 'hybrid_path_state_changes_total', enable: false, tags: 'path,to' }
] as const

test('hybrid-cpe.json: failovers, failbacks and path state changes are Prometheus annotations', () => {
  for (const e of EXPECTED) {
    const a = byName(e.name)
    assert.equal(a.datasource?.type, 'prometheus')
    assert.match(a.expr ?? '', new RegExp(`changes\\(${e.metric}\\{job="hybrid-cpe", instance=~"\\$instance"\\}\\[2m\\]\\)\\) > 0$`))
    assert.equal(a.enable, e.enable, `${e.name}: shown by default: ${String(e.enable)}`)
    assert.equal(a.step, '60s', 'one evaluation per minute, window 2m: no change falls between two steps')
    assert.equal(a.tagKeys, e.tags)
    assert.ok((a.titleFormat ?? '') !== '' && (a.textFormat ?? '').includes('{{instance}}'))
  }
})

const promtool = spawnSync('promtool', ['--version']).status === 0

test('promtool: the annotations fire in the minutes after a failover and a failback, and not otherwise',
  { skip: promtool ? false : 'promtool not installed (Debian package prometheus)' }, (t) => {
    const S = 'job="hybrid-cpe", instance="cpe1"'
    // One failover dsl→lte between minute 2 and 3, the failback between minute 5 and 6.
    const input = [
      { series: `hybrid_path_failovers_total{${S}, from_path="dsl", to_path="lte"}`, values: '0 0 0 1 1 1 1 1 1 1 1' },
      { series: `hybrid_failback_duration_seconds_count{${S}, path="dsl"}`, values: '0 0 0 0 0 0 1 1 1 1 1' },
      { series: `hybrid_path_state_changes_total{${S}, path="dsl", to="down"}`, values: '0 0 0 1 1 1 1 1 1 1 1' },
      { series: `hybrid_path_state_changes_total{${S}, path="dsl", to="up"}`, values: '0 0 0 0 0 0 1 1 1 1 1' }
    ]
    const at = (name: string, min: number,
      labels: string | undefined): { expr: string, eval_time: string, exp_samples: Array<{ labels: string, value: number }> } =>
      ({
        expr: promql(byName(name)),
        eval_time: `${min}m`,
        exp_samples: labels === undefined ? [] : [{ labels: `{instance="cpe1", ${labels}}`, value: 1 }]
      })
    const tests = [
      at('Path failovers', 2, undefined), at('Path failovers', 3, 'from_path="dsl", to_path="lte"'),
      at('Path failovers', 4, 'from_path="dsl", to_path="lte"'), at('Path failovers', 6, undefined),
      at('Path failbacks', 4, undefined), at('Path failbacks', 6, 'path="dsl"'), at('Path failbacks', 9, undefined),
      at('Path state changes', 3, 'path="dsl", to="down"'), at('Path state changes', 6, 'path="dsl", to="up"'), at('Path state changes', 9, undefined)
    ]
    const dir = mkdtempSync(join(tmpdir(), 'hybrid-annot-'))
    t.after(() => { rmSync(dir, { recursive: true, force: true }) })
    const file = join(dir, 'annotations.test.yml')
    writeFileSync(file,
      stringify({ rule_files: [], evaluation_interval: '1m', tests: [{ interval: '1m', input_series: input, promql_expr_test: tests }] }))
    const r = spawnSync('promtool', ['test', 'rules', file], { encoding: 'utf8', cwd: dir })
    assert.equal(r.status, 0, r.stdout + r.stderr)
  })
