/**
 * Peers of splice-relay.e2e.test.ts, run inside its namespace; one JSON line each on stdout.
 *   server --listen <ip:port> --down <bytes>   per connection: hash what arrives until FIN, then send <bytes> of the pattern and FIN
 *   client --proxy <ip:port> --dest <ip:port> --up <bytes>   SOCKS5 CONNECT, send <bytes> of the pattern and FIN, hash what comes back
 * The client runs under `mptcpize run` (MPTCP to the concentrator).
 */
import { createHash } from 'node:crypto'
import net from 'node:net'
import { parseArgs } from 'node:util'

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { listen: { type: 'string' }, proxy: { type: 'string' }, dest: { type: 'string' }, up: { type: 'string' }, down: { type: 'string' } }
})
const out = (o: Record<string, unknown>): void => { process.stdout.write(JSON.stringify(o) + '\n') }
const hostPort = (t: string | undefined): { host: string, port: number } => {
  const [host, port] = (t ?? '').split(':')
  return { host: host ?? '', port: Number(port) }
}

/** 1 MiB of the pattern, written `bytes / 1 MiB` times (the test computes the same digest). */
function sendPattern (s: net.Socket, bytes: number): void {
  const chunk = Buffer.alloc(1 << 20)
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31 + 7) & 0xff
  let left = bytes
  const pump = (): void => {
    while (left > 0) {
      const n = Math.min(left, chunk.length)
      left -= n
      if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n))) { s.once('drain', pump); return }
    }
    s.end()
  }
  pump()
}

function hashUntilEnd (s: net.Socket, done: (r: { bytes: number, sha: string }) => void): void {
  const h = createHash('sha256')
  let bytes = 0
  s.on('data', (c: Buffer) => { h.update(c); bytes += c.length })
  s.once('end', () => { done({ bytes, sha: h.digest('hex') }) })
}

function server (): void {
  const { host, port } = hostPort(values.listen)
  const down = Number(values.down)
  const srv = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {})
    hashUntilEnd(s, (r) => { out({ type: 'received', ...r }); sendPattern(s, down) })
  })
  srv.listen({ host, port }, () => { out({ type: 'ready' }) })
}

function client (): void {
  const proxy = hostPort(values.proxy)
  const dest = hostPort(values.dest)
  const up = Number(values.up)
  const s = net.connect({ host: proxy.host, port: proxy.port, allowHalfOpen: true })
  s.on('error', (e) => { out({ type: 'error', message: e.message }); process.exitCode = 1 })
  const req = Buffer.from([5, 1, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0])
  dest.host.split('.').forEach((o, i) => { req[7 + i] = Number(o) })
  req.writeUInt16BE(dest.port, 11)
  s.once('connect', () => { s.write(req) })
  let got = Buffer.alloc(0)
  const onHandshake = (b: Buffer): void => {
    got = Buffer.concat([got, b])
    if (got.length < 12) return
    s.off('data', onHandshake)
    if (got[1] !== 0 || got[3] !== 0) { out({ type: 'error', message: `refused ${got.toString('hex')}` }); s.destroy(); return }
    const rest = got.subarray(12)
    const h = createHash('sha256').update(rest)
    let bytes = rest.length
    s.on('data', (c: Buffer) => { h.update(c); bytes += c.length })
    s.once('end', () => { out({ type: 'received', bytes, sha: h.digest('hex') }) })
    sendPattern(s, up)
  }
  s.on('data', onHandshake)
}

if (positionals[0] === 'server') server()
else if (positionals[0] === 'client') client()
else { process.stderr.write('usage: splice-relay-peer.ts server|client …\n'); process.exitCode = 2 }
