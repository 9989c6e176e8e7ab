/**
 * The supervisor of `workers` > 1 (concentrator/src/workers/supervisor.ts) with fake worker
 * processes (no fork, no sockets but the management API on an ephemeral loopback port): start waits
 * for every worker, a worker that dies during start fails it, an unasked exit is restarted with
 * back-off and counted, stop asks every worker and waits for all of them, reload goes to every
 * worker and a changed `workers` is refused.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { loadConfig } from '../../../../shared/src/config/load-config.ts'
import { createLogger } from '../../../../shared/src/log.ts'
import { ConfigSchema, type ConcentratorConfig } from '../../../../concentrator/src/config/config.ts'
import { createSupervisor } from '../../../../concentrator/src/workers/supervisor.ts'
import type { FromWorker, ToWorker, WorkerChild } from '../../../../concentrator/src/workers/ipc.ts'
import { testTempDir } from '../../../helpers/temp-dir.ts'

const dir = testTempDir('conc-supervisor-')
let n = 0
function config (extra: Record<string, unknown> = {}): ConcentratorConfig {
  const file = join(dir, `c-${++n}.yaml`)
  writeFileSync(file, stringify({ workers: 2, stateDir: join(dir, `state-${n}`), listeners: [{ host: '192.0.2.1', port: 1080, mode: 'socks5' }], ...extra }))
  const c = loadConfig(ConfigSchema, { file })
  return { ...c, management: { ...c.management, listen: { host: '127.0.0.1', port: 0 } } }
}

class FakeWorker extends EventEmitter {
  static nextPid = 1000
  readonly pid = FakeWorker.nextPid++
  readonly sent: ToWorker[] = []
  exited = false
  readonly index: number
  constructor (index: number, autoReady: boolean) {
    super()
    this.index = index
    if (autoReady) setImmediate(() => { this.emitMessage({ t: 'ready', index, pid: this.pid }) })
  }

  emitMessage (m: FromWorker): void { this.emit('message', m) }
  send (m: ToWorker): boolean {
    this.sent.push(m)
    if (m.t === 'stop') setImmediate(() => { this.exit(0) })
    if (m.t === 'call') setImmediate(() => { this.emitMessage({ t: 'reply', id: m.id, ok: true, value: null }) })
    return true
  }

  kill (): boolean { this.exit(null, 'SIGKILL'); return true }
  exit (code: number | null, signal: NodeJS.Signals | null = null): void {
    if (this.exited) return
    this.exited = true
    this.emit('exit', code, signal)
  }
}

function harness (c: ConcentratorConfig, opts: { autoReady?: (index: number, spawnNo: number) => boolean } = {}) {
  const forks: FakeWorker[] = []
  const sup = createSupervisor(c, {
    log: createLogger({ level: 'silent', name: 'test' }),
    version: '0.0.0',
    commit: 'test',
    pid: 1,
    requestReload: async () => {},
    restartBaseMs: 20,
    fork: (index) => {
      const w = new FakeWorker(index, opts.autoReady?.(index, forks.length) ?? true)
      forks.push(w)
      return w as unknown as WorkerChild
    }
  })
  return { sup, forks }
}

const until = async (what: string, check: () => boolean, ms = 3000): Promise<void> => {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

test('start waits for every worker; an unasked exit is restarted after a back-off and counted; stop waits for all', async () => {
  const { sup, forks } = harness(config())
  await sup.start()
  assert.equal(forks.length, 2)
  assert.equal(sup.ready(), true)
  assert.deepEqual(sup.status().workers.map((w) => [w.index, w.pid, w.ready]), [[0, forks[0]!.pid, true], [1, forks[1]!.pid, true]])
  forks[1]!.exit(1)
  assert.equal(sup.ready(), false, 'not ready while a worker is down')
  assert.equal(sup.status().workers[1]?.pid, null)
  await until('worker 1 forked again', () => forks.length === 3)
  await until('ready again', () => sup.ready())
  assert.equal(forks[2]!.index, 1)
  assert.equal(sup.status().workers[1]?.restarts, 1)
  assert.equal(sup.status().workers[0]?.restarts, 0)
  await sup.stop()
  assert.ok([forks[0], forks[2]].every((w) => w!.exited && w!.sent.some((m) => m.t === 'stop')))
  assert.equal(forks.length, 3, 'no restart while stopping')
  assert.equal(sup.ready(), false)
})

test('a worker that exits before it is ready fails the start; the others are stopped', async () => {
  const { sup, forks } = harness(config(), { autoReady: (index) => index === 0 })
  const started = sup.start()
  await until('forked', () => forks.length === 2)
  forks[1]!.exit(1)
  await assert.rejects(started, /worker 1 exited during start/)
  assert.ok(forks[0]!.exited, 'the ready worker was stopped')
})

test('reload: every worker gets the configuration; a changed workers count is refused before any is asked', async () => {
  const c = config()
  const { sup, forks } = harness(c)
  await sup.start()
  await sup.reload({ ...c, limits: { ...c.limits, idleTimeoutMs: 1234 } })
  for (const w of forks) {
    const call = w.sent.find((m) => m.t === 'call' && m.call.kind === 'reload')
    assert.ok(call !== undefined && call.t === 'call' && call.call.kind === 'reload' && call.call.config.limits.idleTimeoutMs === 1234)
  }
  const before = forks.map((w) => w.sent.length)
  await assert.rejects(sup.reload({ ...c, workers: 3 }), /workers: changed; this key needs a restart/)
  assert.deepEqual(forks.map((w) => w.sent.length), before)
  await sup.stop()
})
