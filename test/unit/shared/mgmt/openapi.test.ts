import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildOpenApiDocument, openApiPath, routeRecords } from '../../../../shared/src/mgmt/openapi.ts'

const handler = async (): Promise<void> => {}

test('fastify path parameters become OpenAPI templates', () => {
  assert.equal(openApiPath('/peers/:id/paths/:name'), '/peers/{id}/paths/{name}')
  assert.equal(openApiPath('/livez'), '/livez')
})

test('HEAD and hidden routes are left out; methods are lower-cased', () => {
  assert.deepEqual(routeRecords({ method: ['GET', 'HEAD'], url: '/x', handler }, false).map((r) => r.method), ['get'])
  assert.deepEqual(routeRecords({ method: 'GET', url: '/x', handler, schema: { hide: true } }, false), [])
})

test('query and header parameters carry their required flag', () => {
  const records = routeRecords({
    method: 'GET',
    url: '/top',
    handler,
    schema: {
      querystring: { type: 'object', properties: { k: { type: 'integer' } }, required: ['k'] },
      headers: { type: 'object', properties: { 'x-a': { type: 'string' } } }
    }
  }, false)
  const doc = buildOpenApiDocument(records, { title: 't', version: '1' },
    {}) as { paths: Record<string, { get: { parameters: unknown[], responses: Record<string, unknown> } }> }
  const op = doc.paths['/top']?.get
  assert.deepEqual(op?.parameters, [
    { name: 'k', in: 'query', required: true, schema: { type: 'integer' } },
    { name: 'x-a', in: 'header', required: false, schema: { type: 'string' } }
  ])
  assert.ok(op?.responses['400'])
  assert.equal(op?.responses['401'], undefined)
})
