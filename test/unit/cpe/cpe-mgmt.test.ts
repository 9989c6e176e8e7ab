import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { writeFileSync } from 'node:fs'
import { get } from 'node:http'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { stringify } from 'yaml'
import { loadConfig } from '../../../shared/src/config/load-config.ts'
import { createLogger } from '../../../shared/src/log.ts'
import { HybridError } from '../../../shared/src/errors.ts'
import { createCpe } from '../../../cpe/src/cpe.ts'
import { listenMgmt } from '../../../shared/src/mgmt/mgmt-server.ts'
import { testTempDir } from '../../helpers/temp-dir.ts'
import { ConfigSchema, type CpeConfig } from '../../../cpe/src/config/config.ts'
import type { UplinkState } from '../../../cpe/src/uplink/uplink-manager.ts'

const TOKEN = 'test-token-0123456789'
function config (extra: Record<string, unknown> = {}): CpeConfig {
  const file = join(testTempDir('hat-cpd-'), 'cpe.yaml')
  writeFileSync(file, stringify({
    log: { level: 'fatal' },
    management: { token: TOKEN },
    uplinks: [{ name: 'dsl', interface: 'dsl0', role: 'dsl' }, { name: 'lte', interface: 'lte0', role: 'lte' }],
    concentrator: { host: '192.0.2.1', port: 1080 },
    ...extra
  }))
  return loadConfig(ConfigSchema, { file }) as CpeConfig
}

class FakeUplinks extends EventEmitter<{ change: [UplinkState[]], problem: [Error] }> {
  mode: 'aggregate' | 'backup' = 'aggregate'
  admin = new Map<string, 'up' | 'down'>()
  uplinks = (): UplinkState[] => [
    {
      name: 'dsl',
      role: 'dsl',
      interface: 'dsl0',
      table: 100,
      addresses: ['198.51.100.2'],
      up: true,
      endpointId: undefined,
      endpointIds: [],
      mode: this.mode,
      admin: 'up'
    },
    {
      name: 'lte',
      role: 'lte',
      interface: 'lte0',
      table: 101,
      addresses: ['198.51.100.66'],
      up: true,
      endpointId: 1,
      endpointIds: this.admin.get('lte') === 'down' ? [] : [1],
      mode: this.mode,
      admin: this.admin.get('lte') ?? 'up'
    }
  ]

  setMode = async (m: 'aggregate' | 'backup'): Promise<void> => { this.mode = m; this.emit('change', this.uplinks()) }
  setAdmin = async (name: string, a: 'up' | 'down'): Promise<void> => {
    if (name === 'dsl') throw new HybridError('HYBRID_ERR_UPLINK_CONFIG', 'primary')
    this.admin.set(name, a); this.emit('change', this.uplinks())
  }

  refresh = async (): Promise<void> => {}
  stop = async (): Promise<void> => {}
}

async function started (t: TestContext) {
  const uplinks = new FakeUplinks()
  const rulesets: string[] = []
  const cpe = createCpe(config(), {
    log: createLogger({ level: 'silent', name: 'test' }),
    registry: new Registry(),
    listenManagement: false,
    kernelMib: false,
    startUplinks: async () => uplinks,
    startInterceptor: async () => ({
      listening: true,
      tableInstalled: true,
      updateRuleset: async (c) => { rulesets.push(JSON.stringify(c)) },
      stopAccepting: () => {},
      stop: async () => {},
      on: () => undefined
    })
  })
  t.after(async () => { await cpe.stop() })
  await cpe.start()
  return { cpe, uplinks, rulesets }
}

const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }

test('readyz, status, uplinks; readiness off synchronously on stop', async (t) => {
  const { cpe } = await started(t)
  assert.equal((await cpe.mgmt.inject({ url: '/readyz' })).statusCode, 200)
  const up = (await cpe.mgmt.inject({ url: '/api/v1/uplinks' })).json() as {
    uplinks: Array<{
      name: string,
      role: string,
      endpointConfigured: boolean
    }>
  }
  assert.deepEqual(up.uplinks.map((u) => [u.name, u.role, u.endpointConfigured]), [['dsl', 'primary', true], ['lte', 'primary', true]])
  assert.equal(((await cpe.mgmt.inject({ url: '/api/v1/sessions?limit=5' })).json() as { total: number }).total, 0)
  assert.deepEqual((await cpe.mgmt.inject({ url: '/api/v1/udp/flows' })).json(), { enabled: false, total: 0, offset: 0, limit: 50, flows: [] })
  const stopping = cpe.stop()
  assert.equal(cpe.ready(), false)
  await stopping
})

test('status: the typed schema (cpe/src/mgmt/status-schema.ts) serialises every field the agent builds', async (t) => {
  const { cpe } = await started(t)
  const status = (await cpe.mgmt.inject({ url: '/api/v1/status' })).json() as { uptimeSeconds: number, ready: boolean, mode: string }
  assert.deepEqual(status, { ...JSON.parse(JSON.stringify(cpe.status())), uptimeSeconds: status.uptimeSeconds })
  assert.deepEqual((await cpe.mgmt.inject({ url: '/status' })).json(), status)
  assert.equal(status.ready, true)
  assert.equal(status.mode, 'socks5')
  const doc = (await cpe.mgmt.inject({ url: '/openapi.json' })).json() as { paths: Record<string, { get?: { responses: Record<string, unknown> } }> }
  assert.match(JSON.stringify(doc.paths['/api/v1/status']?.get?.responses), /multipathMode/, 'the OpenAPI document describes the status')
})

test('PUT /api/v1/uplinks/:name: token, mode on lte only, admin down, bad fields named', async (t) => {
  const { cpe, uplinks } = await started(t)
  const put = async (name: string, body: unknown,
    headers: Record<string, string> = auth) => cpe.mgmt.inject({
    method: 'PUT',
    url: `/api/v1/uplinks/${name}`,
    headers,
    payload: JSON.stringify(body)
  })
  assert.equal((await put('lte', { admin: 'down' }, { 'content-type': 'application/json' })).statusCode, 401)
  const down = await put('lte', { admin: 'down' })
  assert.equal(down.statusCode, 200, down.body)
  assert.equal(uplinks.admin.get('lte'), 'down')
  assert.equal((down.json() as { uplink: { endpointConfigured: boolean, admin: string } }).uplink.endpointConfigured, false)
  assert.equal((await put('lte', { mode: 'backup' })).statusCode, 200)
  assert.equal(uplinks.mode, 'backup')
  const dslMode = await put('dsl', { mode: 'backup' })
  assert.equal(dslMode.statusCode, 400)
  assert.equal((dslMode.json() as { error: { field: string } }).error.field, '/body/mode')
  const bad = await put('lte', { mode: 'fast' })
  assert.equal(bad.statusCode, 400)
  assert.match(bad.body, /mode/)
  const dslDown = await put('dsl', { admin: 'down' })
  assert.equal(dslDown.statusCode, 400)
  assert.equal((dslDown.json() as { error: { field: string } }).error.field, '/body/admin')
  const wifi = await put('wifi', { admin: 'down' })
  assert.equal(wifi.statusCode, 404)
  assert.equal((wifi.json() as { error: { field: string } }).error.field, '/params/name')
  // A refused mode change names mode, not admin.
  uplinks.setMode = async () => { throw new HybridError('HYBRID_ERR_UPLINK_CONFIG', 'endpoint flags could not be written') }
  const modeRefused = await put('lte', { mode: 'aggregate' })
  assert.equal(modeRefused.statusCode, 400)
  assert.equal((modeRefused.json() as { error: { field: string } }).error.field, '/body/mode')
  assert.equal((await put('lte', {})).statusCode, 400)
})

test('management.limits reach the CPE management server; refusals are counted on the CPE registry', async (t) => {
  const cpe = createCpe(config({
    management: {
      token: TOKEN,
      limits: { perSourceMaxConnections: 3, idleTimeoutMs: 1234, keepAliveTimeoutMs: 800, headersTimeoutMs: 900, requestTimeoutMs: 2000 }
    }
  }), {
    log: createLogger({ level: 'silent', name: 'test' }), registry: new Registry(), listenManagement: false, kernelMib: false
  })
  t.after(async () => { await cpe.mgmt.close() })
  await cpe.mgmt.ready()
  assert.deepEqual([cpe.mgmt.server.timeout, cpe.mgmt.server.keepAliveTimeout, cpe.mgmt.server.headersTimeout, cpe.mgmt.server.requestTimeout],
    [1234, 800, 900, 2000])
  assert.match(await cpe.registry.metrics(), /^hybrid_mgmt_connections_refused_total\{reason="per_source_limit"\} 0$/m)
  // Real sockets on the CPE's own server: 6 idle connections from one source with a cap of 3.
  const { port } = await listenMgmt(cpe.mgmt, { host: '127.0.0.1', port: 0 })
  const closed: boolean[] = []
  const sockets = await Promise.all(Array.from({ length: 6 }, async (_, i) => new Promise<Socket>((resolve) => {
    const s = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.1' }, () => { resolve(s) })
    s.on('error', () => {})
    s.on('close', () => { closed[i] = true })
  })))
  t.after(() => { for (const s of sockets) s.destroy() })
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.equal(closed.filter(Boolean).length, 3)
  const livez = await new Promise<number>((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/livez', localAddress: '127.0.0.2', agent: false },
      (res) => { res.resume(); resolve(res.statusCode ?? 0) }).on('error', reject)
  })
  assert.equal(livez, 200, 'another source still gets /livez')
  assert.match(await cpe.registry.metrics(), /^hybrid_mgmt_connections_refused_total\{reason="per_source_limit"\} 3$/m)
})

test('reload: bypass change re-applies the ruleset; restart-only keys are refused and counted', async (t) => {
  const { cpe, rulesets } = await started(t)
  await cpe.reload(config({ intercept: { bypass: { ports: [22] } } }))
  assert.equal(rulesets.length, 1)
  await assert.rejects(cpe.reload(config({ intercept: { port: 7002 } })), /intercept.port/)
  const text = await cpe.registry.metrics()
  assert.match(text, /hybrid_config_reloads_total\{result="success"\} 1/)
  assert.match(text, /hybrid_config_reloads_total\{result="failure"\} 1/)
})
