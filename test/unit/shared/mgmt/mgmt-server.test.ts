import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { register as globalRegister } from 'prom-client'
import { Type } from 'typebox'
import { buildMgmtServer, listenMgmt } from '../../../../shared/src/mgmt/mgmt-server.ts'
import type { MgmtApp, MgmtServerOptions } from '../../../../shared/src/mgmt/mgmt-server.ts'
import type { Readiness } from '../../../../shared/src/mgmt/health-routes.ts'
import { createRegistry } from '../../../../shared/src/metrics/registry.ts'

const TOKEN = 'test-token-0123456789abcdef'
const silentLogger = () => pino({ level: 'silent' })

/** A daemon-like route set: one mutating route with a body schema, one with params. */
function demoRoutes (app: MgmtApp): void {
  app.post('/drain', {
    schema: {
      summary: 'Start draining',
      body: Type.Object({ reason: Type.String({ minLength: 1 }), deadlineSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 60 })) },
        { additionalProperties: false }),
      response: { 202: Type.Object({ draining: Type.Boolean(), reason: Type.String() }) }
    }
  }, async (request, reply) => reply.code(202).send({ draining: true, reason: request.body.reason }))
  app.get('/peers/:id', {
    schema: { params: Type.Object({ id: Type.String({ pattern: '^[a-z0-9-]{1,32}$' }) }) }
  }, async (request) => ({ id: request.params.id }))
  app.get('/boom', async () => { throw new Error('secret internal detail') })
}

function build (overrides: Partial<MgmtServerOptions> = {}): { app: MgmtApp, state: Readiness } {
  const state: Readiness = { ready: false, checks: { listeners: false, rules: true } }
  const app = buildMgmtServer({
    log: silentLogger(),
    registry: createRegistry({ daemon: 'cpe', version: '9.9.9', commit: 'c0ffee' }),
    token: TOKEN,
    allowedHosts: ['localhost', '127.0.0.1', '[::1]'],
    readiness: () => state,
    status: () => ({ uptimeSeconds: 5, paths: { dsl: 'up' } }),
    routes: demoRoutes,
    ...overrides
  })
  return { app, state }
}

const auth = { authorization: `Bearer ${TOKEN}` }

test('GET /livez and its alias /healthz answer 200 ok', async (t) => {
  const { app } = build()
  t.after(() => app.close())
  for (const url of ['/livez', '/healthz']) {
    const res = await app.inject({ method: 'GET', url })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(res.json(), { status: 'ok' })
  }
})

test('GET /readyz is 503 naming the failing checks until ready, then 200', async (t) => {
  const { app, state } = build()
  t.after(() => app.close())
  const before = await app.inject({ method: 'GET', url: '/readyz' })
  assert.equal(before.statusCode, 503)
  assert.deepEqual(before.json(), { ready: false, checks: { listeners: false, rules: true }, failing: ['listeners'] })
  state.checks.listeners = true
  state.ready = true
  const after = await app.inject({ method: 'GET', url: '/readyz' })
  assert.equal(after.statusCode, 200)
  assert.deepEqual(after.json(), { ready: true, checks: { listeners: true, rules: true }, failing: [] })
})

test('GET /metrics serves the daemon registry in Prometheus text format', async (t) => {
  const { app } = build()
  t.after(() => app.close())
  const res = await app.inject({ method: 'GET', url: '/metrics' })
  assert.equal(res.statusCode, 200)
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/)
  assert.match(res.body, /^hybrid_build_info\{daemon="cpe",version="9\.9\.9",commit="c0ffee",node_version="v\d+/m)
  assert.match(res.body, /^process_resident_memory_bytes \d+/m)
  assert.match(res.body, /^nodejs_eventloop_lag_seconds /m)
  assert.match(res.body, /^process_open_fds \d+/m)
  assert.equal(globalRegister.getMetricsAsArray().length, 0, 'prom-client global register stays empty')
})

test('GET /status returns the daemon status object', async (t) => {
  const { app } = build()
  t.after(() => app.close())
  const res = await app.inject({ method: 'GET', url: '/status' })
  assert.equal(res.statusCode, 200)
  assert.deepEqual(res.json(), { uptimeSeconds: 5, paths: { dsl: 'up' } })
})

test('mutating route: 401 without token, 401 with a wrong one, 202 with the right one', async (t) => {
  const { app } = build()
  t.after(() => app.close())
  const body = { reason: 'maintenance' }
  const none = await app.inject({ method: 'POST', url: '/drain', body })
  assert.equal(none.statusCode, 401)
  assert.equal(none.headers['www-authenticate'], 'Bearer realm="hybrid-mgmt"')
  assert.equal(none.json().error.code, 'HYBRID_ERR_MGMT_UNAUTHORIZED')
  for (const authorization of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${TOKEN}`, TOKEN, 'Bearer ']) {
    const wrong = await app.inject({ method: 'POST', url: '/drain', body, headers: { authorization } })
    assert.equal(wrong.statusCode, 401, authorization)
  }
  const ok = await app.inject({ method: 'POST', url: '/drain', body, headers: auth })
  assert.equal(ok.statusCode, 202)
  assert.deepEqual(ok.json(), { draining: true, reason: 'maintenance' })
})

test('without a configured token every mutating route answers 401', async (t) => {
  const { app } = build({ token: undefined })
  t.after(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/drain', body: { reason: 'x' }, headers: auth })
  assert.equal(res.statusCode, 401)
  assert.equal(res.json().error.message, 'no management token is configured')
})

test('the token is checked before the body: unauthenticated bad bodies get 401, not 400', async (t) => {
  const { app } = build()
  t.after(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/drain', body: { nope: 1 } })
  assert.equal(res.statusCode, 401)
})

test('a Host outside the allow-list gets 421 on every route, before authentication', async (t) => {
  const { app } = build()
  t.after(() => app.close())
  for (const [method, url] of [['GET', '/livez'], ['GET', '/metrics'], ['POST', '/drain'], ['GET', '/nowhere']] as const) {
    const res = await app.inject({ method, url, headers: { host: 'evil.example:8080', ...auth }, body: { reason: 'x' } })
    assert.equal(res.statusCode, 421, url)
    assert.deepEqual(res.json(), { error: { code: 'HYBRID_ERR_MGMT_HOST', message: 'host not allowed', field: '/headers/host' } })
  }
  for (const host of ['127.0.0.1:9464', '[::1]:9464', 'LOCALHOST']) {
    const res = await app.inject({ method: 'GET', url: '/livez', headers: { host } })
    assert.equal(res.statusCode, 200, host)
  }
})

test('schema violations → 400 with a stable body naming the field', async (t) => {
  const { app } = build()
  t.after(() => app.close())
  const cases: Array<[unknown, string, RegExp]> = [
    [{}, '/body/reason', /is required/],
    [{ reason: '' }, '/body/reason', /must NOT have fewer than 1 characters/],
    [{ reason: 'x', deadlineSeconds: 99 }, '/body/deadlineSeconds', /must be <= 60/],
    [{ reason: 'x', extra: true }, '/body/extra', /is not allowed/]
  ]
  for (const [body, field, message] of cases) {
    const res = await app.inject({ method: 'POST', url: '/drain', body: body as object, headers: auth })
    assert.equal(res.statusCode, 400, JSON.stringify(body))
    const json = res.json()
    assert.deepEqual(Object.keys(json.error).sort(), ['code', 'field', 'message'])
    assert.equal(json.error.code, 'HYBRID_ERR_MGMT_BAD_REQUEST')
    assert.equal(json.error.field, field)
    assert.match(json.error.message, message)
  }
  const params = await app.inject({ method: 'GET', url: '/peers/NOT_VALID' })
  assert.equal(params.statusCode, 400)
  assert.equal(params.json().error.field, '/params/id')
})

test('malformed, oversized and non-JSON bodies → 400/413/415 with the same error shape', async (t) => {
  const { app } = build()
  t.after(() => app.close())
  const json = { ...auth, 'content-type': 'application/json' }
  const broken = await app.inject({ method: 'POST', url: '/drain', payload: '{"reason":', headers: json })
  assert.equal(broken.statusCode, 400)
  assert.equal(broken.json().error.field, '/body')
  const big = await app.inject({ method: 'POST', url: '/drain', payload: JSON.stringify({ reason: 'x'.repeat(20_000) }), headers: json })
  assert.equal(big.statusCode, 413)
  assert.equal(big.json().error.code, 'HYBRID_ERR_MGMT_BAD_REQUEST')
  const text = await app.inject({ method: 'POST', url: '/drain', payload: 'reason=x', headers: { ...auth, 'content-type': 'text/plain' } })
  assert.equal(text.statusCode, 415)
})

test('unknown routes → 404; handler failures → 500 without internal detail', async (t) => {
  const { app } = build()
  t.after(() => app.close())
  const missing = await app.inject({ method: 'GET', url: '/nowhere?x=1' })
  assert.equal(missing.statusCode, 404)
  assert.deepEqual(missing.json(), { error: { code: 'HYBRID_ERR_MGMT_NOT_FOUND', message: 'no route GET /nowhere', field: null } })
  const boom = await app.inject({ method: 'GET', url: '/boom' })
  assert.equal(boom.statusCode, 500)
  assert.deepEqual(boom.json(), { error: { code: 'HYBRID_ERR_INTERNAL', message: 'internal error', field: null } })
})

test('GET /openapi.json documents every route with its schemas and security', async (t) => {
  const { app } = build()
  t.after(() => app.close())
  const res = await app.inject({ method: 'GET', url: '/openapi.json' })
  assert.equal(res.statusCode, 200)
  const doc = res.json()
  assert.equal(doc.openapi, '3.1.0')
  assert.deepEqual(Object.keys(doc.paths).sort(),
    ['/boom', '/drain', '/healthz', '/livez', '/metrics', '/openapi.json', '/peers/{id}', '/readyz', '/status'])
  const drain = doc.paths['/drain'].post
  assert.deepEqual(drain.security, [{ bearer: [] }])
  assert.equal(drain.requestBody.content['application/json'].schema.properties.reason.type, 'string')
  assert.deepEqual(Object.keys(drain.responses).sort(), ['202', '400', '401', '421'])
  assert.equal(doc.paths['/livez'].get.security, undefined)
  assert.equal(doc.paths['/livez'].head, undefined)
  assert.deepEqual(doc.paths['/peers/{id}'].get.parameters.map((p: { name: string, in: string }) => [p.name, p.in]), [['id', 'path']])
  assert.ok(doc.paths['/metrics'].get.responses['200'].content['text/plain'])
  assert.equal(doc.components.securitySchemes.bearer.scheme, 'bearer')
})

test('route config auth overrides the method default', async (t) => {
  const { app } = build({
    routes: (a) => {
      a.get('/secret', { config: { auth: true } }, async () => ({ ok: true }))
      a.post('/ping', { config: { auth: false } }, async () => ({ ok: true }))
    }
  })
  t.after(() => app.close())
  assert.equal((await app.inject({ method: 'GET', url: '/secret' })).statusCode, 401)
  assert.equal((await app.inject({ method: 'GET', url: '/secret', headers: auth })).statusCode, 200)
  assert.equal((await app.inject({ method: 'POST', url: '/ping' })).statusCode, 200)
})

test('limits: small body limit and server timeouts are set', async (t) => {
  const { app } = build()
  t.after(() => app.close())
  await app.ready()
  assert.equal(app.initialConfig.bodyLimit, 16 * 1024)
  assert.equal(app.server.requestTimeout, 10_000)
  assert.equal(app.server.headersTimeout, 5_000)
  assert.equal(app.server.keepAliveTimeout, 5_000)
  assert.equal(app.server.timeout, 30_000)
})

test('building never listens; listenMgmt binds and reports the port', async (t) => {
  const { app } = build()
  t.after(() => app.close())
  await app.ready()
  assert.equal(app.server.listening, false)
  const address = await listenMgmt(app, { host: '127.0.0.1', port: 0 })
  assert.equal(address.host, '127.0.0.1')
  assert.ok(address.port > 0)
  const res = await fetch(`http://127.0.0.1:${address.port}/livez`)
  assert.equal(res.status, 200)
})

test('bad configuration is refused at build time', () => {
  assert.throws(() => build({ token: 'short' }), /at least 16 characters/)
  assert.throws(() => build({ allowedHosts: [] }), /at least one allowed host/)
  // Node itself would throw a bare ERR_OUT_OF_RANGE for this; the daemons get a ConfigError naming the key.
  assert.throws(() => build({ limits: { headersTimeoutMs: 20_000, requestTimeoutMs: 10_000 } }),
    (err: Error & { code?: string, detail?: { key?: string } }) =>
      err.code === 'HYBRID_ERR_CONFIG_INVALID' && err.detail?.key === 'management.limits.headersTimeoutMs')
})

test('building and listening emits no process warning (no deprecated fastify options: FSTDEP022/FSTDEP023)', async (t) => {
  const warnings: Error[] = []
  const onWarning = (w: Error): void => { warnings.push(w) }
  process.on('warning', onWarning)
  t.after(() => { process.off('warning', onWarning) })
  const { app } = build()
  t.after(() => app.close())
  const address = await listenMgmt(app, { host: '127.0.0.1', port: 0 })
  const res = await fetch(`http://127.0.0.1:${address.port}/livez`)
  assert.equal(res.status, 200)
  // The router limit still applies through routerOptions: a 101-character parameter is refused.
  const long = await app.inject({ method: 'GET', url: `/peers/${'a'.repeat(101)}` })
  assert.equal(long.statusCode, 414)
  await new Promise((resolve) => setImmediate(resolve)) // emitWarning fires on the next tick
  assert.deepEqual(warnings.map((w) => `${(w as { code?: string }).code ?? w.name}: ${w.message}`), [])
})
