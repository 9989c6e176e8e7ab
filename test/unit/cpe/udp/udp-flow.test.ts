import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Registry } from 'prom-client'
import { createUdpMetrics } from '../../../../shared/src/metrics/udp-metrics.ts'
import { refusalHoldMs, UdpFlow } from '../../../../cpe/src/udp/udp-flow.ts'
import type { SendResult, UdpTunnel } from '../../../../cpe/src/udp/connect-udp-client.ts'
import type { FlowKey } from '../../../../shared/src/udp/flow-table.ts'

const key: FlowKey = { family: 4, src: '192.0.2.10', srcPort: 5000, dst: '198.51.100.7', dstPort: 443 }

async function value (r: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = (await r.getMetricsAsJSON()).find((x) => x.name === name)
  const v = m?.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l))
  return v?.value ?? Number.NaN
}

interface Setup {
  flow: UdpFlow
  registry: Registry
  delivered: string[]
  removed: FlowKey[]
  sent: string[]
  closed: () => number
  t: { now: number }
}

function setup (verdicts: SendResult[] = []): Setup {
  const registry = new Registry()
  const metrics = createUdpMetrics(registry)
  const delivered: string[] = []
  const removed: FlowKey[] = []
  const sent: string[] = []
  let closes = 0
  const t = { now: 1000 }
  const flow = new UdpFlow(key, {
    metrics,
    now: () => t.now,
    deliver: (_k, p) => { delivered.push(Buffer.from(p).toString()) },
    removed: (k) => { removed.push(k) }
  })
  const tunnel: UdpTunnel = {
    send: (p) => { sent.push(Buffer.from(p).toString()); return verdicts.shift() ?? 'sent' },
    close: () => { closes++; flow.handlers.onEnd({ kind: 'closed' }) }
  }
  flow.attach(tunnel)
  return { flow, registry, delivered, removed, sent, closed: () => closes, t }
}

test('datagrams up and down are counted per direction (datagrams and payload bytes); drops by reason', async () => {
  const s = setup(['queued', 'sent', 'backpressure'])
  s.flow.up(Buffer.from('abc'))
  s.flow.up(Buffer.from('de'))
  s.flow.up(Buffer.from('f'))
  s.flow.handlers.onOpen()
  s.flow.handlers.onDatagram(Buffer.from('reply'))
  assert.equal(s.flow.state, 'open')
  assert.deepEqual(s.delivered, ['reply'])
  assert.deepEqual(s.flow.counters, { up: 2, down: 1, bytesUp: 5, bytesDown: 5, dropped: 1 })
  assert.equal(await value(s.registry, 'hybrid_udp_datagrams_total', { direction: 'up' }), 2)
  assert.equal(await value(s.registry, 'hybrid_udp_bytes_total', { direction: 'down' }), 5)
  assert.equal(await value(s.registry, 'hybrid_udp_datagrams_dropped_total', { reason: 'backpressure' }), 1)
})

test('a refusal while opening holds the flow (its datagrams dropped, no new request) for the hold time', async () => {
  const s = setup()
  s.flow.handlers.onEnd({ kind: 'refused', reason: 'policy', status: 403 })
  assert.equal(s.flow.state, 'refused')
  assert.deepEqual(s.removed, [], 'a refused flow stays in the table for its hold')
  s.flow.up(Buffer.from('x'))
  assert.deepEqual(s.sent, [], 'nothing is sent on a refused flow')
  assert.equal(await value(s.registry, 'hybrid_udp_datagrams_dropped_total', { reason: 'flow_refused' }), 1)
  assert.equal(await value(s.registry, 'hybrid_udp_flows_refused_total', { reason: 'policy' }), 1)
  assert.equal(s.flow.holdOver(1000 + refusalHoldMs('policy') - 1), false)
  assert.equal(s.flow.holdOver(1000 + refusalHoldMs('policy')), true)
  s.flow.finish('idle')
  assert.equal(await value(s.registry, 'hybrid_udp_flows_ended_total', { reason: 'refused' }), 1, 'a refused flow ends as refused')
  assert.ok(refusalHoldMs('unavailable') < refusalHoldMs('policy'))
})

test('finish: counted once, the stream closed once; a stream that closes by itself removes the flow', async () => {
  const s = setup()
  s.flow.handlers.onOpen()
  s.flow.finish('idle')
  s.flow.finish('stopped')
  assert.equal(s.closed(), 1)
  assert.equal(await value(s.registry, 'hybrid_udp_flows_ended_total', { reason: 'idle' }), 1)
  assert.equal(await value(s.registry, 'hybrid_udp_flows_ended_total', { reason: 'stopped' }), 0)
  assert.deepEqual(s.removed, [], 'finish is the owner\'s call: it removes the flow itself')

  const t = setup()
  t.flow.handlers.onOpen()
  t.flow.handlers.onEnd({ kind: 'closed' })
  assert.equal(t.flow.state, 'ended')
  assert.deepEqual(t.removed, [key])
  assert.equal(await value(t.registry, 'hybrid_udp_flows_ended_total', { reason: 'closed' }), 1)
  t.flow.handlers.onDatagram(Buffer.from('late'))
  assert.deepEqual(t.delivered, [], 'nothing is delivered after the end')
})
