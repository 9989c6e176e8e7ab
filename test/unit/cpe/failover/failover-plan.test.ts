import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  actionsFor, failoverTarget, ipBatchArgv, kernelSettings, preferredUplink, staleSteeringBatch, steeringBatch, steeringDiff, steeringRuleArgv,
  steeringRules, type FailoverUplink
} from '../../../../cpe/src/failover/failover-plan.ts'
import { resolveSetting } from '../../../../shared/src/sys/sysctl-profile.ts'

const uplinks = (dsl: boolean, lte: boolean): FailoverUplink[] => [
  { name: 'dsl', table: 100, primary: true, healthy: dsl },
  { name: 'lte', table: 200, primary: false, healthy: lte }
]

test('preferred uplink: the primary while healthy, else the first healthy one, else none', () => {
  assert.equal(preferredUplink(uplinks(true, true))?.name, 'dsl')
  assert.equal(preferredUplink(uplinks(false, true))?.name, 'lte')
  assert.equal(preferredUplink(uplinks(true, false))?.name, 'dsl')
  assert.equal(preferredUplink(uplinks(false, false)), undefined)
})

test('steering rules: main without defaults at P, the table at P+1, both families', () => {
  const rules = steeringRules(200, 32000)
  assert.deepEqual(rules.map((r) => steeringRuleArgv('add', r).join(' ')), [
    'ip -4 rule add lookup main suppress_prefixlength 0 priority 32000',
    'ip -4 rule add lookup 200 priority 32001',
    'ip -6 rule add lookup main suppress_prefixlength 0 priority 32000',
    'ip -6 rule add lookup 200 priority 32001'
  ])
  assert.deepEqual(steeringRuleArgv('del', rules[1]!), ['ip', '-4', 'rule', 'del', 'lookup', '200', 'priority', '32001'])
})

test('steering diff: switching tables adds the new table rules and deletes only the old ones; same table: nothing', () => {
  const d = steeringDiff(steeringRules(100, 32000), steeringRules(200, 32000))
  assert.deepEqual(d.add.map((r) => `${r.family}:${String(r.table)}`), ['4:200', '6:200'])
  assert.deepEqual(d.del.map((r) => `${r.family}:${String(r.table)}`), ['4:100', '6:100'])
  assert.deepEqual(steeringDiff(steeringRules(100, 32000), steeringRules(100, 32000)), { add: [], del: [] })
  assert.equal(steeringDiff(steeringRules(100, 32000), []).del.length, 4)
})

test('primary down with LTE up: steer to lte, then withdraw dsl from running connections', () => {
  assert.deepEqual(actionsFor({ path: 'dsl', to: 'down' }, uplinks(false, true), 'dsl'), [
    { kind: 'steer', to: 'lte', table: 200 },
    { kind: 'withdraw', path: 'dsl' }
  ])
  assert.equal(failoverTarget('dsl', uplinks(false, true)), 'lte')
})

test('primary back: steer back to dsl, then restore its subflows', () => {
  assert.deepEqual(actionsFor({ path: 'dsl', to: 'up' }, uplinks(true, true), 'lte'), [
    { kind: 'steer', to: 'dsl', table: 100 },
    { kind: 'restore', path: 'dsl' }
  ])
})

test('lte down while dsl up: no steering change, lte withdrawn; lte back: restored', () => {
  assert.deepEqual(actionsFor({ path: 'lte', to: 'down' }, uplinks(true, false), 'dsl'), [{ kind: 'withdraw', path: 'lte' }])
  assert.deepEqual(actionsFor({ path: 'lte', to: 'up' }, uplinks(true, true), 'dsl'), [{ kind: 'restore', path: 'lte' }])
})

test('last path down: steering removed (main decides), nothing withdrawn (no live subflow to carry REMOVE_ADDR)', () => {
  assert.deepEqual(actionsFor({ path: 'lte', to: 'down' }, uplinks(false, false), 'lte'), [{ kind: 'steer', to: undefined, table: undefined }])
  assert.equal(failoverTarget('lte', uplinks(false, false)), undefined)
})

test('idempotent: steering already right gives no steer action; an unknown path gives only steering', () => {
  assert.deepEqual(actionsFor({ path: 'dsl', to: 'down' }, uplinks(false, true), 'lte'), [{ kind: 'withdraw', path: 'dsl' }])
  assert.deepEqual(actionsFor({ path: 'wifi', to: 'down' }, uplinks(true, true), 'dsl'), [])
  assert.deepEqual(actionsFor({ path: '', to: 'up' }, uplinks(true, true), undefined), [{ kind: 'steer', to: 'dsl', table: 100 }])
})

test('kernel settings: blackhole_timeout by default; the profile in order; -1 leaves it alone', () => {
  assert.deepEqual(kernelSettings({ blackholeTimeout: 0 }), [{ key: 'net.mptcp.blackhole_timeout', value: '0' }])
  assert.deepEqual(kernelSettings({ blackholeTimeout: -1 }), [])
  assert.deepEqual(kernelSettings({
    blackholeTimeout: 0,
    staleLossCnt: 1,
    rtoMaxMs: 1000,
    tcpRetries2: 60,
    tcpWmemMax: 1_048_576
  }).map((s) => `${s.key}=${resolveSetting(s, '4096 16384 4194304')}`), [
    'net.mptcp.blackhole_timeout=0', 'net.mptcp.stale_loss_cnt=1', 'net.ipv4.tcp_retries2=60', 'net.ipv4.tcp_rto_max_ms=1000',
    'net.ipv4.tcp_wmem=4096 16384 1048576'
  ])
})

test('kernel settings: a small rtoMaxMs without tcpRetries2 is refused (the subflow would be given up)', () => {
  assert.throws(() => kernelSettings({ blackholeTimeout: 0, rtoMaxMs: 1000 }),
    (err: Error & { code?: string }) => err.code === 'HYBRID_ERR_CONFIG_INVALID' && /tcpRetries2/.test(err.message))
  assert.doesNotThrow(() => kernelSettings({ blackholeTimeout: 0, rtoMaxMs: 120_000 }))
})

test('kernel settings: the error names the CPE key (failover.kernel.tcpRetries2)', () => {
  assert.throws(() => kernelSettings({ blackholeTimeout: 0, rtoMaxMs: 1000 }),
    (err: Error & { detail?: { key?: string } }) => err.detail?.key === 'failover.kernel.tcpRetries2')
})

test('steering batch: one family, adds first, deletes P+1 before P; stale-rule cleanup', () => {
  const toLte = steeringRules(200, 32000)
  const toDsl = steeringRules(100, 32000)
  const move = steeringDiff(toDsl, toLte)
  assert.deepEqual(steeringBatch(4, move.add, move.del), ['rule add lookup 200 priority 32001', 'rule del lookup 100 priority 32001'])
  assert.deepEqual(steeringBatch(6, move.add, move.del), ['rule add lookup 200 priority 32001', 'rule del lookup 100 priority 32001'])
  const none = steeringDiff(toLte, [])
  assert.deepEqual(steeringBatch(4, none.add, none.del),
    ['rule del lookup 200 priority 32001', 'rule del lookup main suppress_prefixlength 0 priority 32000'])
  const first = steeringDiff([], toDsl)
  assert.deepEqual(steeringBatch(6, first.add, first.del),
    ['rule add lookup main suppress_prefixlength 0 priority 32000', 'rule add lookup 100 priority 32001'])
  assert.deepEqual(ipBatchArgv(6, false), ['ip', '-6', '-batch', '-'])
  assert.deepEqual(ipBatchArgv(4, true), ['ip', '-4', '-force', '-batch', '-'])
  const stale = staleSteeringBatch(32000, 2)
  assert.deepEqual(stale, ['rule del priority 32001', 'rule del priority 32001', 'rule del priority 32000', 'rule del priority 32000'])
})
