import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ADDRESS_PLAN } from '../../../lab/addresses.ts'
import { labConcentratorConfig, LAB_CONCENTRATOR_PORTS } from '../../../lab/daemons.ts'
import {
  DAEMON_MODES, LAB_DRAIN_TIMEOUT_MS, labConcentratorKernelConfig, labWmemMax, labCpeConfig, labFailoverConfig,
  labModeConcentratorConfig
} from '../../../lab/lab-daemons-config.ts'
import { bytesBetween, rateOf, readPathMetrics, rttBetween } from '../../../lab/live-view.ts'
import { labPrometheusListen } from '../../../lab/prometheus-run.ts'
import { LAB_METRICS_TARGETS } from '../../../lab/prometheus-config.ts'
import { formatDaemonGuide } from '../../../lab/summary.ts'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { ConfigSchema as CpeConfigSchema } from '../../../cpe/src/config/config.ts'
import { ConfigSchema as ConcentratorConfigSchema } from '../../../concentrator/src/config/config.ts'
import { loadConfig } from '../../../shared/src/config/load-config.ts'

/** Validate a generated configuration with the daemon's own loader (throws ConfigError). */
function validate (schema: typeof CpeConfigSchema | typeof ConcentratorConfigSchema, config: Record<string, unknown>): void {
  const dir = mkdtempSync(join(tmpdir(), 'hat-ld-cfg-'))
  try {
    const file = join(dir, 'c.yaml')
    writeFileSync(file, stringify(config))
    loadConfig(schema, { file })
  } finally { rmSync(dir, { recursive: true, force: true }) }
}

const METRICS = (bytes: number, rttSum: number, rttCount: number, lteSubflows: number): string => `# HELP hybrid_path_bytes_total x
# TYPE hybrid_path_bytes_total counter
hybrid_path_bytes_total{path="dsl",direction="up"} ${bytes / 10}
hybrid_path_bytes_total{path="dsl",direction="down"} ${bytes}
hybrid_path_bytes_total{path="lte",direction="up"} 0
hybrid_path_bytes_total{path="lte",direction="down"} ${bytes / 2}
hybrid_path_rtt_seconds_bucket{le="0.05",path="dsl"} ${rttCount}
hybrid_path_rtt_seconds_sum{path="dsl"} ${rttSum}
hybrid_path_rtt_seconds_count{path="dsl"} ${rttCount}
hybrid_mptcp_subflows_active{path="dsl"} 1
hybrid_mptcp_subflows_active{path="lte"} ${lteSubflows}
`

test('readPathMetrics: path bytes, RTT histogram and subflows per access; RTT from sum/count deltas', () => {
  const a = readPathMetrics(METRICS(1_000_000, 0.04, 2, 0), 0)
  const b = readPathMetrics(METRICS(7_250_000, 0.1, 5, 1), 1000)
  assert.deepEqual(a.bytes, { dsl: { up: 100_000, down: 1_000_000 }, lte: { up: 0, down: 500_000 } })
  assert.deepEqual(b.subflows, { dsl: 1, lte: 1 })
  assert.deepEqual(rttBetween(a, b), { dsl: 20, lte: null })
  assert.deepEqual(bytesBetween(a, b, 'down'), { dsl: 6_250_000, lte: 3_125_000 })
  assert.equal(rateOf({ dsl: { upMbps: 9.5, downMbps: 1 }, lte: { upMbps: 12.25, downMbps: 0 } }, 'up'), 21.75)
})

test('mode configurations: management on the metrics targets, the mode, TFO, convert listener and fallback, transparent section', () => {
  for (const mode of DAEMON_MODES) {
    const cpe = labCpeConfig(mode)
    assert.equal(cpe['mode'], mode)
    const mgmt = (cpe['management'] as { listen: { host: string, port: number } }).listen
    assert.equal(`${mgmt.host}:${mgmt.port}`, LAB_METRICS_TARGETS.cpe[0])
    // TFO off in every lab mode: bulk transfers on TFO-opened MPTCP connections can stall on this
    // kernel (docs/mptcp-socket-layer.md, "Kernel issues"); the TFO tests switch it on themselves.
    assert.equal((cpe['concentrator'] as { fastOpen: boolean }).fastOpen, false)
    // Both validate against the daemons' schemas (no unknown keys, required ones present).
    validate(CpeConfigSchema, cpe)
    validate(ConcentratorConfigSchema, labModeConcentratorConfig(mode))
    // The same TCP/MPTCP kernel profile on both ends (docs/failover.md, "Concentrator kernel profile").
    const { blackholeTimeout: _b, ...cpeProfile } = labFailoverConfig()['kernel'] as Record<string, unknown>
    assert.deepEqual(labModeConcentratorConfig(mode)['kernel'], cpeProfile, `${mode}: concentrator kernel profile = the CPE's`)
  }
  assert.deepEqual(labCpeConfig('convert')['convert'], { port: LAB_CONCENTRATOR_PORTS.convert, fallback: 'socks5' })
  assert.deepEqual(labModeConcentratorConfig('socks5'), {
    ...labConcentratorConfig(),
    limits: { ...labConcentratorConfig()['limits'] as object, drainTimeoutMs: LAB_DRAIN_TIMEOUT_MS },
    kernel: labConcentratorKernelConfig()
  })
  for (const mode of DAEMON_MODES) {
    assert.equal((labModeConcentratorConfig(mode)['limits'] as { drainTimeoutMs?: number }).drainTimeoutMs,
      LAB_DRAIN_TIMEOUT_MS, `${mode}: drains within the stop grace`)
  }
  const listeners = labModeConcentratorConfig('convert')['listeners'] as Array<{ host: string, port: number, mode: string }>
  assert.deepEqual(listeners.filter((l) => l.mode === 'convert').map((l) => `${l.host}:${l.port}`),
    [`${ADDRESS_PLAN.service.v4}:1234`, `${ADDRESS_PLAN.service.v6}:1234`])
  const tp = labModeConcentratorConfig('transparent', { joinPort: 7200 })['transparent'] as {
    enabled: boolean,
    joinEndpoints: Array<{ port: number }>
  }
  assert.equal(tp.enabled, true)
  assert.deepEqual(tp.joinEndpoints.map((e) => e.port), [7200, 7200])
})

test('Prometheus listens on inet\'s server address; the kept-lab guide names PIDs, management URLs and the Prometheus query', () => {
  assert.equal(labPrometheusListen({ plan: ADDRESS_PLAN }), '203.0.113.10:9099')
  const text = formatDaemonGuide('ha-', ADDRESS_PLAN,
    { mode: 'socks5', cpePid: 11, concentratorPid: 22, logDir: '/tmp/x', prometheus: { pid: 33, url: 'http://203.0.113.10:9099', dir: '/tmp/p' } })
  assert.match(text, /PID 11 in ha-cpe, management http:\/\/192\.0\.2\.1:9091/)
  assert.match(text, /PID 22 in ha-hag, management http:\/\/203\.0\.113\.1:9090/)
  assert.match(text, /ip netns exec ha-inet curl -s 'http:\/\/203\.0\.113\.10:9099\/api\/v1\/query\?query=up'/)
})

test('lab tcp_wmem max: 1 MiB by default, HYBRID_LAB_TCP_WMEM_MAX=<bytes> or off; anything else is a config error naming the variable', () => {
  assert.equal(labWmemMax(undefined), 1_048_576)
  assert.equal(labWmemMax(''), 1_048_576)
  assert.equal(labWmemMax('4194304'), 4_194_304)
  assert.equal(labWmemMax('off'), undefined)
  for (const bad of ['1m', '-1', '65535', '1073741825', '1e6', ' 4194304']) {
    assert.throws(() => labWmemMax(bad), { code: 'HYBRID_ERR_CONFIG_ENV', message: /^HYBRID_LAB_TCP_WMEM_MAX: expected bytes/ }, bad)
  }
  // the default profile carries it on both ends (the environment of this test run may override it)
  if (process.env['HYBRID_LAB_TCP_WMEM_MAX'] === undefined) assert.equal(labConcentratorKernelConfig()['tcpWmemMax'], 1_048_576)
})
