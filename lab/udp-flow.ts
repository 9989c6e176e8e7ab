/**
 * UDP flow tool of the lab (docs/udp.md), run inside a lab namespace:
 *
 *   serve --listen H [--listen H6] --port P
 *        echo server: every datagram goes back unchanged to its sender; prints {"type":"ready"},
 *        then {"type":"source", address, port} for each new sender (what the far end sees)
 *   stream --host H --port P [--pps 50] [--size 160] [--seconds 10] [--src-port N]
 *        a constant-rate flow like a VoIP call: datagram k carries k (u32) and its send time; the
 *        echoes give loss, duplicates, the longest gap between two echoes and the RTT; prints
 *        {"type":"result", sent, received, lost, duplicates, reordered, longestGapMs, rttP50Ms, rttP99Ms, rttMaxMs}
 *
 * Bounded: a stream sends at most pps × seconds datagrams (≤ 100 000) and waits 2 s for the last
 * echoes. Addresses are the lab's documentation ranges.
 */
import { createSocket, type Socket } from 'node:dgram'
import { once } from 'node:events'
import { isIPv6 } from 'node:net'
import { parseArgs } from 'node:util'

const MAX_DATAGRAMS = 100_000
const TAIL_MS = 2000
const HEADER = 12

function print (o: Record<string, unknown>): void { process.stdout.write(JSON.stringify(o) + '\n') }

async function serve (hosts: readonly string[], port: number): Promise<void> {
  const seen = new Set<string>()
  const sockets: Socket[] = []
  for (const host of hosts) {
    const s = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', ipv6Only: isIPv6(host) })
    s.on('message', (msg, rinfo) => {
      const id = `${rinfo.address}|${rinfo.port}`
      if (!seen.has(id)) { seen.add(id); print({ type: 'source', address: rinfo.address, port: rinfo.port }) }
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

function quantile (sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number
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
  const r2 = (x: number): number => Math.round(x * 100) / 100
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

async function main (): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2)
  const { values: v } = parseArgs({
    args: rest,
    options: {
      listen: { type: 'string', multiple: true },
      host: { type: 'string' },
      port: { type: 'string' },
      pps: { type: 'string', default: '50' },
      size: { type: 'string', default: '160' },
      seconds: { type: 'string', default: '10' },
      'src-port': { type: 'string', default: '0' }
    }
  })
  const port = Number(v.port)
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error('--port 1–65535 required')
  if (cmd === 'serve') { await serve(v.listen ?? [], port); return }
  if (cmd === 'stream') {
    if (v.host === undefined) throw new Error('--host required')
    const pps = Number(v.pps)
    const seconds = Number(v.seconds)
    if (!(pps > 0 && pps <= 10_000) || !(seconds > 0 && seconds <= 600)) throw new Error('--pps 1–10000 and --seconds ≤ 600')
    print({ type: 'result', ...await stream(v.host, port, pps, Number(v.size), seconds, Number(v['src-port'])) })
    return
  }
  throw new Error(`usage: udp-flow.ts serve|stream … (got ${String(cmd)})`)
}

main().catch((err: unknown) => {
  process.stderr.write(`udp-flow: ${(err as Error).message}\n`)
  process.exit(2)
})
