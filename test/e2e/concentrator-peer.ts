/**
 * Peer processes for concentrator.e2e.test.ts, run inside lab namespaces (Node cannot switch
 * namespaces itself). Each prints JSON lines on stdout; `{"type":"ready"}` when it is listening or
 * holding, `{"type":"result",…}` when done.
 *
 *   dns   --listen <ip> --name <fqdn> --a <ip> --aaaa <ip>      tiny UDP DNS responder (port 53);
 *         `v6.<fqdn>` answers AAAA only (NOERROR, no A record)
 *   fetch --proxy <host:port> --dest <host:port> --path <p>     HTTP GET through SOCKS5 (`socks` package)
 *   slow  --proxy <host:port> [--count <n>]                     greeting, then silence; time until closed (n at once: extremes)
 *   idle  --proxy <host:port> --dest <host:port>                relay to echo, one ping, then silence
 *   hold  --proxy <host:port> --dest <host:port> --count <n> [--local <ip>]   n relays held until SIGTERM
 */
import { createHash } from 'node:crypto'
import { createSocket } from 'node:dgram'
import net from 'node:net'
import { parseArgs } from 'node:util'
import { SocksClient } from 'socks'
import { hostPort, out } from '../helpers/peer-io.ts'

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    listen: { type: 'string' },
    name: { type: 'string' },
    a: { type: 'string' },
    aaaa: { type: 'string' },
    proxy: { type: 'string' },
    dest: { type: 'string' },
    path: { type: 'string', default: '/' },
    count: { type: 'string', default: '1' },
    local: { type: 'string' }
  }
})

/** A DNS answer for one A/AAAA question: header, the question copied, 0 or 1 answer. */
function dnsAnswer (query: Buffer, name: string, a: string, aaaa: string): Buffer | undefined {
  if (query.length < 17) return undefined
  let off = 12
  const labels: string[] = []
  while (off < query.length && query[off] !== 0) {
    const len = query[off] as number
    labels.push(query.subarray(off + 1, off + 1 + len).toString('latin1'))
    off += 1 + len
  }
  const qEnd = off + 5
  if (qEnd > query.length) return undefined
  const qtype = query.readUInt16BE(off + 1)
  const asked = labels.join('.').toLowerCase()
  const v6Only = asked === `v6.${name.toLowerCase()}`
  const known = asked === name.toLowerCase() || v6Only
  const rdata = !known ? undefined : qtype === 1 && !v6Only ? ipv4Bytes(a) : qtype === 28 ? ipv6Bytes(aaaa) : undefined
  const header = Buffer.alloc(12)
  header.writeUInt16BE(query.readUInt16BE(0), 0)
  header.writeUInt16BE(known ? 0x8180 : 0x8183, 2) // QR RD RA, NOERROR or NXDOMAIN
  header.writeUInt16BE(1, 4)
  header.writeUInt16BE(rdata === undefined ? 0 : 1, 6)
  const question = query.subarray(12, qEnd)
  if (rdata === undefined) return Buffer.concat([header, question])
  const rr = Buffer.alloc(12)
  rr.writeUInt16BE(0xc00c, 0)
  rr.writeUInt16BE(qtype, 2)
  rr.writeUInt16BE(1, 4)
  rr.writeUInt32BE(60, 6)
  rr.writeUInt16BE(rdata.length, 10)
  return Buffer.concat([header, question, rr, rdata])
}

function ipv4Bytes (ip: string): Buffer { return Buffer.from(ip.split('.').map(Number)) }
function ipv6Bytes (ip: string): Buffer {
  const [head = '', tail = ''] = ip.split('::')
  const h = head === '' ? [] : head.split(':')
  const t = tail === '' ? [] : tail.split(':')
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t]
  const b = Buffer.alloc(16)
  groups.forEach((g, i) => { b.writeUInt16BE(parseInt(g, 16), i * 2) })
  return b
}

function dns (): void {
  const host = values.listen ?? '0.0.0.0'
  const sock = createSocket(host.includes(':') ? 'udp6' : 'udp4')
  let queries = 0
  sock.on('message', (msg, rinfo) => {
    queries++
    const reply = dnsAnswer(msg, values.name ?? '', values.a ?? '0.0.0.0', values.aaaa ?? '::')
    if (reply !== undefined) sock.send(reply, rinfo.port, rinfo.address)
  })
  process.on('SIGTERM', () => { out({ type: 'result', queries }); process.exit(0) })
  sock.bind(53, host, () => { out({ type: 'ready', host }) })
}

async function connectVia (local?: string) {
  const proxy = hostPort(values.proxy)
  const dest = hostPort(values.dest)
  const info = await SocksClient.createConnection({
    proxy: { host: proxy.host, port: proxy.port, type: 5 },
    destination: { host: dest.host, port: dest.port },
    command: 'connect',
    timeout: 5000,
    ...(local !== undefined ? { socket_options: { localAddress: local } } : {})
  } as Parameters<typeof SocksClient.createConnection>[0])
  return info.socket
}

async function fetch (): Promise<void> {
  const sock = await connectVia()
  const dest = hostPort(values.dest)
  sock.write(`GET ${values.path ?? '/'} HTTP/1.0\r\nHost: ${dest.host}\r\n\r\n`)
  const chunks: Buffer[] = []
  for await (const c of sock) chunks.push(c as Buffer)
  const all = Buffer.concat(chunks)
  const sep = all.indexOf('\r\n\r\n')
  const body = all.subarray(sep + 4)
  out({
    type: 'result',
    status: all.subarray(0, all.indexOf('\r\n')).toString(),
    totalBytes: all.length,
    bodyBytes: body.length,
    sha256: createHash('sha256').update(body).digest('hex')
  })
}

/** Resolves with the ms from `since` to the socket's close, and the bytes it received meanwhile. */
async function closedAfter (s: net.Socket, since: number): Promise<{ closedAfterMs: number, bytes: number }> {
  let bytes = 0
  s.on('data', (b: Buffer) => { bytes += b.length })
  s.on('error', () => {})
  await new Promise((resolve) => s.once('close', resolve))
  return { closedAfterMs: Date.now() - since, bytes }
}

async function slowOne (proxy: { host: string, port: number }): Promise<{ closedAfterMs: number, bytes: number }> {
  const s = net.connect(proxy.port, proxy.host)
  await new Promise((resolve, reject) => { s.once('connect', resolve); s.once('error', reject) })
  s.write(Buffer.from([5, 1, 0]))
  return closedAfter(s, Date.now())
}

async function slow (): Promise<void> {
  const proxy = hostPort(values.proxy)
  const count = Number(values.count)
  if (count === 1) {
    const res = slowOne(proxy)
    out({ type: 'ready' })
    out({ type: 'result', ...await res })
    return
  }
  const all = await Promise.allSettled(Array.from({ length: count }, async () => slowOne(proxy)))
  const ok = all.flatMap((r) => r.status === 'fulfilled' ? [r.value] : [])
  const ms = ok.map((r) => r.closedAfterMs)
  const bytes: Record<string, number> = {}
  for (const r of ok) bytes[r.bytes] = (bytes[r.bytes] ?? 0) + 1
  const errors = all.flatMap((r) => r.status === 'rejected' ? [String((r.reason as Error).message)] : []).slice(0, 3)
  out({ type: 'result', count, closed: ok.length, failed: count - ok.length, minMs: Math.min(...ms), maxMs: Math.max(...ms), bytes, errors })
}

async function idle (): Promise<void> {
  const s = await connectVia()
  s.write('ping')
  await new Promise((resolve) => s.once('data', resolve))
  const since = Date.now()
  out({ type: 'ready' })
  out({ type: 'result', ...await closedAfter(s, since) })
}

async function hold (): Promise<void> {
  const count = Number(values.count)
  const results: Array<{ i: number, ok: boolean, error?: string }> = []
  const held: net.Socket[] = []
  for (let i = 0; i < count; i++) {
    try {
      const s = await connectVia(values.local)
      s.on('error', () => {})
      s.write('x')
      await new Promise((resolve) => s.once('data', resolve))
      held.push(s)
      results.push({ i, ok: true })
    } catch (err) {
      results.push({ i, ok: false, error: (err as Error).message })
    }
  }
  out({ type: 'ready', results })
  // Held until the test sends SIGTERM (stdin is not a pipe under lab.spawn).
  const keepAlive = setInterval(() => {}, 60_000)
  await new Promise((resolve) => process.once('SIGTERM', resolve))
  clearInterval(keepAlive)
  for (const s of held) s.destroy()
}

const commands: Record<string, () => void | Promise<void>> = { dns, fetch, slow, idle, hold }
const command = commands[positionals[0] ?? '']
if (command === undefined) {
  process.stderr.write('usage: concentrator-peer.ts dns|fetch|slow|idle|hold …\n')
  process.exit(2)
}
Promise.resolve(command()).catch((err: unknown) => {
  process.stderr.write(`concentrator-peer: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
