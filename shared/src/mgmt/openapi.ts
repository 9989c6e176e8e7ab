/**
 * OpenAPI 3.1 document built from the registered routes' JSON schemas (collected by an `onRoute`
 * hook), so the published contract is the one fastify validates against.
 */
import type { RouteOptions } from 'fastify'

/** Route facts the document needs, captured when the route is registered. */
export interface RouteRecord {
  method: string
  url: string
  schema: Readonly<Record<string, unknown>>
  auth: boolean
}

export interface OpenApiInfo {
  title: string
  version: string
  description?: string
}

type Json = Record<string, unknown>

const PARAM_PARTS = [['params', 'path'], ['querystring', 'query'], ['headers', 'header']] as const

/** Turns a fastify route into one record per documented method (HEAD is left out). */
export function routeRecords (route: RouteOptions, auth: boolean): RouteRecord[] {
  const methods = Array.isArray(route.method) ? route.method : [route.method]
  const schema = (route.schema ?? {}) as Record<string, unknown>
  if (schema['hide'] === true) return []
  return methods.filter((m) => m !== 'HEAD').map((method) => ({ method: method.toLowerCase(), url: route.url, schema, auth }))
}

/** `/peers/:id` → `/peers/{id}` */
export function openApiPath (url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
}

function parameters (schema: Readonly<Record<string, unknown>>): Json[] {
  const out: Json[] = []
  for (const [part, where] of PARAM_PARTS) {
    const object = (schema[part] ?? (part === 'querystring' ? schema['query'] : undefined)) as Json | undefined
    const props = (object?.['properties'] ?? {}) as Record<string, Json>
    const required = new Set((object?.['required'] ?? []) as string[])
    for (const [name, propSchema] of Object.entries(props)) {
      out.push({ name, in: where, required: where === 'path' || required.has(name), schema: propSchema })
    }
  }
  return out
}

function responseContent (value: Json): Json {
  if (typeof value['content'] === 'object' && value['content'] !== null) return value['content'] as Json
  return { 'application/json': { schema: value } }
}

function responses (record: RouteRecord): Json {
  const declared = (record.schema['response'] ?? {}) as Record<string, Json>
  const out: Json = {}
  for (const [status, value] of Object.entries(declared)) {
    out[status] = { description: typeof value['description'] === 'string' ? value['description'] : `HTTP ${status}`, content: responseContent(value) }
  }
  const error = { content: { 'application/json': { schema: { $ref: '#/components/schemas/MgmtError' } } } }
  const validated = PARAM_PARTS.some(([p]) => record.schema[p] !== undefined) || record.schema['body'] !== undefined
  if (validated) out['400'] = { description: 'a field is invalid; `field` names it', ...error }
  if (record.auth) out['401'] = { description: 'missing or wrong bearer token', ...error }
  out['421'] = { description: 'Host header not allowed', ...error }
  return out
}

function operation (record: RouteRecord): Json {
  const op: Json = { operationId: `${record.method}${record.url.replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? '').toUpperCase())}` }
  for (const key of ['summary', 'description', 'tags'] as const) if (record.schema[key] !== undefined) op[key] = record.schema[key]
  const params = parameters(record.schema)
  if (params.length > 0) op['parameters'] = params
  if (record.schema['body'] !== undefined) {
    op['requestBody'] = { required: true, content: { 'application/json': { schema: record.schema['body'] } } }
  }
  op['responses'] = responses(record)
  if (record.auth) op['security'] = [{ bearer: [] }]
  return op
}

export function buildOpenApiDocument (records: readonly RouteRecord[], info: OpenApiInfo, errorSchema: object): Json {
  const paths: Record<string, Json> = {}
  const sorted = [...records].sort((a, b) => a.url.localeCompare(b.url) || a.method.localeCompare(b.method))
  for (const record of sorted) {
    const path = openApiPath(record.url)
    paths[path] = { ...paths[path], [record.method]: operation(record) }
  }
  return {
    openapi: '3.1.0',
    info,
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: { MgmtError: errorSchema }
    }
  }
}
