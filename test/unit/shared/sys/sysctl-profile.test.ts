import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { CommandRunner } from '../../../../shared/src/sys/command.ts'
import { HybridError } from '../../../../shared/src/errors.ts'
import {
  resolveSetting, restoreList, sameSysctlValue, SysctlProfile, sysctlReadArgv, sysctlWriteArgv, tcpProfileSettings,
  withTcpMemMax
} from '../../../../shared/src/sys/sysctl-profile.ts'

test('tcpProfileSettings: unset keys are left alone', () => {
  assert.deepEqual(tcpProfileSettings({}, 'kernel'), [])
  assert.deepEqual(tcpProfileSettings({ staleLossCnt: 2 }, 'kernel'), [{ key: 'net.mptcp.stale_loss_cnt', value: '2' }])
})

test('tcpProfileSettings: order stale_loss_cnt, tcp_retries2, tcp_rto_max_ms (retries before the small cap)', () => {
  assert.deepEqual(tcpProfileSettings({ staleLossCnt: 1, rtoMaxMs: 1000, tcpRetries2: 60 }, 'kernel'), [
    { key: 'net.mptcp.stale_loss_cnt', value: '1' },
    { key: 'net.ipv4.tcp_retries2', value: '60' },
    { key: 'net.ipv4.tcp_rto_max_ms', value: '1000' }
  ])
})

test('tcpProfileSettings: rtoMaxMs below 120000 without tcpRetries2 is a config error naming the key of the section', () => {
  assert.throws(() => tcpProfileSettings({ rtoMaxMs: 1000 }, 'kernel'), (err: unknown) => {
    assert.ok(err instanceof HybridError)
    assert.equal(err.code, 'HYBRID_ERR_CONFIG_INVALID')
    assert.equal(err.detail?.['key'], 'kernel.tcpRetries2')
    assert.match(err.message, /^kernel\.tcpRetries2: required with kernel\.rtoMaxMs below 120000/)
    return true
  })
  assert.throws(() => tcpProfileSettings({ rtoMaxMs: 119_999 }, 'failover.kernel'),
    { code: 'HYBRID_ERR_CONFIG_INVALID', message: /^failover\.kernel\.tcpRetries2/ })
  // the kernel default cap, or a cap with retries, is fine
  assert.equal(tcpProfileSettings({ rtoMaxMs: 120_000 }, 'kernel').length, 1)
  assert.equal(tcpProfileSettings({ tcpRetries2: 30 }, 'kernel').length, 1)
})

test('withTcpMemMax: replaces the max field, keeps min and default, clamps them to the new max', () => {
  assert.equal(withTcpMemMax('4096\t16384\t4194304', 1_048_576), '4096 16384 1048576')
  assert.equal(withTcpMemMax(' 4096 16384 4194304\n', 8_388_608), '4096 16384 8388608')
  assert.equal(withTcpMemMax('131072 262144 4194304', 65_536), '65536 65536 65536')
  for (const bad of ['', '4096 16384', '4096 16384 4194304 1', 'a b c', '-1 2 3']) {
    assert.throws(() => withTcpMemMax(bad, 1_048_576), { code: 'HYBRID_ERR_CMD_OUTPUT', message: /^net\.ipv4\.tcp_wmem: expected "min default max"/ })
  }
})

test('tcpProfileSettings: tcpWmemMax is a derived tcp_wmem setting, last', () => {
  const s = tcpProfileSettings({ staleLossCnt: 1, tcpWmemMax: 1_048_576 }, 'kernel')
  assert.deepEqual(s.map((x) => x.key), ['net.mptcp.stale_loss_cnt', 'net.ipv4.tcp_wmem'])
  assert.equal(resolveSetting(s[1]!, '4096\t16384\t4194304'), '4096 16384 1048576')
  assert.equal(resolveSetting(s[0]!, 'anything'), '1')
})

test('sameSysctlValue: field-wise, whitespace-insensitive', () => {
  assert.ok(sameSysctlValue('4096\t16384\t4194304\n', '4096 16384 4194304'))
  assert.ok(!sameSysctlValue('4096 16384 4194304', '4096 16384 1048576'))
})

test('restoreList: only changed settings, in reverse order', () => {
  assert.deepEqual(restoreList([
    { key: 'a', before: '4', after: '1' },
    { key: 'b', before: '15', after: '15' },
    { key: 'c', before: '120000', after: '1000' }
  ]), [{ key: 'c', value: '120000' }, { key: 'a', value: '4' }])
})

test('argv: sysctl -n to read, sysctl -qw key=value to write', () => {
  assert.deepEqual(sysctlReadArgv('net.mptcp.stale_loss_cnt'), ['sysctl', '-n', 'net.mptcp.stale_loss_cnt'])
  assert.deepEqual(sysctlWriteArgv({ key: 'net.ipv4.tcp_retries2', value: '60' }), ['sysctl', '-qw', 'net.ipv4.tcp_retries2=60'])
})

/** A fake sysctl over a map; records every command; `failWrite` makes writes of that key fail. */
function fakeSysctl (values: Record<string, string>, failWrite?: string): { run: CommandRunner, calls: string[] } {
  const calls: string[] = []
  const run: CommandRunner = async (argv) => {
    calls.push(argv.join(' '))
    if (argv[1] === '-n') {
      const v = values[argv[2] ?? '']
      if (v === undefined) throw new HybridError('HYBRID_ERR_CMD_FAILED', `no such key ${String(argv[2])}`)
      return `${v}\n`
    }
    const [key = '', value = ''] = (argv[2] ?? '').split('=')
    if (key === failWrite) throw new HybridError('HYBRID_ERR_CMD_FAILED', `cannot write ${key}`)
    values[key] = value
    return ''
  }
  return { run, calls }
}

const PROFILE = tcpProfileSettings({ staleLossCnt: 1, rtoMaxMs: 1000, tcpRetries2: 60 }, 'kernel')

test('SysctlProfile: apply sets what differs, restore writes the previous values back in reverse', async () => {
  const values = { 'net.mptcp.stale_loss_cnt': '4', 'net.ipv4.tcp_retries2': '60', 'net.ipv4.tcp_rto_max_ms': '120000' }
  const { run, calls } = fakeSysctl(values)
  const changes: string[] = []
  const p = new SysctlProfile({ run, onChange: (c) => { changes.push(`${c.phase} ${c.key} ${c.from}->${c.to}`) } })
  await p.apply(PROFILE)
  assert.deepEqual(values, { 'net.mptcp.stale_loss_cnt': '1', 'net.ipv4.tcp_retries2': '60', 'net.ipv4.tcp_rto_max_ms': '1000' })
  assert.ok(!calls.includes('sysctl -qw net.ipv4.tcp_retries2=60'), 'an equal value is not written')
  assert.equal(p.saved.length, 3)
  calls.length = 0
  await p.restore()
  assert.deepEqual(calls, ['sysctl -qw net.ipv4.tcp_rto_max_ms=120000', 'sysctl -qw net.mptcp.stale_loss_cnt=4'])
  assert.deepEqual(values, { 'net.mptcp.stale_loss_cnt': '4', 'net.ipv4.tcp_retries2': '60', 'net.ipv4.tcp_rto_max_ms': '120000' })
  assert.deepEqual(changes, [
    'apply net.mptcp.stale_loss_cnt 4->1', 'apply net.ipv4.tcp_rto_max_ms 120000->1000',
    'restore net.ipv4.tcp_rto_max_ms 1000->120000', 'restore net.mptcp.stale_loss_cnt 1->4'
  ])
  calls.length = 0
  await p.restore()
  assert.deepEqual(calls, [], 'restore is idempotent')
})

test('SysctlProfile: tcp_wmem max set from the value read (tabs), written back as read at stop; equal max writes nothing', async () => {
  const values: Record<string, string> = { 'net.ipv4.tcp_wmem': '4096\t16384\t4194304' }
  const { run, calls } = fakeSysctl(values)
  const p = new SysctlProfile({ run })
  await p.apply(tcpProfileSettings({ tcpWmemMax: 1_048_576 }, 'kernel'))
  assert.equal(values['net.ipv4.tcp_wmem'], '4096 16384 1048576')
  assert.deepEqual(p.saved, [{ key: 'net.ipv4.tcp_wmem', before: '4096 16384 4194304', after: '4096 16384 1048576' }])
  calls.length = 0
  await p.restore()
  assert.deepEqual(calls, ['sysctl -qw net.ipv4.tcp_wmem=4096 16384 4194304'])
  values['net.ipv4.tcp_wmem'] = '4096\t16384\t1048576'
  calls.length = 0
  await new SysctlProfile({ run }).apply(tcpProfileSettings({ tcpWmemMax: 1_048_576 }, 'kernel'))
  assert.deepEqual(calls, ['sysctl -n net.ipv4.tcp_wmem'], 'already at the max: read only')
})

test('SysctlProfile: unreadable tcp_wmem fails the apply with HYBRID_ERR_CMD_OUTPUT and restores what was set', async () => {
  const values: Record<string, string> = { 'net.mptcp.stale_loss_cnt': '4', 'net.ipv4.tcp_wmem': 'garbage' }
  const { run } = fakeSysctl(values)
  await assert.rejects(new SysctlProfile({ run }).apply(tcpProfileSettings({ staleLossCnt: 1, tcpWmemMax: 1_048_576 }, 'kernel')),
    { code: 'HYBRID_ERR_CMD_OUTPUT' })
  assert.deepEqual(values, { 'net.mptcp.stale_loss_cnt': '4', 'net.ipv4.tcp_wmem': 'garbage' })
})

test('SysctlProfile: a failing apply restores what it had set, then rethrows', async () => {
  const values = { 'net.mptcp.stale_loss_cnt': '4', 'net.ipv4.tcp_retries2': '15', 'net.ipv4.tcp_rto_max_ms': '120000' }
  const { run } = fakeSysctl(values, 'net.ipv4.tcp_rto_max_ms')
  const p = new SysctlProfile({ run })
  await assert.rejects(p.apply(PROFILE), { code: 'HYBRID_ERR_CMD_FAILED' })
  assert.deepEqual(values, { 'net.mptcp.stale_loss_cnt': '4', 'net.ipv4.tcp_retries2': '15', 'net.ipv4.tcp_rto_max_ms': '120000' })
  assert.equal(p.saved.length, 0)
})

test('SysctlProfile: a missing key (older kernel) fails the apply without changing anything', async () => {
  const values: Record<string, string> = { 'net.mptcp.stale_loss_cnt': '4', 'net.ipv4.tcp_retries2': '15' }
  const { run } = fakeSysctl(values)
  await assert.rejects(new SysctlProfile({ run }).apply(PROFILE), { code: 'HYBRID_ERR_CMD_FAILED', message: /tcp_rto_max_ms/ })
  assert.deepEqual(values, { 'net.mptcp.stale_loss_cnt': '4', 'net.ipv4.tcp_retries2': '15' })
})

test('SysctlProfile: restore attempts every setting and rethrows the first failure', async () => {
  const values = { 'net.mptcp.stale_loss_cnt': '4', 'net.ipv4.tcp_retries2': '15', 'net.ipv4.tcp_rto_max_ms': '120000' }
  const f = fakeSysctl(values)
  let failRto = false
  const run: CommandRunner = async (argv, o) => {
    if (failRto && argv[2]?.startsWith('net.ipv4.tcp_rto_max_ms') === true) throw new HybridError('HYBRID_ERR_CMD_FAILED', 'boom')
    return f.run(argv, o)
  }
  const p = new SysctlProfile({ run })
  await p.apply(PROFILE)
  failRto = true
  await assert.rejects(p.restore(), { message: 'boom' })
  assert.equal(values['net.mptcp.stale_loss_cnt'], '4', 'the other settings were still restored')
  assert.equal(values['net.ipv4.tcp_retries2'], '15')
})
