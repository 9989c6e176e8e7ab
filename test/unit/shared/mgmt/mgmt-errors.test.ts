import { test } from 'node:test'
import assert from 'node:assert/strict'
import { describeValidation, errorBody } from '../../../../shared/src/mgmt/mgmt-errors.ts'

const v = (keyword: string, instancePath: string, params: Record<string, unknown>, message?: string) =>
  ({ keyword, instancePath, schemaPath: '#', params, ...(message === undefined ? {} : { message }) })

test('validation errors name the field as a JSON pointer rooted at the request part', () => {
  assert.deepEqual(describeValidation([v('required', '', { missingProperty: 'reason' })], 'body'),
    { field: '/body/reason', message: '/body/reason is required' })
  assert.deepEqual(describeValidation([v('additionalProperties', '/a', { additionalProperty: 'x/y' })], 'body'),
    { field: '/body/a/x~1y', message: '/body/a/x~1y is not allowed' })
  assert.deepEqual(describeValidation([v('type', '/n', {}, 'must be integer')], 'querystring'),
    { field: '/querystring/n', message: '/querystring/n must be integer' })
  assert.deepEqual(describeValidation([], undefined), { field: '/body', message: '/body is invalid' })
})

test('errorBody has a stable shape', () => {
  assert.deepEqual(errorBody('HYBRID_ERR_MGMT_HOST', 'm'), { error: { code: 'HYBRID_ERR_MGMT_HOST', message: 'm', field: null } })
})
