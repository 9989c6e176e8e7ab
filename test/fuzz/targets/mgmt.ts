/**
 * The management API's request bodies (cpe/src/mgmt/cpe-routes.ts, concentrator/src/mgmt/routes.ts,
 * shared/src/mgmt/), through `app.inject()` with the real guards, parsers, schema validation and error
 * handler. Input: [route][content type][uplink name][body bytes…]. Routes: CPE PUT /api/v1/uplinks/:name,
 * CPE PUT /api/v1/steering, CPE and concentrator POST /api/v1/reload. Asserts: the answer is 200 or a
 * 4xx with the `{ error: { code: HYBRID_ERR_*, message, field } }` body, never 5xx; a handler only
 * ever sees a body its schema allows; a body the schema allows is not refused (200 for a known uplink).
 */
import { pino } from 'pino'
import { buildMgmtServer } from '../../../shared/src/mgmt/mgmt-server.ts'
import type { MgmtApp } from '../../../shared/src/mgmt/mgmt-server.ts'
import { createRegistry } from '../../../shared/src/metrics/registry.ts'
import { registerCpeRoutes } from '../../../cpe/src/mgmt/cpe-routes.ts'
import type { UplinkChange } from '../../../cpe/src/mgmt/cpe-routes.ts'
import { STEERING_MODES } from '../../../cpe/src/config/steering.ts'
import type { SteeringMode } from '../../../cpe/src/config/steering.ts'
import { registerConcentratorRoutes } from '../../../concentrator/src/mgmt/routes.ts'
import { check } from '../engine/target.ts'
import type { FuzzTarget } from '../engine/target.ts'

const TOKEN = 'fuzz-token-0123456789abcdef'
const calls: Array<{ kind: string, value: unknown }> = []

function build (routes: (app: MgmtApp) => void): MgmtApp {
  return buildMgmtServer({
    log: pino({ level: 'silent' }),
    registry: createRegistry({ daemon: 'cpe', version: '0', commit: 'fuzz' }),
    token: TOKEN,
    allowedHosts: ['localhost'],
    readiness: () => ({ ready: true, checks: {} }),
    status: () => ({}),
    rateLimit: { max: Number.MAX_SAFE_INTEGER, windowMs: 1000 },
    routes
  })
}

const uplinks = [{ name: 'dsl', access: 'dsl' }, { name: 'lte', access: 'lte' }]
const cpe = build((app) => registerCpeRoutes(app, {
  status: () => ({}) as never,
  uplinks: () => uplinks,
  setUplink: async (name, change) => { calls.push({ kind: 'uplink', value: { name, change } }) },
  sessions: () => ({ total: 0, offset: 0, limit: 0, sessions: [] }) as never,
  udpFlows: () => ({ enabled: false, total: 0, offset: 0, limit: 0, flows: [] }),
  reload: async () => { calls.push({ kind: 'reload', value: null }) },
  steering: () => ({ view: () => ({}), setMode: async (mode: SteeringMode) => { calls.push({ kind: 'steering', value: mode }) } })
}))
const concentrator = build((app) => registerConcentratorRoutes(app, {
  status: () => ({}) as never,
  sessions: () => ({ total: 0, offset: 0, limit: 0, sessions: [] }) as never,
  reload: async () => { calls.push({ kind: 'reload', value: null }) }
}))

await Promise.all([cpe.ready(), concentrator.ready()]) // compile the route schemas before the first timed input

const names = ['dsl', 'lte', 'wifi', 'DSL', 'a'.repeat(17), '%2e%2e', 'dsl%00', '']
const contentTypes = ['application/json', 'application/json; charset=utf-8', 'text/plain', undefined, 'application/x-www-form-urlencoded',
  'application/json; charset=latin1']

function parse (body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8')) as unknown
  } catch {
    return undefined
  }
}

function isPlainObject (v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

function validUplinkChange (v: unknown): boolean {
  if (!isPlainObject(v)) return false
  const keys = Object.keys(v)
  return keys.length >= 1 && keys.every((k) => (k === 'mode' && ['aggregate', 'backup'].includes(v[k] as string)) || (k === 'admin' && ['up',
    'down'].includes(v[k] as string)))
}

function validSteering (v: unknown): boolean {
  return isPlainObject(v) && Object.keys(v).length === 1 && (STEERING_MODES as readonly unknown[]).includes(v['mode'])
}

function checkHandlerSaw (route: number): void {
  for (const c of calls) {
    if (c.kind === 'uplink') {
      const { change } = c.value as { change: UplinkChange }
      check(validUplinkChange(change), `setUplink got ${JSON.stringify(change)}`)
      check(route === 0, 'setUplink called from another route')
    }
    if (c.kind === 'steering') check((STEERING_MODES as readonly unknown[]).includes(c.value), `setMode got ${JSON.stringify(c.value)}`)
  }
}

export const target: FuzzTarget = {
  maxLen: 20 * 1024, // above the 16 KiB body limit, so 413 is reached too
  dictionary: ['{"mode":"', '{"admin":"', '","admin":"', '"}', 'aggregate', 'backup', 'up', 'down', ...STEERING_MODES, '"__proto__"',
    '"constructor"', '{"mode":["backup"]}', 'null', '\\u0000'],
  async fuzz (data) {
    if (data.length < 3) return
    const route = (data[0] as number) % 4
    const contentType = contentTypes[(data[1] as number) % contentTypes.length]
    const name = names[(data[2] as number) % names.length] as string
    const body = data.subarray(3)
    const app = route === 3 ? concentrator : cpe
    const url = route === 0 ? `/api/v1/uplinks/${name}` : route === 1 ? '/api/v1/steering' : '/api/v1/reload'
    calls.length = 0
    const res = await app.inject({
      method: route === 0 || route === 1 ? 'PUT' : 'POST',
      url,
      headers: { host: 'localhost', authorization: `Bearer ${TOKEN}`, ...(contentType === undefined ? {} : { 'content-type': contentType }) },
      payload: body
    })
    check(res.statusCode === 200 || (res.statusCode >= 400 && res.statusCode < 500), `status ${res.statusCode}: ${res.body.slice(0, 200)}`)
    checkHandlerSaw(route)
    if (res.statusCode !== 200) {
      const e = (parse(res.rawPayload) as { error?: { code?: unknown, message?: unknown } } | undefined)?.error
      check(typeof e?.code === 'string' && e.code.startsWith('HYBRID_ERR_') && typeof e.message === 'string', `error body ${res.body.slice(0, 200)}`)
    }
    const json = contentType?.startsWith('application/json') === true && body.length > 0 ? parse(body) : undefined
    if (route === 0 && (name === 'lte') && validUplinkChange(json)) {
      check(res.statusCode === 200,
      `valid uplink change refused: ${res.statusCode} ${res.body}`)
    }
    if (route === 1 && validSteering(json)) check(res.statusCode === 200, `valid steering body refused: ${res.statusCode} ${res.body}`)
  }
}
