import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  ConvertErrorCode, ConvertErrorInfo, convertErrorClass, convertErrorName, cookieFromMissingCookieValue, isConvertErrorCode
} from '../../../../shared/src/codec/convert-error.ts'

test('every registry code has a name, an IANA class from its range and a value kind', () => {
  const classes = Object.values(ConvertErrorCode).map((c) => [c, convertErrorClass(c)])
  assert.deepEqual(classes, [
    [0, 'message-validation'], [1, 'message-validation'], [2, 'message-validation'], [3, 'message-validation'],
    [32, 'client-side'], [33, 'client-side'], [64, 'converter-side'], [65, 'converter-side'],
    [96, 'destination-server'], [97, 'destination-server']
  ])
  assert.deepEqual(Object.values(ConvertErrorCode).map((c) => ConvertErrorInfo[c].valueKind),
    ['versions', 'echo', 'echo', 'cookie', 'zero', 'tcp-option-kind', 'zero', 'zero', 'zero', 'icmp-code'])
  assert.equal(convertErrorName(33), 'Unsupported TCP Option')
})

test('unassigned and private codes are named, not thrown on', () => {
  assert.equal(isConvertErrorCode(4), false)
  assert.equal(convertErrorClass(4), 'unassigned')
  assert.equal(convertErrorName(200), 'Private Use 200')
  assert.equal(convertErrorName(128), 'Unassigned 128')
})

test('Error 3 without a cookie (libconvert sends `1e 01 03 00`) yields an empty cookie', () => {
  assert.equal(cookieFromMissingCookieValue(Uint8Array.of(0)).length, 0)
})
