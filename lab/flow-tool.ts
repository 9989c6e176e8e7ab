/**
 * The lab's bulk-transfer tool over our own socket layer (shared/src/net): one MPTCP connection
 * runs a download and then an upload, and reports one JSON line per second with the bytes moved
 * and per-subflow statistics (MPTCP_FULL_INFO), each subflow tagged with its access (dsl/lte).
 *
 *   flow-tool.ts server --listen 203.0.113.200 [--listen 2001:db8:ffff::1] [--port 5201] [--protocol mptcp|tcp]
 *   flow-tool.ts client --host 203.0.113.200 [--port 5201] [--seconds 10] [--directions download,upload]
 *                       [--protocol mptcp|tcp] [--local <addr>]
 *
 * Client stdout lines (see docs/lab.md): {"type":"connected",…}, then per direction
 * {"type":"start",…}, {"type":"tick",…} every second, {"type":"result",…}; finally {"type":"done"}.
 * Wire format: flow-protocol.ts. Servers print {"type":"ready",…} once listening.
 */
import { once } from 'node:events'
import type { Server, Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { dial } from '../shared/src/net/dial.ts'
import { listen } from '../shared/src/net/listen.ts'
import { mptcpFullInfo, socketProtocol } from '../shared/src/net/sockopt.ts'
import { accessOfAddress, LAB_PORTS } from './addresses.ts'
import {
  dataFrame, decodeReport, decodeRequest, encodeReport, encodeRequest, END_FRAME, FrameCounter, mbps,
  REPORT_SIZE, REQUEST_SIZE, WARM_MS, type FlowDirection
} from './flow-protocol.ts'

export type Protocol = 'mptcp' | 'tcp'

export interface SubflowSample {
  access: string
  local: string
  remote: string
  rttMs: number
  bytesAcked: number
  bytesReceived: number
}

export type FlowLine =
  | { type: 'connected', protocol: Protocol, local: string, remote: string }
  | { type: 'start', direction: FlowDirection, seconds: number }
  | { type: 'tick', direction: FlowDirection, t: number, bytes: number, mbps: number, subflows: SubflowSample[] }
  | {
    type: 'result',
    direction: FlowDirection,
    protocol: Protocol,
    bytes: number,
    seconds: number,
    goodputMbps: number,
    steadyMbps: number,
    subflows: number,
    accesses: string[]
  }
  | { type: 'done' }

export interface FlowClientOptions {
  host: string
  port?: number
  seconds?: number
  directions?: readonly FlowDirection[]
  protocol?: Protocol
  localAddress?: string
}

/** Subflow statistics of an MPTCP socket (empty for plain TCP). */
export function subflowSamples (socket: Socket): SubflowSample[] {
  const info = mptcpFullInfo(socket)
  if (info === undefined) return []
  return info.subflows.map((sf) => ({
    access: accessOfAddress(sf.localAddress) ?? accessOfAddress(sf.remoteAddress) ?? 'other',
    local: sf.localAddress,
    remote: sf.remoteAddress,
    rttMs: Math.round(sf.rttUs / 10) / 100,
    bytesAcked: sf.bytesAcked ?? 0,
    bytesReceived: sf.bytesReceived ?? 0
  }))
}

/** Run the client; every report goes to `emit`. Resolves when all directions are done. */
export async function runFlowClient (opts: FlowClientOptions, emit: (line: FlowLine) => void): Promise<void> {
  const socket = dial({
    host: opts.host,
    port: opts.port ?? LAB_PORTS.flow,
    protocol: opts.protocol ?? 'mptcp',
    ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {})
  })
  socket.setNoDelay(true)
  await once(socket, 'connect', { signal: AbortSignal.timeout(15_000) })
  const protocol = socketProtocol(socket)
  emit({ type: 'connected', protocol, local: socket.localAddress ?? '', remote: socket.remoteAddress ?? '' })
  const reader = new SocketReader(socket)
  try {
    for (const direction of opts.directions ?? ['download', 'upload']) {
      const seconds = opts.seconds ?? 10
      emit({ type: 'start', direction, seconds })
      const r = await runPhase(socket, reader, direction, seconds, emit)
      emit({ type: 'result', direction, protocol, ...r })
    }
  } finally {
    socket.end()
    socket.destroySoon()
  }
  emit({ type: 'done' })
}

interface PhaseResult { bytes: number, seconds: number, goodputMbps: number, steadyMbps: number, subflows: number, accesses: string[] }

async function runPhase (socket: Socket, reader: SocketReader, direction: FlowDirection, seconds: number,
  emit: (l: FlowLine) => void): Promise<PhaseResult> {
  const seen = { max: 0, accesses: new Set<string>() }
  const ticker = new Ticker(socket, direction, seen, emit)
  socket.write(encodeRequest({ direction, durationMs: seconds * 1000 }))
  try {
    if (direction === 'download') {
      const m = await receiveFrames(reader, (n) => { ticker.add(n) })
      return { ...rates(m.totalBytes, m.elapsedMs, m.warmBytes), subflows: seen.max, accesses: [...seen.accesses].sort() }
    }
    await sendFrames(socket, seconds * 1000)
    const report = decodeReport(await reader.read(REPORT_SIZE))
    if (report === undefined) throw new Error('flow server closed before its upload report')
    return { ...rates(report.totalBytes, report.elapsedMs, report.warmBytes), subflows: seen.max, accesses: [...seen.accesses].sort() }
  } finally {
    ticker.stop()
  }
}

function rates (totalBytes: number, elapsedMs: number, warmBytes: number): Omit<PhaseResult, 'subflows' | 'accesses'> {
  const steadyMs = elapsedMs - WARM_MS
  return {
    bytes: totalBytes,
    seconds: Math.round(elapsedMs) / 1000,
    goodputMbps: round2(mbps(totalBytes, elapsedMs)),
    steadyMbps: round2(steadyMs > 0 ? mbps(totalBytes - warmBytes, steadyMs) : mbps(totalBytes, elapsedMs))
  }
}

/** Per-second reporter: download counts received payload, upload counts bytes acked on the subflows. */
class Ticker {
  #timer: NodeJS.Timeout
  #bytes = 0
  #acked = new Map<string, number>()
  #t = 0

  constructor (socket: Socket, direction: FlowDirection, seen: { max: number, accesses: Set<string> }, emit: (l: FlowLine) => void) {
    let last = performance.now()
    this.#timer = setInterval(() => {
      const now = performance.now()
      const subflows = subflowSamples(socket)
      seen.max = Math.max(seen.max, subflows.length)
      for (const sf of subflows) seen.accesses.add(sf.access)
      const bytes = direction === 'download' ? this.#bytes : this.#ackedDelta(subflows)
      this.#bytes = 0
      this.#t++
      emit({ type: 'tick', direction, t: this.#t, bytes, mbps: round2(mbps(bytes, now - last)), subflows })
      last = now
    }, 1000)
  }

  add (n: number): void { this.#bytes += n }

  #ackedDelta (subflows: SubflowSample[]): number {
    let delta = 0
    for (const sf of subflows) {
      const key = `${sf.local}|${sf.remote}`
      delta += sf.bytesAcked - (this.#acked.get(key) ?? 0)
      this.#acked.set(key, sf.bytesAcked)
    }
    return Math.max(0, delta)
  }

  stop (): void { clearInterval(this.#timer) }
}

/** Write frames for `ms` (respecting backpressure), then the end frame. Returns payload bytes written. */
export async function sendFrames (socket: Socket, ms: number): Promise<number> {
  const frame = dataFrame()
  const deadline = performance.now() + ms
  let sent = 0
  while (performance.now() < deadline) {
    if (socket.destroyed) throw new Error('connection closed while sending')
    sent += frame.length - 4
    if (!socket.write(frame)) await drainOrClose(socket)
  }
  socket.write(END_FRAME)
  return sent
}

async function drainOrClose (socket: Socket): Promise<void> {
  await new Promise<void>((resolve) => {
    const done = (): void => { socket.off('drain', done); socket.off('close', done); resolve() }
    socket.on('drain', done)
    socket.on('close', done)
  })
}

/** Receive one frame stream; measures first byte → end frame. */
export async function receiveFrames (reader: SocketReader, onBytes?: (n: number) => void): Promise<FlowReport2> {
  const counter = new FrameCounter()
  let first = 0
  let warmBytes = -1
  while (!counter.done) {
    const chunk = await reader.next()
    if (chunk === undefined) throw new Error('connection closed inside a frame stream')
    const now = performance.now()
    if (first === 0) first = now
    const before = counter.payloadBytes
    reader.unshift(counter.push(chunk))
    onBytes?.(counter.payloadBytes - before)
    if (warmBytes < 0 && now - first >= WARM_MS) warmBytes = before
  }
  const elapsedMs = performance.now() - first
  return { totalBytes: counter.payloadBytes, elapsedMs, warmBytes: warmBytes < 0 ? 0 : warmBytes }
}

interface FlowReport2 { totalBytes: number, elapsedMs: number, warmBytes: number }

/** Pull-style reader over a socket's 'data' events (the flow tool is sequential). */
export class SocketReader {
  #queue: Buffer[] = []
  #ended = false
  #wake: (() => void) | undefined

  constructor (socket: Socket) {
    socket.on('data', (b: Buffer) => { this.#queue.push(b); this.#notify() })
    socket.on('end', () => { this.#ended = true; this.#notify() })
    socket.on('close', () => { this.#ended = true; this.#notify() })
    socket.on('error', () => { this.#ended = true; this.#notify() })
  }

  #notify (): void { const w = this.#wake; this.#wake = undefined; w?.() }

  /** Next chunk, or undefined at end of stream. */
  async next (): Promise<Buffer | undefined> {
    while (this.#queue.length === 0) {
      if (this.#ended) return undefined
      await new Promise<void>((resolve) => { this.#wake = resolve })
    }
    return this.#queue.shift()
  }

  unshift (b: Buffer): void { if (b.length > 0) this.#queue.unshift(b) }

  /** Exactly n bytes, or fewer at end of stream. */
  async read (n: number): Promise<Buffer> {
    const parts: Buffer[] = []
    let have = 0
    while (have < n) {
      const chunk = await this.next()
      if (chunk === undefined) break
      const take = chunk.subarray(0, n - have)
      this.unshift(chunk.subarray(take.length))
      parts.push(take)
      have += take.length
    }
    return Buffer.concat(parts)
  }
}

/** Serve one connection: requests one after another until the client closes. */
export async function serveFlow (socket: Socket): Promise<void> {
  socket.setNoDelay(true)
  socket.on('error', () => { /* client went away; close ends the loop */ })
  const reader = new SocketReader(socket)
  for (;;) {
    const head = await reader.read(REQUEST_SIZE)
    if (head.length < REQUEST_SIZE) break
    const req = decodeRequest(head)
    if (req === undefined || typeof req === 'string') { socket.destroy(); return }
    if (req.direction === 'download') {
      await sendFrames(socket, req.durationMs)
    } else {
      const m = await receiveFrames(reader)
      socket.write(encodeReport({ totalBytes: m.totalBytes, elapsedMs: Math.round(m.elapsedMs), warmBytes: m.warmBytes }))
    }
  }
  socket.end()
}

/** Start flow servers on each address; MPTCP listeners also accept plain TCP clients. */
export async function startFlowServers (hosts: readonly string[], port: number = LAB_PORTS.flow, protocol: Protocol = 'mptcp'): Promise<Server[]> {
  const servers: Server[] = []
  for (const host of hosts) {
    servers.push(await listen({ host, port, protocol }, (s) => { serveFlow(s).catch(() => { s.destroy() }) }))
  }
  return servers
}

function round2 (x: number): number { return Math.round(x * 100) / 100 }

async function main (argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      listen: { type: 'string', multiple: true },
      host: { type: 'string' },
      port: { type: 'string' },
      seconds: { type: 'string' },
      directions: { type: 'string' },
      protocol: { type: 'string' },
      local: { type: 'string' }
    }
  })
  const protocol = values.protocol === 'tcp' ? 'tcp' : 'mptcp'
  const port = values.port !== undefined ? Number(values.port) : LAB_PORTS.flow
  const print = (l: unknown): void => { process.stdout.write(JSON.stringify(l) + '\n') }
  if (positionals[0] === 'server') {
    const hosts = values.listen ?? []
    await startFlowServers(hosts, port, protocol)
    print({ type: 'ready', pid: process.pid, hosts, port, protocol })
    return
  }
  if (positionals[0] === 'client' && values.host !== undefined) {
    const directions = (values.directions ?? 'download,upload').split(',') as FlowDirection[]
    await runFlowClient({
      host: values.host,
      port,
      protocol,
      seconds: Number(values.seconds ?? '10'),
      directions,
      ...(values.local !== undefined ? { localAddress: values.local } : {})
    }, print)
    return
  }
  process.stderr.write('usage: flow-tool.ts server --listen <addr> … | client --host <addr> [--seconds N] [--directions download,upload]\n')
  process.exitCode = 2
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`flow-tool: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  })
}
