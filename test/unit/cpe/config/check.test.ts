/**
 * The CPE's cross-field checks run by the loader (cpe/src/config/check.ts): each configuration here
 * passed the schema (so `--validate` said ok) and was refused only at start. Now the loader — the
 * one --validate, start and reload use — refuses it with the code and names the key and the file.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { loadConfig } from '../../../../shared/src/config/load-config.ts'
import type { ConfigProblem } from '../../../../shared/src/config/problem.ts'
import { isHybridError } from '../../../../shared/src/errors.ts'
import { ConfigSchema } from '../../../../cpe/src/config/config.ts'
import { cpeConfigProblems } from '../../../../cpe/src/config/check.ts'
import { configRefusal } from '../../../helpers/config-refusal.ts'
import { testTempDir } from '../../../helpers/temp-dir.ts'

const dir = testTempDir('cpe-config-check-')
let n = 0

const uplinks = [{ name: 'dsl', interface: 'eth1', role: 'dsl' }, { name: 'lte', interface: 'wwan0', role: 'lte' }]
const base = { uplinks, concentrator: { host: '198.51.100.7', port: 1080 } }

function writeConfig (extra: Record<string, unknown>): string {
  const file = join(dir, `cpe-${++n}.yaml`)
  writeFileSync(file, stringify({ ...base, ...extra }))
  return file
}

const refusal = (file: string): ReturnType<typeof configRefusal> => configRefusal(ConfigSchema, file, cpeConfigProblems)

interface Case { name: string, extra: Record<string, unknown>, path: string, message: RegExp }

const cases: Case[] = [
  { name: 'mode convert without convert.port', extra: { mode: 'convert' }, path: '/convert/port', message: /required in mode convert/ },
  {
    name: 'socks5.username without password',
    extra: { socks5: { username: 'alice' } },
    path: '/socks5/password',
    message: /required with \/socks5\/username/
  },
  { name: 'failover without health', extra: { failover: { enabled: true } }, path: '/failover/enabled', message: /health\/enabled/ },
  {
    name: 'failover.kernel.rtoMaxMs below 120000 without tcpRetries2',
    extra: { health: { enabled: true }, failover: { enabled: true, kernel: { rtoMaxMs: 5000 } } },
    path: '/failover/kernel/tcpRetries2',
    message: /rtoMaxMs below 120000/
  },
  {
    name: 'intercept.socketMark equal to intercept.mark',
    extra: { intercept: { mark: 7, socketMark: 7 } },
    path: '/intercept/socketMark',
    message: /must differ from \/intercept\/mark/
  },
  {
    name: 'bypass destination that passes the pattern but is no prefix',
    extra: { intercept: { bypass: { destinations: ['10.0.0.0/40'] } } },
    path: '/intercept/bypass/destinations/0',
    message: /not an IP address or prefix/
  },
  {
    name: 'bypass source that is no address',
    extra: { intercept: { bypass: { sources: ['999.1.1.1'] } } },
    path: '/intercept/bypass/sources/0',
    message: /not an IP address or prefix/
  },
  { name: 'udp.enabled without udp.port', extra: { udp: { enabled: true } }, path: '/udp/port', message: /required with \/udp\/enabled/ },
  {
    name: 'udp with intercept.rules off',
    extra: { intercept: { rules: 'off' }, udp: { enabled: true, port: 7400 } },
    path: '/udp/enabled',
    message: /needs \/intercept\/rules managed or external/
  },
  { name: 'udp.mark equal to intercept.mark', extra: { udp: { enabled: true, port: 7400, mark: 1 } }, path: '/udp/mark', message: /must differ/ },
  { name: 'udp.routeTable equal to intercept.routeTable', extra: { udp: { enabled: true, port: 7400, routeTable: 300 } }, path: '/udp/routeTable', message: /must differ/ },
  {
    name: 'udp.rulePriority equal to intercept.rulePriority',
    extra: { udp: { enabled: true, port: 7400, rulePriority: 50 } },
    path: '/udp/rulePriority',
    message: /must differ/
  },
  { name: 'udp.device naming an uplink', extra: { udp: { enabled: true, port: 7400, device: 'eth1' } }, path: '/udp/device', message: /uplink or LAN interface/ },
  {
    name: 'uplink name not usable as a metric label',
    extra: { uplinks: [uplinks[0], { ...uplinks[1], name: 'lte-1' }] },
    path: '/uplinks/1/name',
    message: /must match/
  },
  {
    name: 'five uplinks (metrics label at most four paths)',
    extra: { uplinks: ['a', 'b', 'c', 'd', 'e'].map((x) => ({ name: `up${x}`, interface: `eth${x}`, role: 'lte' })) },
    path: '/uplinks',
    message: /at most 4 uplinks/
  },
  {
    name: 'two uplinks on one interface',
    extra: { uplinks: [uplinks[0], { ...uplinks[1], interface: 'eth1' }] },
    path: '/uplinks/1/interface',
    message: /duplicate interface eth1/
  },
  {
    name: 'explicit table equal to another uplink\'s tableBase + index',
    extra: { uplinks: [{ ...uplinks[0], table: 101 }, uplinks[1]] },
    path: '/uplinks/1/table',
    message: /duplicate table 101/
  },
  {
    name: 'steering class pinned to no uplink',
    extra: { steering: { classes: [{ name: 'voip', destinations: ['192.0.2.0/24'], access: 'wifi' }] } },
    path: '/steering/classes/0/access',
    message: /no uplink named wifi/
  },
  {
    name: 'steering smallest-delay without health',
    extra: { steering: { mode: 'smallest-delay' } },
    path: '/steering/mode',
    message: /needs health\.enabled/
  },
  {
    name: 'steering priority-based without a dsl uplink',
    extra: { uplinks: [{ ...uplinks[0], role: 'lte' }, uplinks[1]], steering: { mode: 'priority-based' } },
    path: '/steering/mode',
    message: /needs a dsl uplink/
  },
  {
    name: 'steering mode with a single uplink',
    extra: { uplinks: [uplinks[0]], steering: { mode: 'load-balancing' } },
    path: '/steering/mode',
    message: /second uplink/
  },
  {
    name: 'management headersTimeoutMs above requestTimeoutMs',
    extra: { management: { limits: { headersTimeoutMs: 20_000, requestTimeoutMs: 10_000 } } },
    path: '/management/limits/headersTimeoutMs',
    message: /must not exceed/
  }
]

for (const c of cases) {
  test(`loader refuses (HYBRID_ERR_CONFIG_INVALID, key and file): ${c.name}`, () => {
    const file = writeConfig(c.extra)
    // It passes the schema alone (what --validate checked before): the refusal is the cross-field check's.
    assert.doesNotThrow(() => loadConfig(ConfigSchema, { file }))
    const { code, problems } = refusal(file)
    assert.equal(code, 'HYBRID_ERR_CONFIG_INVALID')
    const p = problems.find((x) => x.path === c.path)
    assert.ok(p !== undefined, `expected a problem at ${c.path}, got ${JSON.stringify(problems)}`)
    assert.match(p.message, c.message)
    assert.equal(p.source, 'file')
    assert.equal(p.origin, file)
  })
}

test('a key set in the file is located by line and column', () => {
  const file = writeConfig({ intercept: { mark: 7, socketMark: 7 } })
  const { problems } = refusal(file)
  assert.equal(problems.length, 1)
  assert.equal(typeof problems[0]?.line, 'number')
  assert.equal(typeof problems[0]?.column, 'number')
})

test('every problem at once, like schema problems', () => {
  const { problems } = refusal(writeConfig({ mode: 'convert', socks5: { username: 'alice' }, failover: { enabled: true } }))
  assert.deepEqual(problems.map((p) => p.path).sort(), ['/convert/port', '/failover/enabled', '/socks5/password'])
})

test('a value from the environment or --set is named by its variable or flag', () => {
  const file = writeConfig({})
  try {
    loadConfig(ConfigSchema,
      { file, check: cpeConfigProblems, envPrefix: 'HYBRID_CPE_', env: { HYBRID_CPE_MODE: 'convert' }, argv: { set: ['failover.enabled=true'] } })
    assert.fail('accepted')
  } catch (err) {
    assert.ok(isHybridError(err))
    const problems = err.detail?.['problems'] as ConfigProblem[]
    assert.deepEqual(problems.map((p) => [p.path, p.origin]), [['/convert/port', file], ['/failover/enabled', '--set failover.enabled']])
  }
})

test('the cross-field checks do not run when the schema already refused (they need typed values)', () => {
  const { problems } = refusal(writeConfig({ mode: 'convert', limits: { highWaterMark: 1 } }))
  assert.deepEqual(problems.map((p) => p.path), ['/limits/highWaterMark'])
})

test('limits.handshakeTimeoutMs and limits.convertTimeoutMs are gone from the CPE (nothing read them): unknown key', () => {
  const { code, problems } = refusal(writeConfig({ limits: { handshakeTimeoutMs: 1000, convertTimeoutMs: 1000 } }))
  assert.equal(code, 'HYBRID_ERR_CONFIG_INVALID')
  assert.deepEqual(problems.map((p) => [p.path, p.message]),
    [['/limits/handshakeTimeoutMs', 'unknown key'], ['/limits/convertTimeoutMs', 'unknown key']])
})

test('a valid configuration passes the checks', () => {
  const c = loadConfig(ConfigSchema, {
    file: writeConfig({
      mode: 'convert',
      convert: { port: 5124 },
      health: { enabled: true },
      failover: { enabled: true },
      steering: { mode: 'priority-based' }
    }),
    check: cpeConfigProblems
  })
  assert.equal(c.convert.port, 5124)
})
