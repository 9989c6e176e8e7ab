/**
 * Client and sink processes of the relay benchmark (bench/relay.ts), run inside the benchmark's
 * namespace. JSON lines on stdout. MPTCP clients run under `mptcpize run`.
 *
 *   sink --listen <ip:port>                          discard server; prints {"type":"conn",bytes,ms} per closed connection
 *   bulk --proxy <ip:port> [--socks <ip:port>] --seconds <s>   one connection (SOCKS5 CONNECT first when --socks), writes for s seconds
 *   idle --proxy <ip:port> --socks <ip:port> --count <n> [--concurrency <c>]   n SOCKS5 relays held until SIGTERM
 *   rr --listen <ip:port>                            request/response server: reads 64 bytes, answers 64, ends
 *   churn --proxy <ip:port> [--socks <ip:port>] --seconds <s> [--concurrency <c>] [--count <max>]
 *        short connections (connect, SOCKS5 CONNECT when --socks, 64 bytes each way, close) for s seconds or at most
 *        max (≤ 20000) connections; {"type":"result",count,failed,ms}
 */
import net from 'node:net'
import { parseArgs } from 'node:util'

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    listen: { type: 'string' },
    proxy: { type: 'string' },
    socks: { type: 'string' },
    seconds: { type: 'string', default: '5' },
    count: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '200' }
  }
})

const out = (o: Record<string, unknown>): void => { process.stdout.write(JSON.stringify(o) + '\n') }

function hostPort (text: string | undefined): { host: string, port: number } {
  const m = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(text ?? '')
  if (m === null) throw new Error(`want ipv4:port, got ${String(text)}`)
  return { host: m[1] as string, port: Number(m[2]) }
}

/** Greeting (no auth) + CONNECT to an IPv4 destination, pipelined in one write. */
function socksRequest (dest: { host: string, port: number }): Buffer {
  const b = Buffer.from([5, 1, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0])
  dest.host.split('.').forEach((o, i) => { b[7 + i] = Number(o) })
  b.writeUInt16BE(dest.port, 11)
  return b
}

/** Connect, and when `socks` is given run the SOCKS5 handshake (2 + 10 reply bytes, REP 00). */
async function open (proxy: { host: string, port: number }, socks: { host: string, port: number } | undefined): Promise<net.Socket> {
  const s = net.connect({ host: proxy.host, port: proxy.port, noDelay: true })
  await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject) })
  if (socks === undefined) return s
  s.write(socksRequest(socks))
  let got = Buffer.alloc(0)
  await new Promise<void>((resolve, reject) => {
    const onData = (b: Buffer): void => {
      got = Buffer.concat([got, b])
      if (got.length < 12) return
      s.off('data', onData)
      if (got[1] !== 0 || got[3] !== 0) reject(new Error(`SOCKS5 refused: ${got.subarray(0, 12).toString('hex')}`))
      else resolve()
    }
    s.on('data', onData)
    s.once('error', reject)
    s.once('close', () => { reject(new Error('closed during the handshake')) })
  })
  s.pause()
  return s
}

function sink (): void {
  const { host, port } = hostPort(values.listen)
  const server = net.createServer((s) => {
    let bytes = 0
    let first = 0
    s.on('data', (b: Buffer) => { if (bytes === 0) first = performance.now(); bytes += b.length })
    s.on('error', () => {})
    s.on('end', () => { s.end() })
    s.on('close', () => { if (bytes > 0) out({ type: 'conn', bytes, ms: performance.now() - first }) })
  })
  server.maxConnections = 100_000
  server.listen({ host, port, backlog: 4096 }, () => { out({ type: 'ready', host, port }) })
}

async function bulk (): Promise<void> {
  const s = await open(hostPort(values.proxy), values.socks === undefined ? undefined : hostPort(values.socks))
  const chunk = Buffer.alloc(128 * 1024, 0x61)
  const until = performance.now() + Number(values.seconds) * 1000
  let written = 0
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject)
    const pump = (): void => {
      while (performance.now() < until) {
        written += chunk.length
        if (!s.write(chunk)) { s.once('drain', pump); return }
      }
      s.end(resolve)
    }
    pump()
  })
  s.resume()
  await new Promise((resolve) => s.once('close', resolve))
  out({ type: 'result', written })
}

async function idle (): Promise<void> {
  const proxy = hostPort(values.proxy)
  const dest = hostPort(values.socks)
  const count = Number(values.count)
  const held: net.Socket[] = []
  let failed = 0
  let next = 0
  const started = performance.now()
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++
      try {
        const s = await open(proxy, dest)
        s.on('error', () => {})
        held.push(s)
      } catch { failed++ }
    }
  }
  await Promise.all(Array.from({ length: Number(values.concurrency) }, worker))
  out({ type: 'ready', opened: held.length, failed, ms: Math.round(performance.now() - started) })
  const keepAlive = setInterval(() => {}, 60_000)
  await new Promise((resolve) => process.once('SIGTERM', resolve))
  clearInterval(keepAlive)
  for (const s of held) s.destroy()
  out({ type: 'result', closed: held.length })
}

const RR_BYTES = 64

function rr (): void {
  const { host, port } = hostPort(values.listen)
  const reply = Buffer.alloc(RR_BYTES, 0x62)
  const server = net.createServer((s) => {
    let got = 0
    s.on('data', (b: Buffer) => {
      const before = got
      got += b.length
      if (before < RR_BYTES && got >= RR_BYTES) s.end(reply)
    })
    s.on('error', () => {})
  })
  server.maxConnections = 100_000
  server.listen({ host, port, backlog: 4096 }, () => { out({ type: 'ready', host, port }) })
}

/** One short connection: connect (+ SOCKS5), 64 bytes out, 64 bytes back, closed by the server's FIN. */
async function oneShort (proxy: { host: string, port: number }, socks: { host: string, port: number } | undefined): Promise<void> {
  const s = await open(proxy, socks)
  try {
    await new Promise<void>((resolve, reject) => {
      let got = 0
      s.on('data', (b: Buffer) => { got += b.length })
      s.once('end', () => { if (got >= RR_BYTES) resolve(); else reject(new Error(`short answer: ${got} bytes`)) })
      s.once('error', reject)
      s.setTimeout(5000, () => { reject(new Error('ETIMEDOUT')) })
      s.resume()
      s.end(Buffer.alloc(RR_BYTES, 0x61))
    })
  } finally {
    s.destroy()
  }
}

async function churn (): Promise<void> {
  const proxy = hostPort(values.proxy)
  const socks = values.socks === undefined ? undefined : hostPort(values.socks)
  const max = Math.min(Number(values.count) > 1 ? Number(values.count) : 20_000, 20_000)
  const started = performance.now()
  const until = started + Math.min(Number(values.seconds), 30) * 1000
  let count = 0
  let failed = 0
  let begun = 0
  const worker = async (): Promise<void> => {
    while (performance.now() < until && begun < max) {
      begun++
      try { await oneShort(proxy, socks); count++ } catch { failed++ }
    }
  }
  await Promise.all(Array.from({ length: Math.min(Number(values.concurrency), 512) }, worker))
  out({ type: 'result', count, failed, ms: Math.round(performance.now() - started) })
}

const commands: Record<string, () => void | Promise<void>> = { sink, bulk, idle, rr, churn }
const command = commands[positionals[0] ?? '']
if (command === undefined) {
  process.stderr.write('usage: relay-peer.ts sink|bulk|idle|rr|churn …\n')
  process.exit(2)
}
Promise.resolve(command()).catch((err: unknown) => {
  process.stderr.write(`relay-peer: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
