/**
 * Regenerates the option tables of docs/configuration.md from the daemons' TypeBox schemas.
 *   node --import tsx scripts/config-reference.mjs          rewrite the tables in place
 *   node --import tsx scripts/config-reference.mjs --check  exit 1 if the docs are stale
 * (.mjs, not .ts: scripts/ is in no tsconfig, so type-aware lint cannot parse a .ts file here;
 * tsx still lets it import the TypeScript schemas.)
 * test/unit/shared/config/reference.test.ts runs the same check.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { ConfigSchema as ConcentratorSchema } from '../concentrator/src/config/config.ts'
import { ConfigSchema as CpeSchema } from '../cpe/src/config/config.ts'
import { renderReferenceTable, replaceReferenceBlock } from '../shared/src/config/reference.ts'

const docPath = new URL('../docs/configuration.md', import.meta.url)
const before = readFileSync(docPath, 'utf8')
let after = replaceReferenceBlock(before, 'concentrator', renderReferenceTable(ConcentratorSchema))
after = replaceReferenceBlock(after, 'cpe', renderReferenceTable(CpeSchema))

if (process.argv.includes('--check')) {
  if (after !== before) {
    process.stderr.write('docs/configuration.md is stale: run node --import tsx scripts/config-reference.mjs\n')
    process.exitCode = 1
  }
} else if (after !== before) {
  writeFileSync(docPath, after)
  process.stdout.write('docs/configuration.md updated\n')
}
