/**
 * UDP flow tool of the lab (docs/udp.md), run inside a lab namespace:
 *
 *   serve --listen H [--listen H6] --port P [--port P2]
 *        echo server: every datagram goes back unchanged to its sender; prints {"type":"ready"},
 *        then {"type":"source", address, port} for each new sender (what the far end sees)
 *   stream --host H --port P [--pps 50] [--size 160] [--seconds 10] [--src-port N]
 *        a constant-rate flow like a VoIP call: datagram k carries k (u32) and its send time; the
 *        echoes give loss, duplicates, the longest gap between two echoes and the RTT; prints
 *        {"type":"result", sent, received, lost, duplicates, reordered, longestGapMs, rttP50Ms, rttP99Ms, rttMaxMs}
 *   bulk --host H --port P --direction down|up [--mbps 10] [--seconds 10] [--size 1200]
 *        one bulk flow like a QUIC download (down: the server sends at --mbps to the requester) or
 *        upload (up: the client sends, the server acks each datagram with its header); prints
 *        {"type":"bulk", direction, offeredMbps, seconds, sent, received, lossPct, goodputMbps}
 *   flows --host H --port P [--count 200] [--parallel 20] [--timeout-ms 2000]
 *        many short flows, like DNS: each from a new socket (a new 5-tuple), one datagram, one echo
 *        awaited; prints {"type":"flows", count, answered, rttP50Ms, rttP99Ms, rttMaxMs}
 *
 * Bounded: a stream sends at most pps × seconds datagrams (≤ 100 000) and waits 2 s for the last
 * echoes. Addresses are the lab's documentation ranges.
 */
import { createSocket, type Socket } from 'node:dgram'
import { once } from 'node:events'
import { isIPv6 } from 'node:net'
import { parseArgs } from 'node:util'
import { quantile } from './summary.ts'

const MAX_DATAGRAMS = 100_000
const TAIL_MS = 2000
const HEADER = 12
/** Byte 12 of a datagram: 0 echo it, 1 answer with its header only (upstream bulk), 2 a downstream bulk request. */
const KIND_ACK = 1
const KIND_BULK_REQUEST = 2
/** Bounds of a downstream bulk request: rate, duration, datagram size. */
const BULK_MAX_KBPS = 1_000_000
const BULK_MAX_SECONDS = 60
const bulkSenders = new Set<string>()

/**
 * Downstream bulk: the requester gets `kbps` of `size`-byte datagrams for `seconds` (once per source
 * at a time; bounded in rate and time), each with its sequence number.
 */
function sendBulk (s: Socket, id: string, req: Buffer, address: string, port: number): void {
  if (req.length < HEADER + 9 || bulkSenders.has(id)) return
  const kbps = Math.min(BULK_MAX_KBPS, req.readUInt32BE(HEADER + 1))
  const seconds = Math.min(BULK_MAX_SECONDS, req.readUInt16BE(HEADER + 5))
  const size = Math.max(HEADER, Math.min(1400, req.readUInt16BE(HEADER + 7)))
  const pps = (kbps * 1000) / (size * 8)
  const total = Math.min(MAX_DATAGRAMS * 10, Math.round(pps * seconds))
  bulkSenders.add(id)
  const payload = Buffer.alloc(size)
  const start = performance.now()
  let k = 0
  const tick = (): void => {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * pps))
    for (; k < due; k++) {
      payload.writeUInt32BE(k, 0)
      payload.writeDoubleBE(performance.now(), 4)
      s.send(payload, port, address)
    }
    if (k < total) setTimeout(tick, 2)
    else setTimeout(() => { bulkSenders.delete(id) }, 1000)
  }
  tick()
}

/** Two decimals, for the printed figures. */
const r2 = (x: number): number => Math.round(x * 100) / 100

function print (o: Record<string, unknown>): void { process.stdout.write(JSON.stringify(o) + '\n') }

async function serve (hosts: readonly string[], ports: readonly number[]): Promise<void> {
  const seen = new Set<string>()
  const sockets: Socket[] = []
  for (const [host, port] of hosts.flatMap((h) => ports.map((p) => [h, p] as const))) {
    const s = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', ipv6Only: isIPv6(host) })
    s.on('message', (msg, rinfo) => {
      const id = `${rinfo.address}|${rinfo.port}`
      if (!seen.has(id)) { seen.add(id); print({ type: 'source', address: rinfo.address, port: rinfo.port }) }
      const kind = msg.length > HEADER ? msg[HEADER] : 0
      if (kind === KIND_ACK) { s.send(msg.subarray(0, HEADER + 1), rinfo.port, rinfo.address); return }
      if (kind === KIND_BULK_REQUEST) { sendBulk(s, id, msg, rinfo.address, rinfo.port); return }
      s.send(msg, rinfo.port, rinfo.address)
    })
    s.bind(port, host)
    await once(s, 'listening')
    sockets.push(s)
  }
  print({ type: 'ready' })
  await new Promise<void>((resolve) => { process.once('SIGTERM', resolve) })
  for (const s of sockets) s.close()
}

export interface StreamResult {
  readonly sent: number
  readonly received: number
  readonly lost: number
  readonly duplicates: number
  readonly reordered: number
  readonly longestGapMs: number
  readonly rttP50Ms: number
  readonly rttP99Ms: number
  readonly rttMaxMs: number
}

async function stream (host: string, port: number, pps: number, size: number, seconds: number, srcPort: number): Promise<StreamResult> {
  const total = Math.min(MAX_DATAGRAMS, Math.round(pps * seconds))
  const s = createSocket(isIPv6(host) ? 'udp6' : 'udp4')
  s.bind(srcPort)
  await once(s, 'listening')
  const got = new Uint8Array(total)
  const rtts: number[] = []
  let received = 0
  let duplicates = 0
  let reordered = 0
  let highest = -1
  let lastArrival: number | undefined
  let longestGap = 0
  s.on('message', (msg) => {
    if (msg.length < HEADER) return
    const now = performance.now()
    const seq = msg.readUInt32BE(0)
    if (seq >= total) return
    if (got[seq] === 1) { duplicates++; return }
    got[seq] = 1
    received++
    if (seq < highest) reordered++
    highest = Math.max(highest, seq)
    rtts.push(now - msg.readDoubleBE(4))
    if (lastArrival !== undefined) longestGap = Math.max(longestGap, now - lastArrival)
    lastArrival = now
  })
  const payload = Buffer.alloc(Math.max(HEADER, size))
  const start = performance.now()
  for (let k = 0; k < total; k++) {
    const due = start + (k * 1000) / pps
    const wait = due - performance.now()
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait))
    payload.writeUInt32BE(k, 0)
    payload.writeDoubleBE(performance.now(), 4)
    s.send(payload, port, host)
  }
  await new Promise((resolve) => setTimeout(resolve, TAIL_MS))
  s.close()
  const sorted = rtts.sort((a, b) => a - b)
  return {
    sent: total,
    received,
    lost: total - received,
    duplicates,
    reordered,
    longestGapMs: r2(longestGap),
    rttP50Ms: r2(quantile(sorted, 0.5)),
    rttP99Ms: r2(quantile(sorted, 0.99)),
    rttMaxMs: r2(sorted[sorted.length - 1] ?? Number.NaN)
  }
}

export interface FlowsResult {
  readonly count: number
  readonly answered: number
  readonly rttP50Ms: number
  readonly rttP99Ms: number
  readonly rttMaxMs: number
}

async function oneShot (host: string, port: number, timeoutMs: number): Promise<number | undefined> {
  const s = createSocket(isIPv6(host) ? 'udp6' : 'udp4')
  try {
    const t0 = performance.now()
    const answer = once(s, 'message').then(() => performance.now() - t0)
    s.send(Buffer.alloc(48), port, host)
    return await Promise.race([answer, new Promise<undefined>((resolve) => setTimeout(() => { resolve(undefined) }, timeoutMs))])
  } finally {
    s.close()
  }
}

async function flows (host: string, port: number, count: number, parallel: number, timeoutMs: number): Promise<FlowsResult> {
  const rtts: number[] = []
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++
      const rtt = await oneShot(host, port, timeoutMs)
      if (rtt !== undefined) rtts.push(rtt)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, count)) }, worker))
  const sorted = rtts.sort((a, b) => a - b)
  return {
    count,
    answered: rtts.length,
    rttP50Ms: r2(quantile(sorted, 0.5)),
    rttP99Ms: r2(quantile(sorted, 0.99)),
    rttMaxMs: r2(sorted[sorted.length - 1] ?? Number.NaN)
  }
}

export interface BulkResult {
  readonly direction: 'up' | 'down'
  readonly offeredMbps: number
  readonly seconds: number
  readonly sent: number
  readonly received: number
  readonly lossPct: number
  readonly goodputMbps: number
}

/** Upstream bulk: datagrams at `mbps` with the ack flag; the acks give what arrived. */
async function bulkUp (host: string, port: number, mbps: number, seconds: number, size: number): Promise<BulkResult> {
  const s = createSocket(isIPv6(host) ? 'udp6' : 'udp4')
  let received = 0
  s.on('message', () => { received++ })
  const pps = (mbps * 1e6) / (size * 8)
  const total = Math.min(MAX_DATAGRAMS * 10, Math.round(pps * seconds))
  const payload = Buffer.alloc(size)
  payload[HEADER] = KIND_ACK
  const start = performance.now()
  let k = 0
  while (k < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * pps))
    for (; k < due; k++) {
      payload.writeUInt32BE(k, 0)
      s.send(payload, port, host)
    }
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
  await new Promise((resolve) => setTimeout(resolve, TAIL_MS))
  s.close()
  return bulkResult('up', mbps, seconds, total, received, size)
}

/** Downstream bulk: asks the server for `mbps` for `seconds` and counts what arrives. */
async function bulkDown (host: string, port: number, mbps: number, seconds: number, size: number): Promise<BulkResult> {
  const s = createSocket(isIPv6(host) ? 'udp6' : 'udp4')
  let received = 0
  let highest = -1
  s.on('message', (msg) => {
    received++
    if (msg.length >= 4) highest = Math.max(highest, msg.readUInt32BE(0))
  })
  const req = Buffer.alloc(HEADER + 9)
  req[HEADER] = KIND_BULK_REQUEST
  req.writeUInt32BE(Math.round(mbps * 1000), HEADER + 1)
  req.writeUInt16BE(seconds, HEADER + 5)
  req.writeUInt16BE(size, HEADER + 7)
  s.send(req, port, host)
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000 + TAIL_MS))
  s.close()
  const total = Math.round(((mbps * 1e6) / (size * 8)) * seconds)
  return bulkResult('down', mbps, seconds, Math.max(total, highest + 1), received, size)
}

function bulkResult (direction: 'up' | 'down', mbps: number, seconds: number, sent: number, received: number, size: number): BulkResult {
  return {
    direction,
    offeredMbps: mbps,
    seconds,
    sent,
    received,
    lossPct: r2(sent === 0 ? 0 : (100 * (sent - received)) / sent),
    goodputMbps: r2((received * size * 8) / seconds / 1e6)
  }
}

const OPTIONS = {
  listen: { type: 'string', multiple: true },
  host: { type: 'string' },
  port: { type: 'string', multiple: true },
  pps: { type: 'string', default: '50' },
  size: { type: 'string' },
  seconds: { type: 'string', default: '10' },
  'src-port': { type: 'string', default: '0' },
  count: { type: 'string', default: '200' },
  parallel: { type: 'string', default: '20' },
  'timeout-ms': { type: 'string', default: '2000' },
  mbps: { type: 'string', default: '10' },
  direction: { type: 'string', default: 'down' }
} as const

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values']

function hostOf (v: Values): string {
  if (v.host === undefined) throw new Error('--host required')
  return v.host
}

const COMMANDS: Record<string, (v: Values, port: number, ports: readonly number[]) => Promise<void>> = {
  serve: async (v, _port, ports) => { await serve(v.listen ?? [], ports) },
  stream: async (v, port) => {
    const pps = Number(v.pps)
    const seconds = Number(v.seconds)
    if (!(pps > 0 && pps <= 10_000) || !(seconds > 0 && seconds <= 600)) throw new Error('--pps 1–10000 and --seconds ≤ 600')
    print({ type: 'result', ...await stream(hostOf(v), port, pps, Number(v.size ?? 160), seconds, Number(v['src-port'])) })
  },
  flows: async (v, port) => {
    print({ type: 'flows', ...await flows(hostOf(v), port, Math.min(MAX_DATAGRAMS, Number(v.count)), Number(v.parallel), Number(v['timeout-ms'])) })
  },
  bulk: async (v, port) => {
    const mbps = Number(v.mbps)
    const seconds = Number(v.seconds)
    const size = Math.max(HEADER + 1, Math.min(1400, Number(v.size ?? 1200)))
    if (!(mbps > 0 && mbps <= 1000) || !(seconds > 0 && seconds <= BULK_MAX_SECONDS)) throw new Error('--mbps 1–1000 and --seconds ≤ 60')
    const host = hostOf(v)
    print({ type: 'bulk', ...(v.direction === 'up' ? await bulkUp(host, port, mbps, seconds, size) : await bulkDown(host, port, mbps, seconds, size)) })
  }
}

async function main (): Promise<void> {
  const [cmd = '', ...rest] = process.argv.slice(2)
  const { values } = parseArgs({ args: rest, options: OPTIONS })
  const ports = (values.port ?? []).map(Number)
  if (ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) throw new Error('--port 1–65535 required')
  const run = COMMANDS[cmd]
  if (run === undefined) throw new Error(`usage: udp-flow.ts ${Object.keys(COMMANDS).join('|')} … (got ${JSON.stringify(cmd)})`)
  await run(values, ports[0] as number, ports)
}

main().catch((err: unknown) => {
  process.stderr.write(`udp-flow: ${(err as Error).message}\n`)
  process.exit(2)
})
