/**
 * The concentrator's kernel profile (`kernel.*`, docs/failover.md "Concentrator kernel profile")
 * against the real kernel: the built daemon runs in a namespace of its own (hat-kp-…, loopback
 * only) whose sysctls start from non-default values; the profile is applied at start, shown in
 * /api/v1/status, and the previous values are written back at stop, after a start that fails
 * half-way (a listener address the namespace does not have), and never touched when the profile is
 * refused (rtoMaxMs 1000 without tcpRetries2). The host namespace's values stay as they were.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createNamespace, e2eSkipReason, removeNamespace, type Netns } from '../../lab/netns.ts'
import { startDaemon } from '../../lab/daemons.ts'
import { normaliseSysctl } from '../../shared/src/sys/sysctl-profile.ts'

const skip = e2eSkipReason() ?? (hasRtoMax() ? undefined : 'kernel without net.ipv4.tcp_rto_max_ms (Linux >= 6.15)')
const NS = `hat-kp-${process.pid % 100_000}`
const KEYS = ['net.mptcp.stale_loss_cnt', 'net.ipv4.tcp_retries2', 'net.ipv4.tcp_rto_max_ms', 'net.ipv4.tcp_wmem'] as const
/** Start values in the namespace: not the kernel defaults, so a restore to "default" would show. */
const START: Record<string, string> = {
  'net.mptcp.stale_loss_cnt': '3',
  'net.ipv4.tcp_retries2': '14',
  'net.ipv4.tcp_rto_max_ms': '110000',
  'net.ipv4.tcp_wmem': '4096 32768 3145728'
}
const PROFILE = { staleLossCnt: 1, rtoMaxMs: 1000, tcpRetries2: 60, tcpWmemMax: 1_048_576 }
/** Multi-value sysctls (tcp_wmem) print with tabs. */
const fields = normaliseSysctl

function hasRtoMax (): boolean {
  try { readFileSync('/proc/sys/net/ipv4/tcp_rto_max_ms'); return true } catch { return false }
}

const hostValues = (): string[] => KEYS.map((k) => fields(readFileSync(`/proc/sys/${k.replaceAll('.', '/')}`, 'utf8')))

function config (kernel: Record<string, number>, listenHost = '127.0.0.1'): Record<string, unknown> {
  return {
    log: { level: 'info' },
    management: { listen: { host: '127.0.0.1', port: 9090 } },
    mptcp: { onUnavailable: 'fail' },
    listeners: [{ host: listenHost, port: 1080, mode: 'socks5' }],
    kernel
  }
}

describe('concentrator kernel profile (real sysctls in a namespace)', { skip }, () => {
  let ns: Netns
  let dir: string
  let host: string[]
  const values = async (): Promise<Record<string, string>> => {
    const out: Record<string, string> = {}
    for (const k of KEYS) out[k] = fields(await ns.exec(['sysctl', '-n', k]))
    return out
  }

  before(async () => {
    host = hostValues()
    ns = await createNamespace(NS)
    for (const [k, v] of Object.entries(START)) await ns.exec(['sysctl', '-qw', `${k}=${v}`])
    dir = mkdtempSync(join(tmpdir(), 'hck-kp-'))
  })
  after(async () => {
    await removeNamespace(NS)
    rmSync(dir, { recursive: true, force: true })
  })

  test('applied at start, shown in the status, restored at stop', async () => {
    assert.deepEqual(await values(), START)
    const conc = await startDaemon({ daemon: 'concentrator', config: config(PROFILE), ns, spawn: (argv) => ns.spawn(argv), dir: join(dir, 'ok') })
    let stopped = false
    try {
      // tcp_wmem: only the max field is the profile's, min and default are what the namespace had
      assert.deepEqual(await values(), {
        'net.mptcp.stale_loss_cnt': '1',
        'net.ipv4.tcp_retries2': '60',
        'net.ipv4.tcp_rto_max_ms': '1000',
        'net.ipv4.tcp_wmem': '4096 32768 1048576'
      })
      const status = JSON.parse((await conc.get('/api/v1/status')).body) as { kernel: Record<string, { value: string, before: string }> }
      assert.deepEqual(status.kernel['net.ipv4.tcp_rto_max_ms'], { value: '1000', before: '110000' })
      assert.match(conc.logTail(), /kernel setting net\.ipv4\.tcp_rto_max_ms=1000 \(was 110000; restored at stop\)/)
      assert.deepEqual(status.kernel['net.ipv4.tcp_wmem'], { value: '4096 32768 1048576', before: '4096 32768 3145728' })
      assert.equal(await conc.stop(5000), 0)
      stopped = true
      assert.deepEqual(await values(), START)
    } finally {
      if (!stopped) await conc.stop(2000)
    }
    assert.deepEqual(hostValues(), host, 'the host namespace is untouched')
  })

  test('a start that fails after the profile was applied restores it', async () => {
    // 198.51.100.1 is not an address of the namespace: the listener bind fails after the sysctls were set.
    await assert.rejects(startDaemon({
      daemon: 'concentrator',
      config: config(PROFILE, '198.51.100.1'),
      ns,
      spawn: (argv) => ns.spawn(argv),
      dir: join(dir, 'bind'),
      readyTimeoutMs: 10_000
    }), /exited with/)
    assert.match(readFileSync(join(dir, 'bind', 'concentrator.log'), 'utf8'), /kernel setting net\.mptcp\.stale_loss_cnt=1/)
    assert.deepEqual(await values(), START)
  })

  test('rtoMaxMs below 120000 without tcpRetries2: refused with a config error naming the key, nothing changed', async () => {
    await assert.rejects(startDaemon({
      daemon: 'concentrator',
      config: config({ rtoMaxMs: 1000 }),
      ns,
      spawn: (argv) => ns.spawn(argv),
      dir: join(dir, 'refused'),
      readyTimeoutMs: 10_000
    }), /exited with 2/)
    const log = readFileSync(join(dir, 'refused', 'concentrator.log'), 'utf8')
    assert.match(log, /HYBRID_ERR_CONFIG_INVALID/)
    // Refused by the loader's cross-field check (concentrator/src/config/check.ts), before start: key and file named.
    assert.match(log, /concentrator\.yaml:\d+:\d+: \/kernel\/tcpRetries2: required with \/kernel\/rtoMaxMs below 120000/)
    assert.doesNotMatch(log, /kernel setting/)
    assert.deepEqual(await values(), START)
  })
})
