import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Type } from 'typebox'
import { redactConfig, REDACTED } from '../../../../shared/src/config/redact.ts'
import { loadConfig } from '../../../../shared/src/config/load-config.ts'
import { ConfigSchema } from '../../../../cpe/src/config/config.ts'

const Schema = Type.Object({
  users: Type.Array(Type.Object({ name: Type.String(), password: Type.String({ secret: true }) }, { additionalProperties: false }), { default: [] }),
  api: Type.Object({ key: Type.Optional(Type.String({ secret: true })), port: Type.Integer({ default: 1 }) },
    { additionalProperties: false, default: {} })
}, { additionalProperties: false })

test('secret options are redacted, in arrays too; other values and the input are untouched', () => {
  const config = loadConfig(Schema, { argv: { set: ['users=[{name: a, password: p1}, {name: b, password: p2}]', 'api.key=k'] } })
  const red = redactConfig(Schema, config)
  assert.deepEqual(red, { users: [{ name: 'a', password: REDACTED }, { name: 'b', password: REDACTED }], api: { key: REDACTED, port: 1 } })
  assert.equal(config.api.key, 'k')
})

test('an unset secret stays absent (no "[redacted]" for something that is not there)', () => {
  const red = redactConfig(Schema, loadConfig(Schema))
  assert.deepEqual(red, { users: [], api: { port: 1 } })
})

test('the CPE schema marks management.token secret', () => {
  const config = loadConfig(ConfigSchema, {
    argv: {
      set: ['uplinks=[{name: dsl, interface: eth1, role: dsl}]', 'concentrator.host=198.51.100.1', 'concentrator.port=1080',
        'management.token=abcdefghijklmnop']
    }
  })
  assert.equal(redactConfig(ConfigSchema, config).management.token, REDACTED)
})
