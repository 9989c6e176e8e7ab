import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { ConfigSchema as ConcentratorSchema } from '../../../../concentrator/src/config/config.ts'
import { ConfigSchema as CpeSchema } from '../../../../cpe/src/config/config.ts'
import { describeSchema, renderReferenceTable, replaceReferenceBlock } from '../../../../shared/src/config/reference.ts'

const doc = readFileSync(new URL('../../../../docs/configuration.md', import.meta.url), 'utf8')
const schemas = { concentrator: ConcentratorSchema, cpe: CpeSchema }

function block (name: string): string {
  const start = `<!-- config-reference:${name}:start -->`
  return doc.slice(doc.indexOf(start) + start.length, doc.indexOf(`<!-- config-reference:${name}:end -->`))
}

for (const [name, schema] of Object.entries(schemas)) {
  test(`docs/configuration.md lists every ${name} key (regenerate: node --import tsx scripts/config-reference.mjs)`, () => {
    const documented = [...block(name).matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1])
    assert.deepEqual(documented, describeSchema(schema).map((r) => r.key))
  })

  test(`docs/configuration.md ${name} table is exactly the generated one`, () => {
    assert.equal(replaceReferenceBlock(doc, name, renderReferenceTable(schema)), doc)
  })

  test(`every ${name} option has a description, every leaf a default or a required mark`, () => {
    for (const row of describeSchema(schema)) {
      assert.notEqual(row.description, '', `${row.key} has no description`)
      if (!row.type.startsWith('object')) assert.notEqual(row.default, '', `${row.key} has no default column`)
    }
  })
}

test('durations carry the ms unit, sizes bytes', () => {
  for (const row of describeSchema(ConcentratorSchema)) {
    if (row.key.endsWith('Ms')) assert.equal(row.unit, 'ms', row.key)
    if (row.key.endsWith('Bytes') || row.key.endsWith('highWaterMark')) assert.equal(row.unit, 'bytes', row.key)
  }
})
