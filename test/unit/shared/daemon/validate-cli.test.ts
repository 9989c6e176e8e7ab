/**
 * One validation path: the real `--validate` of both daemons (their main.ts, as bin/ runs it from
 * dist/) refuses what start refuses, with the same exit code and message; and a reload through
 * runDaemonCli uses the same loader, cross-field checks included.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify } from 'yaml'
import { ExitCode, runDaemonCli, type RunningService } from '../../../../shared/src/daemon/cli.ts'
import { isHybridError } from '../../../../shared/src/errors.ts'
import { ConfigSchema as ConcSchema, ENV_PREFIX as CONC_PREFIX, type ConcentratorConfig } from '../../../../concentrator/src/config/config.ts'
import { concentratorConfigProblems } from '../../../../concentrator/src/config/check.ts'
import { testTempDir } from '../../../helpers/temp-dir.ts'

const root = fileURLToPath(new URL('../../../../', import.meta.url))
const dir = testTempDir('validate-cli-')
const write = (name: string, data: unknown): string => {
  const file = join(dir, name)
  writeFileSync(file, stringify(data))
  return file
}

function runMain (daemon: 'cpe' | 'concentrator', args: string[]): { status: number | null, stdout: string, stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, daemon, 'src', 'main.ts'), ...args],
    { cwd: root, encoding: 'utf8', timeout: 30_000, env: { PATH: process.env['PATH'] ?? '' } })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

const cpeBase = {
  uplinks: [{ name: 'dsl', interface: 'eth1', role: 'dsl' }, { name: 'lte', interface: 'wwan0', role: 'lte' }],
  concentrator: { host: '198.51.100.7', port: 1080 }
}

test('hybrid-cpe --validate: mode convert without convert.port exits 2 naming the code, file and key (it used to print ok)', () => {
  const file = write('cpe-convert.yaml', { ...cpeBase, mode: 'convert' })
  const r = runMain('cpe', ['--config', file, '--validate'])
  assert.equal(r.status, ExitCode.Config, r.stderr)
  assert.equal(r.stdout, '')
  assert.match(r.stderr, /^hybrid-cpe: HYBRID_ERR_CONFIG_INVALID: 1 configuration problem\(s\):\n/)
  assert.match(r.stderr, /cpe-convert\.yaml:\d+:\d+: \/convert\/port: required in mode convert/)
  // A start with that file is refused by the same loader, before anything touches the system.
  const start = runMain('cpe', ['--config', file])
  assert.equal(start.status, ExitCode.Config, start.stderr)
  assert.equal(start.stderr, r.stderr)
  const ok = runMain('cpe', ['--config', file, '--validate', '--set', 'convert.port=5124'])
  assert.equal(ok.status, ExitCode.Ok, ok.stderr)
  assert.equal(ok.stdout, 'ok\n')
})

test('hybrid-concentrator --validate: an unreadable credentials file and a bad prefix, both reported, exit 2', () => {
  const file = write('conc.yaml', {
    listeners: [{ host: '192.0.2.1', port: 1080, mode: 'socks5' }],
    auth: { trustedPrefixes: ['10.0.0.0/33'], credentialsFile: join(dir, 'missing.txt') }
  })
  const r = runMain('concentrator', ['--config', file, '--validate'])
  assert.equal(r.status, ExitCode.Config, r.stderr)
  assert.match(r.stderr, /^hybrid-concentrator: HYBRID_ERR_CONFIG_READ: 2 configuration problem\(s\):\n/)
  assert.match(r.stderr, /conc\.yaml:\d+:\d+: \/auth\/trustedPrefixes\/0: invalid prefix "10\.0\.0\.0\/33"/)
  assert.match(r.stderr, /conc\.yaml:\d+:\d+: \/auth\/credentialsFile: cannot read .*missing\.txt: ENOENT/)
})

test('reload (SIGHUP, POST /api/v1/reload) goes through the same loader: a config the check refuses is refused, the running one stays', async () => {
  const good = { listeners: [{ host: '192.0.2.1', port: 1080, mode: 'socks5' }], log: { level: 'warn' } }
  const file = write('conc-reload.yaml', good)
  const controller = new AbortController()
  const reloaded: ConcentratorConfig[] = []
  const failed: unknown[] = []
  let reload: (() => Promise<void>) | undefined
  const done = runDaemonCli({
    name: 'hybrid-concentrator',
    version: '0',
    schema: ConcSchema,
    envPrefix: CONC_PREFIX,
    check: concentratorConfigProblems,
    argv: ['--config', file],
    env: {},
    stdout: { write: () => true },
    stderr: { write: () => true },
    logDestination: { write: () => true },
    signal: controller.signal,
    start: async (_config, _log, control) => {
      reload = control.reload
      const service: RunningService<ConcentratorConfig> = {
        stop: async () => {},
        reload: async (next) => { reloaded.push(next) },
        reloadFailed: (err) => { failed.push(err) }
      }
      return service
    }
  })
  await new Promise((resolve) => setImmediate(resolve))
  assert.ok(reload !== undefined)
  write('conc-reload.yaml', { ...good, kernel: { rtoMaxMs: 5000 } })
  await assert.rejects(reload(),
    (err: unknown) => isHybridError(err) && err.code === 'HYBRID_ERR_CONFIG_INVALID' && /\/kernel\/tcpRetries2/.test(err.message))
  assert.equal(reloaded.length, 0)
  assert.equal(failed.length, 1)
  write('conc-reload.yaml', { ...good, kernel: { rtoMaxMs: 5000, tcpRetries2: 30 } })
  await reload()
  assert.equal(reloaded[0]?.kernel.tcpRetries2, 30)
  controller.abort()
  assert.equal(await done, ExitCode.Ok)
})
