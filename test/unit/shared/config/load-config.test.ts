import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../../../../shared/src/config/load-config.ts'
import { ConfigError } from '../../../../shared/src/errors.ts'
import type { ConfigProblem } from '../../../../shared/src/config/problem.ts'
import { ConfigSchema as ConcSchema, ENV_PREFIX as CONC } from '../../../../concentrator/src/config/config.ts'
import { ConfigSchema as CpeSchema, ENV_PREFIX as CPE } from '../../../../cpe/src/config/config.ts'

const fixture = (name: string): string => fileURLToPath(new URL(`../../../fixtures/config/${name}`, import.meta.url))

/** Run `fn`, expect a ConfigError and return it with its problems. */
function configError (fn: () => unknown): { err: ConfigError, problems: ConfigProblem[] } {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`)
    return { err, problems: err.detail?.['problems'] as ConfigProblem[] }
  }
  assert.fail('expected a ConfigError')
}

/** Defaults of the per-listener keys added with the concentrator daemon (protocol, TFO, v6Only). */
const LISTENER_DEFAULTS = { protocol: 'mptcp', fastOpenQueue: 256, fastOpenNoCookie: false, v6Only: true } as const
test('defaults alone give a complete concentrator configuration', () => {
  const c = loadConfig(ConcSchema)
  assert.equal(c.log.level, 'info')
  assert.deepEqual(c.management.listen, { host: '127.0.0.1', port: 9090 })
  assert.equal(c.management.token, undefined)
  assert.equal(c.mptcp.onUnavailable, 'fail')
  assert.deepEqual(c.listeners, [{ host: '127.0.0.1', port: 1080, mode: 'socks5', ...LISTENER_DEFAULTS }])
  assert.equal(c.limits.handshakeTimeoutMs, 10_000)
  assert.equal(c.limits.convertTimeoutMs, 2_000)
  assert.equal(c.limits.highWaterMark, 32_768)
  assert.equal(c.limits.drainTimeoutMs, 25_000)
})

test('the file overrides defaults and keeps the defaults it does not mention', () => {
  const c = loadConfig(ConcSchema, { file: fixture('concentrator.yaml') })
  assert.equal(c.log.level, 'warn')
  assert.deepEqual(c.management.listen, { host: '127.0.0.1', port: 9190 })
  assert.equal(c.listeners.length, 2)
  assert.equal(c.listeners[1]?.mode, 'convert')
  assert.equal(c.limits.idleTimeoutMs, 600_000)
  assert.equal(c.limits.connectTimeoutMs, 10_000)
})

test('precedence: defaults < file < env < argv, at every layer', () => {
  const file = fixture('concentrator.yaml')
  const env = { [`${CONC}LOG__LEVEL`]: 'error', [`${CONC}LIMITS__IDLE_TIMEOUT_MS`]: '1000' }
  // file beats default
  assert.equal(loadConfig(ConcSchema, { file }).limits.idleTimeoutMs, 600_000)
  // env beats file
  const e = loadConfig(ConcSchema, { file, env, envPrefix: CONC })
  assert.equal(e.log.level, 'error')
  assert.equal(e.limits.idleTimeoutMs, 1000)
  // --set beats env; --log-level beats --set
  const a = loadConfig(ConcSchema, {
    file, env, envPrefix: CONC, argv: { set: ['limits.idleTimeoutMs=2000', 'log.level=debug'] }
  })
  assert.equal(a.limits.idleTimeoutMs, 2000)
  assert.equal(a.log.level, 'debug')
  assert.equal(loadConfig(ConcSchema, { env, envPrefix: CONC, argv: { set: ['log.level=debug'], logLevel: 'trace' } }).log.level, 'trace')
  // later --set wins over an earlier one
  assert.equal(loadConfig(ConcSchema, { argv: { set: ['limits.idleTimeoutMs=5', 'limits.idleTimeoutMs=6'] } }).limits.idleTimeoutMs, 6)
})

test('env values are YAML scalars: numbers, booleans-as-errors, nested keys, array indices', () => {
  const c = loadConfig(ConcSchema, {
    envPrefix: CONC,
    env: {
      [`${CONC}MANAGEMENT__LISTEN__PORT`]: '9999',
      [`${CONC}MPTCP__ON_UNAVAILABLE`]: 'fallback',
      [`${CONC}LIMITS__PERSOURCEMAXCONNECTIONS`]: '64',
      [`${CONC}LISTENERS__0__PORT`]: '1081',
      OTHER_VAR: 'ignored',
      HYBRID_CPE_LOG__LEVEL: 'nonsense'
    }
  })
  assert.equal(c.management.listen.port, 9999)
  assert.equal(c.mptcp.onUnavailable, 'fallback')
  assert.equal(c.limits.perSourceMaxConnections, 64)
  assert.deepEqual(c.listeners[0], { host: '127.0.0.1', port: 1081, mode: 'socks5', ...LISTENER_DEFAULTS })
  // a boolean where an integer is expected is reported as a type error, with the variable named
  const { err, problems } = configError(() => loadConfig(ConcSchema, { envPrefix: CONC, env: { [`${CONC}LIMITS__MAX_CONNECTIONS`]: 'true' } }))
  assert.equal(err.code, 'HYBRID_ERR_CONFIG_ENV')
  assert.deepEqual(problems,
    [{ path: '/limits/maxConnections', message: 'must be integer', source: 'env', origin: `${CONC}LIMITS__MAX_CONNECTIONS` }])
})

test('string options keep the raw text (a numeric-looking token stays a string)', () => {
  const c = loadConfig(ConcSchema, { envPrefix: CONC, env: { [`${CONC}MANAGEMENT__TOKEN`]: '0123456789012345' } })
  assert.equal(c.management.token, '0123456789012345')
})

test('a whole array can be set from a YAML flow value', () => {
  const c = loadConfig(ConcSchema, { argv: { set: ['listeners=[{host: 192.0.2.9, port: 1234, mode: convert}]'] } })
  assert.deepEqual(c.listeners, [{ host: '192.0.2.9', port: 1234, mode: 'convert', ...LISTENER_DEFAULTS }])
})

test('every problem is reported at once, each with path, file and line', () => {
  const file = fixture('concentrator-invalid.yaml')
  const { err, problems } = configError(() => loadConfig(ConcSchema, { file }))
  assert.equal(err.code, 'HYBRID_ERR_CONFIG_INVALID')
  const summary = problems.map((p) => [p.path, p.message, p.source, p.origin, p.line])
  assert.deepEqual(summary, [
    ['/log/level', 'must be one of: fatal, error, warn, info, debug, trace', 'file', file, 3],
    ['/limits/idleTimeoutMs', 'must be integer', 'file', file, 5],
    ['/limits/idelTimeoutMs', 'unknown key', 'file', file, 6],
    ['/listeners/0/mode', 'is required', 'file', file, 8]
  ])
  for (const p of problems) assert.match(err.message, new RegExp(`${p.path}: ${p.message}`))
})

test('unknown keys are rejected at every level, from every source', () => {
  const { problems } = configError(() => loadConfig(ConcSchema, {
    envPrefix: CONC,
    env: { [`${CONC}LOGG__LEVEL`]: 'info' },
    argv: { set: ['management.listen.hots=::1', 'listeners.0.extra=1'] }
  }))
  assert.deepEqual(problems.map((p) => [p.path, p.message, p.origin]), [
    ['/logg', 'unknown key', `${CONC}LOGG__LEVEL`],
    ['/management/listen/hots', 'unknown key', '--set management.listen.hots'],
    ['/listeners/0/extra', 'unknown key', '--set listeners.0.extra']
  ])
})

test('__proto__ in the file is an unknown key, never a prototype', () => {
  const { problems } = configError(() => loadConfig(ConcSchema, { argv: { set: ['__proto__.polluted=1'] } }))
  assert.equal(problems[0]?.path, '/__proto__')
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined)
})

test('wrong types and out-of-range values name the key', () => {
  const { err, problems } = configError(() => loadConfig(ConcSchema, {
    argv: { set: ['limits.earlyDataMaxBytes=20000', 'management.listen.host=localhost', 'listeners.0.port=x'] }
  }))
  assert.equal(err.code, 'HYBRID_ERR_CONFIG_ARGV')
  assert.deepEqual(problems.map((p) => [p.path, p.message]), [
    ['/management/listen/host', 'must be an IP address literal'],
    ['/listeners/0/port', 'must be integer'],
    ['/limits/earlyDataMaxBytes', 'must be <= 16384']
  ]) // schema order within one source
})

test('YAML syntax errors name file, line and column; no misleading schema errors follow', () => {
  const file = fixture('syntax-error.yaml')
  const { err, problems } = configError(() => loadConfig(ConcSchema, { file }))
  assert.equal(err.code, 'HYBRID_ERR_CONFIG_PARSE')
  assert.ok(problems.length >= 1)
  assert.equal(problems[0]?.origin, file)
  assert.equal(problems[0]?.source, 'file')
  assert.equal(typeof problems[0]?.line, 'number')
  assert.ok((problems[0]?.line ?? 0) >= 3, `line ${String(problems[0]?.line)}`)
  assert.equal(typeof problems[0]?.column, 'number')
  assert.match(err.message, new RegExp(`syntax-error\\.yaml:${String(problems[0]?.line)}:\\d+: \\(root\\): YAML syntax error`))
})

test('a file that is missing or not a mapping is a problem of its own', () => {
  const missing = configError(() => loadConfig(ConcSchema, { file: fixture('does-not-exist.yaml') }))
  assert.equal(missing.err.code, 'HYBRID_ERR_CONFIG_READ')
  assert.match(missing.problems[0]?.message ?? '', /cannot read file: ENOENT/)
  const list = configError(() => loadConfig(ConcSchema, { file: fixture('not-a-mapping.yaml') }))
  assert.equal(list.problems[0]?.message, 'top level must be a mapping of keys')
})

test('readFile: the injected reader supplies the text (same checks, same locations); its errno is a read problem', () => {
  const text = 'log:\n  level: loud\n'
  const seen: string[] = []
  const { problems } = configError(() => loadConfig(ConcSchema, { file: 'mem.yaml', readFile: (f) => { seen.push(f); return text } }))
  assert.deepEqual(seen, ['mem.yaml'])
  assert.deepEqual(problems.map((p) => [p.path, p.source, p.origin, p.line]), [['/log/level', 'file', 'mem.yaml', 2]])
  assert.equal(loadConfig(ConcSchema, { file: 'x.yaml', readFile: () => 'log:\n  level: warn\n' }).log.level, 'warn')
  const enoent = Object.assign(new Error('gone'), { code: 'ENOENT' })
  const missing = configError(() => loadConfig(ConcSchema, { file: 'gone.yaml', readFile: () => { throw enoent } }))
  assert.equal(missing.err.code, 'HYBRID_ERR_CONFIG_READ')
  assert.match(missing.problems[0]?.message ?? '', /cannot read file: ENOENT/)
})

test('bad override syntax is reported with the flag or variable', () => {
  const { problems } = configError(() => loadConfig(ConcSchema, {
    envPrefix: CONC,
    env: { [`${CONC}LOG____LEVEL`]: 'info', [`${CONC}LIMITS__IDLE_TIMEOUT_MS`]: '[1' },
    argv: { set: ['no-equals-sign', '=1'] }
  }))
  assert.deepEqual(problems.map((p) => [p.source, p.origin]), [
    ['env', `${CONC}LIMITS__IDLE_TIMEOUT_MS`],
    ['env', `${CONC}LOG____LEVEL`],
    ['argv', '--set no-equals-sign'],
    ['argv', '--set ']
  ])
})

test('required keys of the CPE are reported without a file; a full file loads', () => {
  const { problems } = configError(() => loadConfig(CpeSchema, {}))
  assert.deepEqual(problems.map((p) => [p.path, p.source]), [['/uplinks', 'default'], ['/concentrator', 'default']])
  const c = loadConfig(CpeSchema, { file: fixture('cpe.yaml'), envPrefix: CPE, env: { [`${CPE}UPLINKS__1__ROLE`]: 'dsl' } })
  assert.equal(c.mode, 'convert')
  assert.equal(c.uplinks[1]?.role, 'dsl')
  assert.equal(c.management.listen.port, 9091)
  assert.equal(c.limits.highWaterMark, 16_384)
  assert.equal(c.convert.replyTimeoutMs, 6_000)
})

test('the result is deep-frozen: mutation throws in strict mode', () => {
  const c = loadConfig(ConcSchema, { file: fixture('concentrator.yaml') })
  assert.ok(Object.isFrozen(c))
  assert.throws(() => { (c.limits as { idleTimeoutMs: number }).idleTimeoutMs = 1 }, TypeError)
  assert.throws(() => { (c.listeners as unknown[]).push({}) }, TypeError)
  assert.throws(() => { (c.listeners[0] as { port: number }).port = 1 }, TypeError)
})

test('loading twice gives equal, independent results (defaults are not shared)', () => {
  const a = loadConfig(ConcSchema)
  const b = loadConfig(ConcSchema, { argv: { set: ['listeners.0.port=2000'] } })
  assert.equal(a.listeners[0]?.port, 1080)
  assert.equal(b.listeners[0]?.port, 2000)
  assert.notEqual(a.listeners, b.listeners)
})

test('limits.perSourceIpv6PrefixLength: default 64, 1-128, a bad value names the key', () => {
  const c = loadConfig(ConcSchema, {})
  assert.equal(c.limits.perSourceIpv6PrefixLength, 64)
  assert.equal(c.limits.unauthenticatedMaxConnections, 0)
  assert.equal(loadConfig(ConcSchema, { argv: { set: ['limits.perSourceIpv6PrefixLength=48'] } }).limits.perSourceIpv6PrefixLength, 48)
  for (const bad of ['0', '129', '64.5']) {
    const { err, problems } = configError(() => loadConfig(ConcSchema, { argv: { set: [`limits.perSourceIpv6PrefixLength=${bad}`] } }))
    assert.equal(err.code, 'HYBRID_ERR_CONFIG_ARGV')
    assert.equal(problems[0]?.path, '/limits/perSourceIpv6PrefixLength', bad)
  }
})

test('a YAML alias inside the node it names is a problem, not a stack overflow (fuzz: config)', () => {
  const file = configError(() => loadConfig(ConcSchema, { file: fixture('cyclic-alias.yaml') }))
  assert.equal(file.err.code, 'HYBRID_ERR_CONFIG_PARSE')
  assert.deepEqual(file.problems.map((p) => [p.path, p.message, p.line]),
    [['/listeners', 'YAML alias refers to a node that contains it (cyclic)', 2]])
  const env = configError(() => loadConfig(ConcSchema, { env: { HYBRID_CONC_LISTENERS: '&a [*a]' }, envPrefix: CONC }))
  assert.equal(env.err.code, 'HYBRID_ERR_CONFIG_ENV')
  assert.equal(env.problems[0]?.message, 'YAML alias refers to a node that contains it (cyclic)')
  const argv = configError(() => loadConfig(CpeSchema, { argv: { set: ['uplinks=&a { x: *a }'] } }))
  assert.deepEqual(argv.problems.filter((p) => p.source === 'argv').map((p) => [p.path, p.message]),
    [['/uplinks', 'YAML alias refers to a node that contains it (cyclic)']])
})

test('an alias before its anchor and an alias flood are YAML problems, not ReferenceErrors (fuzz: config)', () => {
  const early = configError(() => loadConfig(ConcSchema, { file: fixture('alias-before-anchor.yaml') }))
  assert.equal(early.err.code, 'HYBRID_ERR_CONFIG_PARSE')
  assert.match(early.problems[0]?.message ?? '', /^YAML error: Unresolved alias/)
  const flood = configError(() => loadConfig(ConcSchema, { file: fixture('alias-flood.yaml') }))
  assert.equal(flood.err.code, 'HYBRID_ERR_CONFIG_PARSE')
  assert.match(flood.problems[0]?.message ?? '', /^YAML error: Excessive alias count/)
})
