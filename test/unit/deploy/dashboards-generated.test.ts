import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const root = new URL('../../../', import.meta.url).pathname
const committed = join(root, 'deploy/grafana/dashboards')

test('committed dashboards are exactly what scripts/gen-dashboards.mjs generates', (t) => {
  const out = mkdtempSync(join(tmpdir(), 'dash-'))
  t.after(() => { rmSync(out, { recursive: true, force: true }) })
  execFileSync(process.execPath, [join(root, 'scripts/gen-dashboards.mjs'), out])
  const generated = readdirSync(out).sort()
  assert.deepEqual(generated, readdirSync(committed).filter((f) => f.endsWith('.json')).sort())
  for (const f of generated) {
    assert.equal(readFileSync(join(committed, f), 'utf8'), readFileSync(join(out, f), 'utf8'),
      `${f} is stale: run node scripts/gen-dashboards.mjs deploy/grafana/dashboards`)
  }
})
