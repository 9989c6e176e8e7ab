import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runConvertFuzz } from '../../../helpers/fuzz-convert.ts'

// CI-sized run of test/helpers/fuzz-convert.ts (10^5 random, mutated and re-chunked inputs; a few
// seconds). Longer runs: `npx tsx test/helpers/fuzz-convert.ts --count 1000000 --seed <n>`.
test('Convert decoders survive 10^5 fuzzed inputs with every invariant intact', () => {
  const report = runConvertFuzz(100_000, 0x8803)
  assert.deepEqual(report.failures, [])
  assert.ok(report.messages > 0 && report.replies > 0 && report.resets > 0 && report.needMore > 0, JSON.stringify(report))
})
