/**
 * Short run of every coverage-guided fuzz target (test/fuzz/, docs/fuzzing.md) so a parser change
 * that breaks a target's contract fails CI. Long campaigns: `npm run fuzz -- <target> --seconds S`.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { targets } from '../fuzz/targets.ts'
import { formatSummary, runTarget } from '../fuzz/run.ts'

/** Executions per target: a few seconds each; the mgmt target goes through app.inject() and is slower. */
const RUNS: Readonly<Record<string, number>> = { 'socks5-server': 2000, 'socks5-client': 2000, config: 500, mgmt: 200 }

test('every fuzz target keeps its contract for a bounded run (corpus replay + mutations)', { timeout: 120_000 }, async () => {
  const names = Object.keys(targets)
  const results = await Promise.all(names.map(async (name) => {
    const lines: string[] = []
    const r = await runTarget(name, { mode: 'fuzz', runs: RUNS[name] ?? 3000, seed: 1, timeoutSeconds: 60, print: (l) => lines.push(l) })
    return { name, r, lines }
  }))
  for (const { name, r, lines } of results) {
    assert.equal(r.hang, undefined, `${name} hung:\n${lines.join('\n')}`)
    assert.deepEqual(r.crashes, [], `${name} crashed:\n${lines.join('\n')}`)
    assert.ok(r.summary !== undefined && r.summary.execs >= (RUNS[name] ?? 3000), `${name} did not finish:\n${lines.join('\n')}`)
    assert.ok(r.summary.covered > 0, `${name}: no coverage feedback (instrumentation not applied?)`)
    console.log(formatSummary(name, r.summary))
  }
})
