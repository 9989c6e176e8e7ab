import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { Registry } from 'prom-client'
import { generateMetricsReference, referenceInputs, renderMetricsReference } from '../../../../shared/src/metrics/metrics-reference.ts'
import { metricSpec } from '../../../../shared/src/metrics/metric-spec.ts'
import { concentratorMetricsReference } from '../../../../concentrator/src/metrics.ts'
import { supervisorMetricsReference } from '../../../../concentrator/src/workers/supervisor-metrics.ts'
import { cpeMetricsReference } from '../../../../cpe/src/metrics.ts'

/** The daemon sections scripts/metrics-reference.mjs passes (keep both lists equal). */
const daemons = [concentratorMetricsReference, supervisorMetricsReference, cpeMetricsReference]

const doc = readFileSync(new URL('../../../../docs/metrics.md', import.meta.url), 'utf8')
const documented = [...doc.matchAll(/^\| `([a-z_:][a-z0-9_:]*)` \|/gm)].map((m) => m[1])

test('docs/metrics.md lists exactly the registered metric names, each once', () => {
  const { registry } = referenceInputs(daemons)
  const registered = registry.getMetricsAsArray().map((m) => m.name).sort()
  assert.deepEqual([...documented].sort(), registered)
  assert.equal(new Set(documented).size, documented.length)
})

test('docs/metrics.md is current (regenerate: node --import tsx scripts/metrics-reference.mjs)', () => {
  assert.equal(doc, generateMetricsReference(daemons))
})

test('a spec whose metric is not registered, or registered with another type, is refused', () => {
  const spec = metricSpec({ name: 'hybrid_x_total', type: 'counter', help: 'x', unit: '1', labels: {} })
  assert.throws(() => renderMetricsReference(new Registry(), [{ title: 't', intro: 'i', specs: [spec] }]), /not registered/)
})
