import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import { ADDRESS_PLAN } from '../../../lab/addresses.ts'
import {
  LAB_METRICS_TARGETS, labPrometheusArgs, labPrometheusConfig, renderLabPrometheusConfig, SCRAPE_JOBS,
  scrapeTarget
} from '../../../lab/prometheus-config.ts'

interface ScrapeConfig { job_name: string, static_configs: Array<{ targets: string[] }> }

test('the lab targets are the daemons\' own-namespace addresses on their default management ports', () => {
  assert.deepEqual(LAB_METRICS_TARGETS, { cpe: [`${ADDRESS_PLAN.lan.cpe.v4}:9091`], concentrator: [`${ADDRESS_PLAN.internet.hag.v4}:9090`] })
  assert.deepEqual(LAB_METRICS_TARGETS.cpe, ['192.0.2.1:9091'])
})

test('renders YAML with the deploy job names and the given targets', () => {
  const text = renderLabPrometheusConfig({
    targets: { cpe: ['192.0.2.1:9091'], concentrator: ['[2001:db8:ee::1]:9090', '203.0.113.1:9090'] },
    ruleFiles: ['/etc/rules.yml']
  })
  const cfg = parse(text) as { global: Record<string, string>, rule_files: string[], scrape_configs: ScrapeConfig[] }
  assert.deepEqual(cfg.scrape_configs.map((s) => s.job_name), ['hybrid-cpe', 'hybrid-concentrator'])
  assert.deepEqual(cfg.scrape_configs[1]?.static_configs[0]?.targets, ['[2001:db8:ee::1]:9090', '203.0.113.1:9090'])
  assert.deepEqual(cfg.rule_files, ['/etc/rules.yml'])
  assert.equal(cfg.global.scrape_interval, '5s')
  assert.ok(text.startsWith('# Generated'))
})

test('job names match deploy/prometheus/prometheus.yml', () => {
  const deploy = parse(readFileSync(new URL('../../../deploy/prometheus/prometheus.yml', import.meta.url),
    'utf8')) as { scrape_configs: ScrapeConfig[] }
  assert.deepEqual(deploy.scrape_configs.map((s) => s.job_name), [SCRAPE_JOBS.cpe, SCRAPE_JOBS.concentrator])
})

test('scrape interval and timeout', () => {
  const cfg = labPrometheusConfig({ targets: LAB_METRICS_TARGETS, scrapeIntervalSeconds: 2 })
  assert.deepEqual(cfg.global, { scrape_interval: '2s', scrape_timeout: '2s', evaluation_interval: '2s' })
  assert.equal('rule_files' in cfg, false)
  assert.throws(() => labPrometheusConfig({ targets: LAB_METRICS_TARGETS, scrapeIntervalSeconds: 0 }), RangeError)
})

test('bad targets are refused', () => {
  for (const bad of ['localhost:9090', '192.0.2.1', '2001:db8::1:9090', '[2001:db8::1]:0', '192.0.2.1:65536', '192.0.2.1:90x', ' 192.0.2.1:9090']) {
    assert.throws(() => labPrometheusConfig({ targets: { cpe: [bad], concentrator: ['203.0.113.1:9090'] } }), RangeError, bad)
  }
  assert.throws(() => labPrometheusConfig({ targets: { cpe: ['192.0.2.1:9091'], concentrator: [] } }), /at least one/)
})

test('scrapeTarget brackets IPv6 and checks its input', () => {
  assert.equal(scrapeTarget('2001:db8:1::1', 9091), '[2001:db8:1::1]:9091')
  assert.equal(scrapeTarget('192.0.2.1', 9091), '192.0.2.1:9091')
  assert.throws(() => scrapeTarget('cpe.example', 1), RangeError)
  assert.throws(() => scrapeTarget('192.0.2.1', 1.5), RangeError)
})

test('prometheus arguments', () => {
  assert.deepEqual(labPrometheusArgs({ configFile: '/tmp/p.yml', storageDir: '/tmp/tsdb', listen: '203.0.113.10:9099' }), [
    '--config.file=/tmp/p.yml', '--storage.tsdb.path=/tmp/tsdb', '--storage.tsdb.retention.time=1d', '--web.listen-address=203.0.113.10:9099'
  ])
})
