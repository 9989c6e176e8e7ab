/**
 * One JSON error shape for every management API failure:
 * `{ "error": { "code": "HYBRID_ERR_…", "message": "…", "field": "/body/reason" | null } }`.
 * `field` is a JSON pointer rooted at the request part (`/body`, `/querystring`, `/params`,
 * `/headers`) and is null when no single field is at fault.
 */
import type { FastifyError, FastifyReply, FastifyRequest, FastifySchemaValidationError } from 'fastify'
import { Type } from 'typebox'
import type { ErrorCode } from '../errors.ts'

export const MgmtErrorSchema = Type.Object({
  error: Type.Object({
    code: Type.String({ description: 'stable HYBRID_ERR_* code (docs/errors.md)' }),
    message: Type.String(),
    field: Type.Union([Type.String(), Type.Null()], { description: 'JSON pointer of the offending field, rooted at the request part' })
  })
})

export interface MgmtErrorBody {
  error: { code: ErrorCode, message: string, field: string | null }
}

export function errorBody (code: ErrorCode, message: string, field: string | null = null): MgmtErrorBody {
  return { error: { code, message, field } }
}

/** Sends the error body; returns the reply, so hooks and handlers can `return sendError(…)`. */
export function sendError (reply: FastifyReply, status: number, code: ErrorCode, message: string, field: string | null = null): FastifyReply {
  return reply.code(status).type('application/json; charset=utf-8').send(errorBody(code, message, field))
}

function pointerSegment (value: unknown): string {
  return String(value).replaceAll('~', '~0').replaceAll('/', '~1')
}

/** Field pointer and a readable message for the first schema violation. */
export function describeValidation (errors: readonly FastifySchemaValidationError[],
  context: string | undefined): { field: string, message: string } {
  const first = errors[0]
  const part = `/${context ?? 'body'}`
  if (first === undefined) return { field: part, message: `${part} is invalid` }
  const params: Record<string, unknown> = first.params
  let field = part + first.instancePath
  let message: string
  if (first.keyword === 'required') {
    field += `/${pointerSegment(params['missingProperty'])}`
    message = `${field} is required`
  } else if (first.keyword === 'additionalProperties') {
    field += `/${pointerSegment(params['additionalProperty'])}`
    message = `${field} is not allowed`
  } else {
    message = `${field} ${first.message ?? 'is invalid'}`
  }
  return { field, message }
}

const BODY_ERRORS: Readonly<Record<string, string>> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'content type must be application/json',
  FST_ERR_CTP_BODY_TOO_LARGE: 'request body is too large',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'request body is empty',
  FST_ERR_CTP_INVALID_JSON_BODY: 'request body is not valid JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'content length does not match the body'
}

/** fastify `setErrorHandler` body: 4xx with a stable code, 5xx logged and reported without detail. */
export async function mgmtErrorHandler (err: FastifyError, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  if (err.validation !== undefined) {
    const { field, message } = describeValidation(err.validation, err.validationContext)
    return sendError(reply, 400, 'HYBRID_ERR_MGMT_BAD_REQUEST', message, field)
  }
  const status = typeof err.statusCode === 'number' ? err.statusCode : 500
  const clientError = status >= 400 && status < 500
  const bodyMessage = BODY_ERRORS[err.code]
  if (bodyMessage !== undefined) {
    return sendError(reply, clientError ? status : 400, 'HYBRID_ERR_MGMT_BAD_REQUEST', bodyMessage, '/body')
  }
  if (clientError && typeof err.code === 'string' && err.code.startsWith('HYBRID_ERR_')) {
    return sendError(reply, status, err.code as ErrorCode, err.message)
  }
  if (clientError) return sendError(reply, status, 'HYBRID_ERR_MGMT_BAD_REQUEST', 'bad request')
  request.log.error({ err }, 'management request failed')
  return sendError(reply, 500, 'HYBRID_ERR_INTERNAL', 'internal error')
}

export async function mgmtNotFoundHandler (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  return sendError(reply, 404, 'HYBRID_ERR_MGMT_NOT_FOUND', `no route ${request.method} ${(request.url.split('?')[0] ?? '').slice(0, 200)}`)
}
