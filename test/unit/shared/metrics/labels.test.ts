import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { ConvertErrorLabel, convertErrorLabel } from '../../../../shared/src/metrics/labels.ts'

test('RFC 8803 registry codes map to their IANA names', () => {
  const expected: Array<[number, ConvertErrorLabel]> = [
    [0, 'unsupported_version'], [1, 'malformed_message'], [2, 'unsupported_message'], [3, 'missing_cookie'],
    [32, 'not_authorized'], [33, 'unsupported_tcp_option'], [64, 'resource_exceeded'], [65, 'network_failure'],
    [96, 'connection_reset'], [97, 'destination_unreachable'], [192, 'private'], [255, 'private'], [4, 'unassigned'], [191, 'unassigned']
  ]
  for (const [code, label] of expected) assert.equal(convertErrorLabel(code), label, String(code))
})

test('any number from the wire maps into the closed set', () => {
  fc.assert(fc.property(fc.integer({ min: -1, max: 300 }), (code) => ConvertErrorLabel.includes(convertErrorLabel(code))))
})
