// Writes docs/metrics.md from the metric registry and specs (shared/src/metrics/metrics-reference.ts).
// Usage: node --import tsx scripts/metrics-reference.mjs [--check]
// --check exits 1 when docs/metrics.md is stale instead of rewriting it.
// (.mjs, not .ts: scripts/ belongs to no TypeScript project, so type-aware lint cannot parse .ts here.)
import { readFile, writeFile } from 'node:fs/promises'
import { generateMetricsReference } from '../shared/src/metrics/metrics-reference.ts'
import { concentratorMetricsReference } from '../concentrator/src/metrics.ts'
import { supervisorMetricsReference } from '../concentrator/src/workers/supervisor-metrics.ts'
import { cpeMetricsReference } from '../cpe/src/metrics.ts'

const target = new URL('../docs/metrics.md', import.meta.url)
// Daemon sections: keep this list equal to the one in test/unit/shared/metrics/metrics-reference.test.ts.
const text = generateMetricsReference([concentratorMetricsReference, supervisorMetricsReference, cpeMetricsReference])

if (process.argv.includes('--check')) {
  const current = await readFile(target, 'utf8').catch(() => '')
  if (current !== text) {
    process.stderr.write('docs/metrics.md is stale: run node --import tsx scripts/metrics-reference.mjs\n')
    process.exitCode = 1
  }
} else {
  await writeFile(target, text)
  process.stdout.write(`wrote ${target.pathname}\n`)
}
