import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import ipaddr from 'ipaddr.js'
import { stringify } from 'yaml'
import { ConfigSchema } from '../../../concentrator/src/config/config.ts'
import { loadConfig } from '../../../shared/src/config/load-config.ts'
import { ADDRESS_PLAN } from '../../../lab/addresses.ts'
import { LAB_CONCENTRATOR_PORTS, labConcentratorConfig, sumMetric } from '../../../lab/daemons.ts'
import { LAB_METRICS_TARGETS } from '../../../lab/prometheus-config.ts'
import { testTempDir } from '../../helpers/temp-dir.ts'

const DOC_RANGES = ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24', '2001:db8::/32'].map((c) => ipaddr.parseCIDR(c))
const isDoc = (addr: string): boolean => {
  const a = ipaddr.parse(addr)
  return DOC_RANGES.some(([net, len]) => a.kind() === net.kind() && a.match(net, len))
}

function load (doc: Record<string, unknown>) {
  const file = join(testTempDir('hat-daemons-'), 'c.yaml')
  writeFileSync(file, stringify(doc))
  return loadConfig(ConfigSchema, { file })
}

test('the lab concentrator config validates against the daemon schema, with overrides merged', () => {
  const c = load(labConcentratorConfig({ limits: { handshakeTimeoutMs: 1000 }, policy: { dns: { servers: ['203.0.113.10'] } } }))
  assert.deepEqual(c.listeners.map((l) => [l.host, l.port, l.mode, l.protocol]), [
    [ADDRESS_PLAN.service.v4, LAB_CONCENTRATOR_PORTS.socks5, 'socks5', 'mptcp'],
    [ADDRESS_PLAN.service.v6, LAB_CONCENTRATOR_PORTS.socks5, 'socks5', 'mptcp']
  ])
  assert.equal(c.limits.handshakeTimeoutMs, 1000)
  assert.deepEqual(c.policy.dns.servers, ['203.0.113.10'])
  assert.deepEqual(c.policy.ownAddresses, [ADDRESS_PLAN.service.v4, ADDRESS_PLAN.service.v6])
  assert.equal(`${c.management.listen.host}:${c.management.listen.port}`, LAB_METRICS_TARGETS.concentrator[0])
})

test('trusted prefixes are exactly the CPE access addresses, all in documentation ranges', () => {
  const c = load(labConcentratorConfig())
  const cpe = [ADDRESS_PLAN.access.dsl, ADDRESS_PLAN.access.lte].flatMap((a) => [a.cpeSide.cpe.v4, a.cpeSide.cpe.v6])
  assert.deepEqual(c.auth.trustedPrefixes.map((p) => p.split('/')[0]), cpe)
  for (const p of c.auth.trustedPrefixes) assert.ok(isDoc(p.split('/')[0] as string), p)
})

test('sumMetric sums the samples whose labels match, ignoring comments and other metrics', () => {
  const text = [
    '# HELP hybrid_bytes_sent_total Payload bytes',
    '# TYPE hybrid_bytes_sent_total counter',
    'hybrid_bytes_sent_total{mode="socks5",side="client"} 1000',
    'hybrid_bytes_sent_total{mode="socks5",side="server"} 20',
    'hybrid_bytes_sent_total{mode="convert",side="client"} 5',
    'hybrid_bytes_sent_total_other 7',
    'hybrid_mptcp_connections_active 2',
    'label_with_escape{x="a\\"b"} 3'
  ].join('\n')
  assert.equal(sumMetric(text, 'hybrid_bytes_sent_total'), 1025)
  assert.equal(sumMetric(text, 'hybrid_bytes_sent_total', { side: 'client' }), 1005)
  assert.equal(sumMetric(text, 'hybrid_bytes_sent_total', { mode: 'socks5', side: 'client' }), 1000)
  assert.equal(sumMetric(text, 'hybrid_mptcp_connections_active'), 2)
  assert.equal(sumMetric(text, 'label_with_escape', { x: 'a\\"b' }), 3)
  assert.equal(sumMetric(text, 'missing'), 0)
})
