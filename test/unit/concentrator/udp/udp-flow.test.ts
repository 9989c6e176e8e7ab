/**
 * The flow object alone, with a fake HTTP/2 stream and a fake UDP socket: the bounds on both
 * directions (no unbounded buffering), the capsule handling and the single end path.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import type dgram from 'node:dgram'
import http2 from 'node:http2'
import { Registry } from 'prom-client'
import { CapsuleReader, encodeCapsule, encodeDatagramCapsule } from '../../../../shared/src/codec/capsule.ts'
import { createLogger } from '../../../../shared/src/log.ts'
import { UdpFlow, type UdpFlowOptions } from '../../../../concentrator/src/udp/udp-flow.ts'
import { createUdpProxyMetrics } from '../../../../concentrator/src/udp/udp-metrics.ts'
import type { UdpFlowEndReason } from '../../../../concentrator/src/udp/udp-metrics.ts'

class FakeStream extends EventEmitter {
  writableLength = 0
  closed = false
  destroyed = false
  rstCode: number | undefined
  readonly written: Buffer[] = []
  write (b: Buffer): boolean { this.written.push(b); return true }
  close (code: number): void { this.closed = true; this.rstCode = code; this.emit('close') }
}

class FakeSocket extends EventEmitter {
  queue = 0
  open = true
  readonly sent: Buffer[] = []
  getSendQueueCount (): number { return this.queue }
  send (b: Uint8Array, cb: (err: Error | null) => void): void { this.sent.push(Buffer.from(b)); cb(null) }
  close (): void { this.open = false }
}

async function counter (registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get()
  return m?.values.find((v) => Object.entries(labels).every(([k, x]) => String((v.labels as Record<string, unknown>)[k]) === x))?.value ?? 0
}

function makeFlow (over: Partial<UdpFlowOptions> = {}) {
  const registry = new Registry()
  const stream = new FakeStream()
  const socket = new FakeSocket()
  const ends: UdpFlowEndReason[] = []
  const flow = new UdpFlow(stream as unknown as http2.ServerHttp2Stream, socket as unknown as dgram.Socket, {
    idleTimeoutMs: 60_000,
    maxDatagramBytes: 1000,
    streamBufferMaxBytes: 4096,
    socketQueueMaxDatagrams: 4,
    metrics: createUdpProxyMetrics(registry),
    log: createLogger({ level: 'silent', name: 't' }),
    onEnd: (r) => { ends.push(r) },
    ...over
  })
  return { flow, stream, socket, registry, ends }
}

test('a capsule split at every byte boundary still yields the datagram', () => {
  const bytes = Buffer.concat([encodeDatagramCapsule(Buffer.from('abc')), encodeDatagramCapsule(Buffer.from('defg'))])
  for (let cut = 1; cut < bytes.length; cut++) {
    const { flow, stream, socket } = makeFlow()
    stream.emit('data', bytes.subarray(0, cut))
    stream.emit('data', bytes.subarray(cut))
    assert.deepEqual(socket.sent.map((b) => b.toString()), ['abc', 'defg'], `cut at ${cut}`)
    flow.end('shutdown')
  }
})

test('to the target: dropped while the socket has its queue full, never queued here', async () => {
  const { stream, socket, registry, flow } = makeFlow()
  socket.queue = 4
  for (let i = 0; i < 1000; i++) stream.emit('data', encodeDatagramCapsule(Buffer.alloc(500)))
  assert.equal(socket.sent.length, 0)
  assert.equal(await counter(registry, 'hybrid_udp_datagrams_dropped_total', { reason: 'backpressure' }), 1000)
  socket.queue = 0
  stream.emit('data', encodeDatagramCapsule(Buffer.from('ok')))
  assert.equal(socket.sent.length, 1)
  flow.end('shutdown')
})

test('to the client: dropped while the stream holds more than its limit unsent', async () => {
  const { stream, socket, registry, flow } = makeFlow()
  socket.emit('message', Buffer.from('first'))
  stream.writableLength = 5000
  for (let i = 0; i < 100; i++) socket.emit('message', Buffer.alloc(100))
  socket.emit('message', Buffer.alloc(1001))
  assert.equal(stream.written.length, 1)
  const r = new CapsuleReader()
  r.push(stream.written[0] as Buffer)
  const n = r.next()
  assert.ok('capsule' in n)
  assert.equal(Buffer.from(n.capsule.value).toString('hex'), `00${Buffer.from('first').toString('hex')}`)
  assert.equal(await counter(registry, 'hybrid_udp_datagrams_dropped_total', { reason: 'backpressure' }), 100)
  assert.equal(await counter(registry, 'hybrid_udp_datagrams_dropped_total', { reason: 'oversized' }), 1)
  flow.end('shutdown')
})

test('one end path: idempotent, socket closed, stream closed once, counted once', async () => {
  const { flow, stream, socket, registry, ends } = makeFlow()
  flow.end('idle_timeout')
  flow.end('shutdown')
  stream.emit('close')
  assert.deepEqual(ends, ['idle_timeout'])
  assert.equal(socket.open, false)
  assert.equal(stream.rstCode, http2.constants.NGHTTP2_NO_ERROR)
  assert.equal(await counter(registry, 'hybrid_udp_flows_ended_total', { reason: 'idle' }), 1)
  assert.equal(await counter(registry, 'hybrid_udp_flows_active'), 0)
  assert.equal(await counter(registry, 'hybrid_udp_flows_created_total'), 1)
})

test('a capsule over the budget resets the stream with PROTOCOL_ERROR', () => {
  const { stream, ends } = makeFlow()
  stream.emit('data', Buffer.from('00c0000000000fffff', 'hex'))
  assert.deepEqual(ends, ['capsule_fault'])
  assert.equal(stream.rstCode, http2.constants.NGHTTP2_PROTOCOL_ERROR)
})

test('the client ending its stream between capsules ends the flow client_closed; inside one: capsule_fault', () => {
  const a = makeFlow()
  a.stream.emit('data', encodeCapsule(0x17, Buffer.from('x')))
  a.stream.emit('end')
  assert.deepEqual(a.ends, ['client_closed'])
  const b = makeFlow()
  b.stream.emit('data', Buffer.from('0005', 'hex'))
  b.stream.emit('end')
  assert.deepEqual(b.ends, ['capsule_fault'])
})

test('a reset from the client ends the flow stream_reset; ICMP unreachable is a drop, other socket errors end it', async () => {
  const a = makeFlow()
  a.stream.rstCode = http2.constants.NGHTTP2_CANCEL
  a.stream.emit('close')
  assert.deepEqual(a.ends, ['stream_reset'])
  const b = makeFlow()
  b.socket.emit('error', Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }))
  assert.deepEqual(b.ends, [])
  assert.equal(await counter(b.registry, 'hybrid_udp_datagrams_dropped_total', { reason: 'send_error' }), 1)
  b.socket.emit('error', Object.assign(new Error('boom'), { code: 'EIO' }))
  assert.deepEqual(b.ends, ['socket_error'])
})

test('the idle timer is measured from the last datagram either way', async () => {
  let now = 0
  const { socket, stream, ends } = makeFlow({ idleTimeoutMs: 40, now: () => now })
  now = 30
  socket.emit('message', Buffer.from('keep'))
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.deepEqual(ends, [], 'a datagram 30 ms in pushes the deadline to 70 ms')
  now = 75
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.deepEqual(ends, ['idle_timeout'])
  assert.equal(stream.closed, true)
})
