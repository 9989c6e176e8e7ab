/**
 * Management API hardening: health probes outside the rate limit, one Host and no foreign
 * absolute-form authority (RFC 9112 §3.2, §3.2.2), bearer tokens limited to RFC 6750 b64token,
 * and the CPE's management server on loopback by default.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { loadConfig } from '../../../../shared/src/config/load-config.ts'
import { ConfigError } from '../../../../shared/src/errors.ts'
import type { ConfigProblem } from '../../../../shared/src/config/problem.ts'
import { buildMgmtServer, listenMgmt } from '../../../../shared/src/mgmt/mgmt-server.ts'
import type { MgmtServerOptions } from '../../../../shared/src/mgmt/mgmt-server.ts'
import { createTokenCheck } from '../../../../shared/src/mgmt/bearer-auth.ts'
import { ConfigSchema as CpeSchema } from '../../../../cpe/src/config/config.ts'
import { ConfigSchema as ConcSchema } from '../../../../concentrator/src/config/config.ts'
import { testTempDir } from '../../../helpers/temp-dir.ts'

function build (t: TestContext, overrides: Partial<MgmtServerOptions> = {}): ReturnType<typeof buildMgmtServer> {
  const app = buildMgmtServer({
    log: pino({ level: 'silent' }),
    registry: new Registry(),
    token: undefined,
    allowedHosts: ['localhost', '127.0.0.1', '[::1]'],
    readiness: () => ({ ready: true, checks: {} }),
    status: () => ({}),
    ...overrides
  })
  t.after(() => app.close())
  return app
}

test('rate limit: once the budget is spent /livez, /healthz and /readyz still answer 200, other routes 429', async (t) => {
  const clock = 1_000_000
  const app = build(t, { rateLimit: { max: 5, windowMs: 1000, now: () => clock } })
  for (let i = 0; i < 5; i++) assert.equal((await app.inject({ url: '/status' })).statusCode, 200)
  assert.equal((await app.inject({ url: '/status' })).statusCode, 429)
  assert.equal((await app.inject({ url: '/metrics' })).statusCode, 429)
  assert.equal((await app.inject({ url: '/nowhere' })).statusCode, 429)
  for (let i = 0; i < 20; i++) {
    for (const url of ['/livez', '/healthz', '/readyz']) assert.equal((await app.inject({ url })).statusCode, 200, `${url} #${i}`)
  }
  // Health probes do not spend the budget either, and the Host allow-list still applies to them.
  assert.equal((await app.inject({ url: '/livez', headers: { host: 'evil.example' } })).statusCode, 421)
})

/** Sends one raw HTTP/1.1 request; resolves with the status line and the body. */
async function raw (port: number, text: string): Promise<{ status: string, body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let data = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => { data += chunk })
    socket.on('error', reject)
    socket.on('close', () => { resolve({ status: data.split('\r\n')[0] ?? '', body: data.slice(data.indexOf('\r\n\r\n') + 4) }) })
    socket.setTimeout(3000, () => { socket.destroy() })
    socket.end(text)
  })
}

test('two Host headers and an absolute-form target naming a foreign host get 400; an allowed authority is served', async (t) => {
  const app = build(t)
  const { port } = await listenMgmt(app, { host: '127.0.0.1', port: 0 })
  for (const hosts of [['localhost', 'evil.example'], ['localhost', 'localhost']]) {
    const res = await raw(port, `GET /livez HTTP/1.1\r\n${hosts.map((h) => `Host: ${h}\r\n`).join('')}Connection: close\r\n\r\n`)
    assert.equal(res.status, 'HTTP/1.1 400 Bad Request', hosts.join(','))
    assert.deepEqual(JSON.parse(res.body),
      { error: { code: 'HYBRID_ERR_MGMT_BAD_REQUEST', message: 'more than one Host header', field: '/headers/host' } })
  }
  for (const target of ['http://evil.example/livez', 'http://evil.example:80/readyz', 'https://[2001:db8::1]/livez']) {
    const res = await raw(port, `GET ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`)
    assert.equal(res.status, 'HTTP/1.1 400 Bad Request', target)
    assert.equal(JSON.parse(res.body).error.field, '/url', target)
  }
  const allowed = await raw(port, `GET http://127.0.0.1:${port}/livez HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`)
  assert.equal(allowed.status, 'HTTP/1.1 200 OK')
  const plain = await raw(port, 'GET /livez HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  assert.equal(plain.status, 'HTTP/1.1 200 OK')
})

function configProblems (fn: () => unknown): ConfigProblem[] {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err))
    return err.detail?.['problems'] as ConfigProblem[]
  }
  assert.fail('expected a ConfigError')
}

test('a management token outside RFC 6750 b64token is refused by both daemons, naming the key and the file', () => {
  const dir = testTempDir('hat-mg-')
  const cpeBase = { uplinks: [{ name: 'dsl', interface: 'dsl0', role: 'dsl' }], concentrator: { host: '192.0.2.1', port: 1080 } }
  for (const token of ['abc def ghi jkl mno', 'token-with-colon:0123456', 'trailing-equals=then-more', 'ümlaut-0123456789abc']) {
    for (const [name, schema, base] of [['cpe', CpeSchema, cpeBase], ['concentrator', ConcSchema, {}]] as const) {
      const file = join(dir, `${name}.json`)
      writeFileSync(file, JSON.stringify({ ...base, management: { token } }))
      const problems = configProblems(() => loadConfig(schema, { file }))
      assert.equal(problems.length, 1, `${name} ${token}`)
      assert.equal(problems[0]?.path, '/management/token')
      assert.equal(problems[0]?.origin, file)
      assert.match(problems[0]?.message ?? '', /RFC 6750|pattern/)
    }
  }
  const file = join(dir, 'ok.json')
  writeFileSync(file, JSON.stringify({ management: { token: 'abc.DEF-123_~+/0123==' } }))
  assert.equal(loadConfig(ConcSchema, { file }).management.token, 'abc.DEF-123_~+/0123==')
  // The server refuses it too (a token built in code, not read from a file).
  assert.throws(() => createTokenCheck('abc def ghi jkl mno'), /RFC 6750/)
})

test('the CPE management server listens on loopback by default', () => {
  const dir = testTempDir('hat-mg-')
  const file = join(dir, 'cpe.json')
  writeFileSync(file, JSON.stringify({ uplinks: [{ name: 'dsl', interface: 'dsl0', role: 'dsl' }], concentrator: { host: '192.0.2.1', port: 1080 } }))
  assert.deepEqual(loadConfig(CpeSchema, { file }).management.listen, { host: '127.0.0.1', port: 9091 })
})
