/**
 * Helper process of test/e2e/transparent.e2e.test.ts, run inside a lab namespace.
 *
 *   serve --host H [--host H6] --ports 80,443 [--mptcp]   HTTP: GET /<n> answers n bytes; prints {"type":"ready"}
 *   get --host H --port P --bytes N [--mptcp] [--mark M] [--seconds S]
 *        one GET; prints {"type":"result", protocol, fallback, ttfbMs, bytes, seconds, mbps, subflows, subflowLocal, error}
 *   latency --host H --port P --count K [--mptcp] [--mark M]
 *        K sequential GETs of 100 bytes; prints {"type":"latency", ttfbMs: [...]} (connect start → first byte)
 *
 * The client is the stand-in for the CPE agent's transparent mode: an MPTCP socket straight to the
 * original destination (initial subflow over DSL by routing, joins by the kernel PM).
 */
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type net from 'node:net'
import { parseArgs } from 'node:util'
import { dial } from '../../shared/src/net/dial.ts'
import { listen } from '../../shared/src/net/listen.ts'
import { isMptcpFallback, mptcpFullInfo, socketProtocol } from '../../shared/src/net/sockopt.ts'

const CHUNK = Buffer.alloc(65_536, 0x61)

function handle (req: IncomingMessage, res: ServerResponse): void {
  const n = Number((req.url ?? '/').slice(1))
  if (!Number.isInteger(n) || n < 0) { res.writeHead(404).end(); return }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n, 'x-peer': req.socket.remoteAddress ?? '?' })
  let left = n
  const pump = (): void => {
    while (left > 0) {
      const k = Math.min(left, CHUNK.length)
      left -= k
      if (!res.write(k === CHUNK.length ? CHUNK : CHUNK.subarray(0, k))) { res.once('drain', pump); return }
    }
    res.end()
  }
  pump()
}

async function serve (hosts: string[], ports: number[], mptcp: boolean): Promise<void> {
  const http = createServer(handle)
  for (const host of hosts) {
    for (const port of ports) {
      await listen({ host, port, protocol: mptcp ? 'mptcp' : 'tcp', ...(host.includes(':') ? { v6Only: true } : {}) },
        (s) => { http.emit('connection', s) })
    }
  }
  process.stdout.write(JSON.stringify({ type: 'ready', hosts, ports, mptcp }) + '\n')
}

/** What `get` prints (with `type: 'result'`); the e2e test reads it. */
export interface GetResult {
  peer?: string,
  protocol: string,
  fallback: boolean,
  ttfbMs: number,
  bytes: number,
  seconds: number,
  mbps: number,
  subflows: number,
  subflowLocal: string[],
  error?: string
}

async function get (host: string, port: number, bytes: number, mptcp: boolean, mark: number | undefined): Promise<GetResult> {
  const t0 = performance.now()
  const s: net.Socket = dial({ host, port, protocol: mptcp ? 'mptcp' : 'tcp', noDelay: true, ...(mark === undefined ? {} : { mark }) })
  const out: GetResult = { protocol: '?', fallback: true, ttfbMs: -1, bytes: 0, seconds: 0, mbps: 0, subflows: 0, subflowLocal: [] }
  const local = new Set<string>()
  const sample = (): void => {
    try {
      const fi = mptcpFullInfo(s)
      if (fi === undefined) return
      out.subflows = Math.max(out.subflows, fi.subflows.length)
      for (const sf of fi.subflows) local.add(sf.localAddress)
    } catch { /* closed */ }
  }
  const timer = setInterval(sample, 250)
  try {
    s.on('connect', () => {
      out.protocol = socketProtocol(s)
      s.write(`GET /${bytes} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
    })
    let first = 0
    s.on('data', (d: Buffer) => {
      if (first === 0) {
        first = performance.now()
        out.ttfbMs = first - t0
        try { out.fallback = isMptcpFallback(s) } catch { /* closed */ }
        const peer = /x-peer: (\S+)/i.exec(d.toString('latin1', 0, Math.min(d.length, 1024)))?.[1]
        if (peer !== undefined) out.peer = peer
      }
      out.bytes += d.length
      if (out.bytes > bytes - 65_536 && out.bytes < bytes) sample()
    })
    await Promise.race([once(s, 'end'), once(s, 'close')])
    const end = performance.now()
    out.seconds = (end - (first || end)) / 1000
    out.mbps = out.seconds > 0 ? (out.bytes * 8) / out.seconds / 1e6 : 0
  } catch (err) {
    out.error = (err as { code?: string }).code ?? (err as Error).message
  } finally {
    clearInterval(timer)
    out.subflowLocal = [...local]
    s.destroy()
  }
  return out
}

async function main (): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      host: { type: 'string', multiple: true },
      ports: { type: 'string' },
      port: { type: 'string' },
      bytes: { type: 'string', default: '1000' },
      count: { type: 'string', default: '10' },
      mptcp: { type: 'boolean', default: false },
      mark: { type: 'string' }
    }
  })
  process.stdout.on('error', () => {})
  const host = values.host?.[0] ?? '127.0.0.1'
  const mark = values.mark === undefined ? undefined : Number(values.mark)
  const cmd = positionals[0]
  if (cmd === 'serve') {
    await serve(values.host ?? [], (values.ports ?? '').split(',').map(Number), values.mptcp)
    return
  }
  if (cmd === 'get') {
    const r = await get(host, Number(values.port), Number(values.bytes), values.mptcp, mark)
    process.stdout.write(JSON.stringify({ type: 'result', ...r }) + '\n')
    return
  }
  if (cmd === 'latency') {
    const ttfb: number[] = []
    const errors: string[] = []
    for (let i = 0; i < Number(values.count); i++) {
      const r = await get(host, Number(values.port), 100, values.mptcp, mark)
      if (r.error !== undefined || r.ttfbMs < 0) errors.push(r.error ?? 'no data')
      else ttfb.push(r.ttfbMs)
    }
    process.stdout.write(JSON.stringify({ type: 'latency', ttfbMs: ttfb, errors }) + '\n')
    return
  }
  throw new Error(`unknown command ${String(cmd)}`)
}

main().catch((err: unknown) => {
  process.stderr.write(`transparent-peer: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
})
