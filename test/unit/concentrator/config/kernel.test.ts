import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadConfig } from '../../../../shared/src/config/load-config.ts'
import { resolveSetting, tcpProfileSettings } from '../../../../shared/src/sys/sysctl-profile.ts'
import { ConfigSchema } from '../../../../concentrator/src/config/config.ts'

test('kernel: unset by default — the concentrator leaves the kernel alone', () => {
  const c = loadConfig(ConfigSchema)
  assert.deepEqual(c.kernel, {})
  assert.deepEqual(tcpProfileSettings(c.kernel, 'kernel'), [])
})

test('kernel: the lab profile loads (here from the environment) and gives four settings', () => {
  const c = loadConfig(ConfigSchema, {
    env: {
      HYBRID_CONC_KERNEL__STALE_LOSS_CNT: '1',
      HYBRID_CONC_KERNEL__RTO_MAX_MS: '1000',
      HYBRID_CONC_KERNEL__TCP_RETRIES2: '60',
      HYBRID_CONC_KERNEL__TCP_WMEM_MAX: '1048576'
    },
    envPrefix: 'HYBRID_CONC_'
  })
  assert.deepEqual(c.kernel, { staleLossCnt: 1, rtoMaxMs: 1000, tcpRetries2: 60, tcpWmemMax: 1_048_576 })
  assert.deepEqual(tcpProfileSettings(c.kernel, 'kernel').map((s) => `${s.key}=${resolveSetting(s, '4096\t16384\t4194304')}`),
    ['net.mptcp.stale_loss_cnt=1', 'net.ipv4.tcp_retries2=60', 'net.ipv4.tcp_rto_max_ms=1000', 'net.ipv4.tcp_wmem=4096 16384 1048576'])
})

test('kernel: out-of-range values and unknown keys are refused by the schema', () => {
  for (const env of [{ HYBRID_CONC_KERNEL__RTO_MAX_MS: '999' }, { HYBRID_CONC_KERNEL__RTO_MAX_MS: '120001' },
    { HYBRID_CONC_KERNEL__STALE_LOSS_CNT: '0' }, { HYBRID_CONC_KERNEL__TCP_RETRIES2: '2' }, { HYBRID_CONC_KERNEL__TCP_WMEM_MAX: '65535' },
    { HYBRID_CONC_KERNEL__TCP_WMEM_MAX: '1m' }, { HYBRID_CONC_KERNEL__BLACKHOLE_TIMEOUT: '0' }]) {
    assert.throws(() => loadConfig(ConfigSchema, { env, envPrefix: 'HYBRID_CONC_' }), { name: 'ConfigError', message: /kernel/i },
      JSON.stringify(env))
  }
})

test('kernel: rtoMaxMs below 120000 without tcpRetries2 is refused at start, naming kernel.tcpRetries2', () => {
  const c = loadConfig(ConfigSchema, { env: { HYBRID_CONC_KERNEL__RTO_MAX_MS: '1000' }, envPrefix: 'HYBRID_CONC_' })
  assert.throws(() => tcpProfileSettings(c.kernel, 'kernel'), { code: 'HYBRID_ERR_CONFIG_INVALID', message: /^kernel\.tcpRetries2: required/ })
})
