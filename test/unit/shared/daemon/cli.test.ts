import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml } from 'yaml'
import { ExitCode, runDaemonCli, type DaemonCliOptions, type RunningService } from '../../../../shared/src/daemon/cli.ts'
import { ConfigError } from '../../../../shared/src/errors.ts'
import { testTempDir } from '../../../helpers/temp-dir.ts'
import { ConfigSchema, ENV_PREFIX } from '../../../../concentrator/src/config/config.ts'

const fixture = (name: string): string => fileURLToPath(new URL(`../../../fixtures/config/${name}`, import.meta.url))

interface Harness {
  opts: DaemonCliOptions<typeof ConfigSchema>
  out: () => string
  err: () => string
  controller: AbortController
  calls: string[]
}

function harness (argv: string[], start?: DaemonCliOptions<typeof ConfigSchema>['start'], env: Record<string, string> = {}): Harness {
  const out: string[] = []
  const err: string[] = []
  const calls: string[] = []
  const controller = new AbortController()
  const service: RunningService = { stop: async () => { calls.push('stop') } }
  const opts: DaemonCliOptions<typeof ConfigSchema> = {
    name: 'hybrid-concentrator',
    version: '1.2.3',
    schema: ConfigSchema,
    envPrefix: ENV_PREFIX,
    argv,
    env,
    stdout: { write: (s: string) => out.push(s) },
    stderr: { write: (s: string) => err.push(s) },
    signal: controller.signal,
    start: start ?? (async () => { calls.push('start'); return service })
  }
  return { opts, out: () => out.join(''), err: () => err.join(''), controller, calls }
}

test('--help prints usage with every flag and exits 0', async () => {
  const h = harness(['--help'])
  assert.equal(await runDaemonCli(h.opts), ExitCode.Ok)
  for (const flag of ['--config', '--validate', '--print-config', '--log-level', '--set', '--help', '--version']) {
    assert.ok(h.out().includes(flag),
      flag)
  }
  assert.ok(h.out().includes('HYBRID_CONC_LOG__LEVEL'))
})

test('--version prints name and version and exits 0', async () => {
  const h = harness(['-V'])
  assert.equal(await runDaemonCli(h.opts), ExitCode.Ok)
  assert.equal(h.out(), 'hybrid-concentrator 1.2.3\n')
})

test('--validate: "ok" and 0 when valid', async () => {
  const h = harness(['--config', fixture('concentrator.yaml'), '--validate'])
  assert.equal(await runDaemonCli(h.opts), ExitCode.Ok)
  assert.equal(h.out(), 'ok\n')
  assert.deepEqual(h.calls, [])
})

test('--validate: every problem on stderr and 2 when invalid (the same code as a start with that file)', async () => {
  const file = fixture('concentrator-invalid.yaml')
  const h = harness(['--config', file, '--validate'], undefined, { HYBRID_CONC_LIMITS__HIGH_WATER_MARK: '1' })
  assert.equal(await runDaemonCli(h.opts), ExitCode.Config)
  assert.equal(await runDaemonCli(harness(['--config', file], undefined, { HYBRID_CONC_LIMITS__HIGH_WATER_MARK: '1' }).opts), ExitCode.Config)
  assert.equal(h.out(), '')
  const lines = h.err().trim().split('\n')
  assert.match(lines[0] ?? '', /HYBRID_ERR_CONFIG_INVALID: 5 configuration problem/)
  assert.equal(lines.length, 6)
  assert.ok(h.err().includes(`${file}:3:10: /log/level: must be one of`))
  assert.ok(h.err().includes(`${file}:6:18: /limits/idelTimeoutMs: unknown key`))
  assert.ok(h.err().includes('HYBRID_CONC_LIMITS__HIGH_WATER_MARK: /limits/highWaterMark: must be >= 1024'))
})

test('a bad configuration when starting exits 2 and never starts', async () => {
  const h = harness(['--set', 'limits.idleTimeoutMs=soon'])
  assert.equal(await runDaemonCli(h.opts), ExitCode.Config)
  assert.match(h.err(), /--set limits\.idleTimeoutMs: \/limits\/idleTimeoutMs: must be integer/)
  assert.deepEqual(h.calls, [])
})

test('unknown flags and positionals are usage errors: exit 2', async () => {
  for (const argv of [['--bogus'], ['extra'], ['--config']]) {
    const h = harness(argv)
    assert.equal(await runDaemonCli(h.opts), ExitCode.Config, argv.join(' '))
    assert.match(h.err(), /Try --help/)
  }
})

test('--print-rules: printed by a daemon that has rules, refused (exit 2) by one that has none', async () => {
  const none = harness(['-c', fixture('concentrator.yaml'), '--print-rules'])
  assert.equal(await runDaemonCli(none.opts), ExitCode.Config)
  assert.match(none.err(), /--print-rules: this daemon installs no host rules/)
  assert.ok(!none.out().includes('--print-rules'))
  const h = harness(['-c', fixture('concentrator.yaml'), '--print-rules'])
  h.opts.printRules = (c) => `rules for ${c.log.level}\n`
  assert.equal(await runDaemonCli(h.opts), ExitCode.Ok)
  assert.equal(h.out(), 'rules for warn\n') // the fixture's log.level: the daemon's function got the loaded configuration
  assert.deepEqual(h.calls, [])
  const help = harness(['--help'])
  help.opts.printRules = () => ''
  await runDaemonCli(help.opts)
  assert.match(help.out(), /--print-rules/)
})

test('--print-config prints the effective config with secrets redacted', async () => {
  const h = harness(['-c', fixture('concentrator.yaml'), '--print-config', '--log-level', 'debug'], undefined,
    { HYBRID_CONC_LIMITS__DRAIN_TIMEOUT_MS: '1000' })
  assert.equal(await runDaemonCli(h.opts), ExitCode.Ok)
  assert.ok(!h.out().includes('0123456789abcdef-secret'))
  const printed = parseYaml(h.out()) as {
    log: { level: string },
    management: { token: string },
    limits: { drainTimeoutMs: number, idleTimeoutMs: number }
  }
  assert.equal(printed.management.token, '[redacted]')
  assert.equal(printed.log.level, 'debug')
  assert.equal(printed.limits.drainTimeoutMs, 1000)
  assert.equal(printed.limits.idleTimeoutMs, 600000)
})

test('start: logs the redacted config, runs until the signal, stops, exits 0', async () => {
  const h = harness(['-c', fixture('concentrator.yaml'), '--log-level', 'info'])
  const running = runDaemonCli(h.opts)
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(h.calls, ['start'])
  h.controller.abort()
  assert.equal(await running, ExitCode.Ok)
  assert.deepEqual(h.calls, ['start', 'stop'])
  assert.ok(!h.out().includes('0123456789abcdef-secret'), 'token leaked into the log')
  const lines = h.out().trim().split('\n').map((l) => JSON.parse(l) as { msg: string, name: string, config?: { management: { token: string } } })
  assert.deepEqual(lines.map((l) => l.msg), ['starting', 'started', 'stopping', 'stopped'])
  assert.equal(lines[0]?.name, 'hybrid-concentrator')
  assert.equal(lines[0]?.config?.management.token, '[redacted]')
})

test('start receives the frozen config and the logger at the configured level', async () => {
  let seen: unknown
  const h = harness(['--set', 'log.level=warn'], async (config, log) => {
    seen = { frozen: Object.isFrozen(config), level: log.level }
    return { stop: async () => {} }
  })
  h.controller.abort()
  assert.equal(await runDaemonCli(h.opts), ExitCode.Ok)
  assert.deepEqual(seen, { frozen: true, level: 'warn' })
})

test('a failing start exits 1 (2 for a ConfigError); a failing stop exits 1', async () => {
  const boom = harness([], async () => { throw new Error('bind failed') })
  assert.equal(await runDaemonCli(boom.opts), ExitCode.Runtime)
  assert.match(boom.out(), /start failed/)
  assert.equal(boom.err(), 'hybrid-concentrator: start failed: bind failed\n', 'one human line on stderr as well')
  const cfg = harness([], async () => { throw new ConfigError('HYBRID_ERR_CONFIG_INVALID', 'late check') })
  assert.equal(await runDaemonCli(cfg.opts), ExitCode.Config)
  assert.equal(cfg.err(), 'hybrid-concentrator: start failed: HYBRID_ERR_CONFIG_INVALID: late check\n')
  const stop = harness([], async () => ({ stop: async () => { throw new Error('stuck') } }))
  stop.controller.abort()
  assert.equal(await runDaemonCli(stop.opts), ExitCode.Runtime)
  assert.match(stop.out(), /stop failed/)
})

test('reload: the registered trigger re-reads the file and hands the new config to service.reload', async () => {
  const { writeFileSync } = await import('node:fs')
  const { join } = await import('node:path')
  const file = join(testTempDir('hat-conc-cli-'), 'c.yaml')
  writeFileSync(file, 'log:\n  level: warn\n')
  let trigger: (() => void) | undefined
  let unregistered = false
  const reloaded: string[] = []
  const failed: unknown[] = []
  let control: { reload: () => Promise<void> } | undefined
  const h = harness(['--config', file], async (_config, _log, ctl) => {
    control = ctl
    return {
      stop: async () => {},
      reload: async (next) => { reloaded.push(next.log.level) },
      reloadFailed: (err) => { failed.push(err) }
    }
  })
  h.opts.logDestination = { write: () => {} }
  let onRegistered = (): void => {}
  const registered = new Promise<void>((resolve) => { onRegistered = resolve })
  h.opts.onReloadRequest = (handler) => { trigger = handler; onRegistered(); return () => { unregistered = true } }
  const running = runDaemonCli(h.opts)
  await registered
  assert.ok(trigger !== undefined)
  writeFileSync(file, 'log:\n  level: debug\n')
  trigger?.()
  await control?.reload() // serialised behind the triggered one
  assert.deepEqual(reloaded, ['debug', 'debug'])
  writeFileSync(file, 'log:\n  level: loud\n')
  await assert.rejects(control?.reload() ?? Promise.resolve(), ConfigError)
  assert.equal(failed.length, 1, 'refused before reaching the service')
  assert.deepEqual(reloaded, ['debug', 'debug'])
  h.controller.abort()
  assert.equal(await running, ExitCode.Ok)
  assert.equal(unregistered, true)
})
