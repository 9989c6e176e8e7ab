/**
 * Signals during start (issue 18): the built concentrator in its own namespace (`hat-sg-`), with a
 * kernel profile that changes a sysctl of the namespace. SIGTERM as soon as it logs that the
 * profile is applied (start is half-way: listeners and management still to come), and a second
 * SIGTERM 30 ms later:
 * the daemon exits 0 (it is not killed by the second signal), the sysctl is back to its original
 * value and no crash journal is left. Before, the first SIGTERM was only looked at after start and
 * the second one killed the process without cleanup.
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { existsSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { stringify } from 'yaml'
import { createNamespace, e2eSkipReason, removeNamespaces } from '../../lab/netns.ts'
import { testTempDir } from '../helpers/temp-dir.ts'

const PREFIX = 'hat-sg-'
const skip = e2eSkipReason()
const MAIN = join(process.cwd(), 'dist', 'concentrator', 'src', 'main.js')
const SYSCTL = 'net.mptcp.stale_loss_cnt'

after(async () => { if (skip === undefined) await removeNamespaces(PREFIX) })

test('SIGTERM during start (twice): exit 0, the kernel profile undone, no journal left', { skip, timeout: 60_000 }, async (t) => {
  const ns = await createNamespace(`${PREFIX}conc`)
  // No dummy module on this kernel: a veth pair inside the namespace carries the address.
  await ns.exec(['ip', 'link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1'])
  await ns.exec(['ip', 'addr', 'add', '192.0.2.1/24', 'dev', 'd0'])
  await ns.exec(['ip', 'link', 'set', 'd0', 'up'])
  await ns.exec(['ip', 'link', 'set', 'd1', 'up'])
  const original = (await ns.exec(['sysctl', '-n', SYSCTL])).trim()
  const dir = testTempDir('hat-sg-')
  const file = join(dir, 'concentrator.yaml')
  writeFileSync(file, stringify({
    log: { level: 'debug' },
    stateDir: join(dir, 'state'),
    listeners: [{ host: '192.0.2.1', port: 1080, mode: 'socks5' }],
    kernel: { staleLossCnt: Number(original) + 3 }
  }))
  const child = ns.spawn([process.execPath, MAIN, '--config', file])
  t.after(() => { child.kill('SIGKILL') })
  const lines: string[] = []
  let err = ''
  child.stderr?.on('data', (d: Buffer) => { err += String(d) })
  const rl = createInterface({ input: child.stdout as NodeJS.ReadableStream })
  const starting = new Promise<void>((resolve) => {
    rl.on('line', (l) => {
      lines.push(l)
      // Start has changed the namespace (kernel profile applied); listeners, management still to come.
      if (l.includes(`kernel setting ${SYSCTL}=`)) resolve()
    })
  })
  await starting
  child.kill('SIGTERM')
  setTimeout(() => { child.kill('SIGTERM') }, 30)
  const [code, signal] = await once(child, 'exit') as [number | null, NodeJS.Signals | null]
  const log = lines.join('\n')
  assert.equal(signal, null, `killed by ${String(signal)} (the second SIGTERM must not kill it)\n${log}\n${err}`)
  assert.equal(code, 0, `${log}\n${err}`)
  assert.equal((await ns.exec(['sysctl', '-n', SYSCTL])).trim(), original, 'the kernel profile is undone')
  const state = join(dir, 'state')
  assert.deepEqual(existsSync(state) ? readdirSync(state) : [], [], 'no crash journal left')
  assert.match(log, /stop requested during start: undoing what start did/)
})
