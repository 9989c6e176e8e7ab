/**
 * Helper process of test/e2e/crash-truncation.e2e.test.ts, run inside the test's namespace.
 *
 *   server --host H --port P      answers one line per connection:
 *                                 `DL <bytes> <paceMs>` → <bytes> of the pattern (64 KiB every paceMs, 0 = as fast as possible), then FIN;
 *                                 `RESET <bytes> <atBytes>` → as DL paced 10 ms, RST after atBytes; `ECHO` → echoes until FIN, then FIN
 *   relay --host H --port P --to PORT --client tcp|mptcp --server tcp|mptcp
 *                                 the project's relay (shared/src/net/relay.ts) between each accepted connection and a dial to PORT
 *   client --host H --port P --line L [--send N] [--protocol tcp|mptcp]
 *                                 sends L (and N pattern bytes then FIN for ECHO); prints {"type":"progress"} at 1 MiB and
 *                                 {"type":"result", bytes, end: "eof"|"error", code, exact}
 * Pattern byte i = i % 251. Every process prints {"type":"ready"} when listening / connected.
 */
import type net from 'node:net'
import { parseArgs } from 'node:util'
import { dial } from '../../shared/src/net/dial.ts'
import { listen } from '../../shared/src/net/listen.ts'
import { relay } from '../../shared/src/net/relay.ts'
import { pendingSocketError } from '../../shared/src/net/sockopt.ts'

const PERIOD = 251
/** The pattern bytes [offset, offset + n). */
const pattern = (offset: number, n: number): Buffer => {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = (offset + i) % PERIOD
  return b
}
const say = (o: Record<string, unknown>): void => { process.stdout.write(JSON.stringify(o) + '\n') }

function send (s: net.Socket, total: number, paceMs: number, resetAt?: number): void {
  let sent = 0
  const step = (): void => {
    while (sent < total && !s.destroyed) {
      if (resetAt !== undefined && sent >= resetAt) { s.resetAndDestroy(); return }
      const n = Math.min(65_536, total - sent)
      const ok = s.write(pattern(sent, n))
      sent += n
      if (paceMs > 0) { setTimeout(step, paceMs); return }
      if (!ok) { s.once('drain', step); return }
    }
    if (sent >= total) s.end()
  }
  step()
}

function serveOne (s: net.Socket): void {
  s.allowHalfOpen = true
  let head = ''
  const onData = (d: Buffer): void => {
    head += d.toString('latin1')
    const nl = head.indexOf('\n')
    if (nl < 0) return
    s.off('data', onData)
    const [cmd, a, b] = head.slice(0, nl).split(' ')
    const rest = Buffer.from(head.slice(nl + 1), 'latin1')
    if (cmd === 'ECHO') {
      if (rest.length > 0) s.write(rest)
      s.pipe(s)
    } else if (cmd === 'DL') send(s, Number(a), Number(b))
    else if (cmd === 'RESET') send(s, Number(a), 10, Number(b))
    else s.resetAndDestroy()
  }
  s.on('data', onData)
  s.on('error', () => {})
}

async function main (): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string' },
      to: { type: 'string' },
      client: { type: 'string', default: 'tcp' },
      server: { type: 'string', default: 'mptcp' },
      line: { type: 'string' },
      send: { type: 'string', default: '0' },
      protocol: { type: 'string', default: 'tcp' }
    }
  })
  const host = values.host
  const port = Number(values.port)
  const proto = (p: string): 'tcp' | 'mptcp' => (p === 'mptcp' ? 'mptcp' : 'tcp')
  if (positionals[0] === 'server') {
    await listen({ host, port, protocol: 'mptcp' }, serveOne)
    say({ type: 'ready', pid: process.pid })
  } else if (positionals[0] === 'relay') {
    await listen({ host, port, protocol: proto(values.client) }, (c) => {
      c.pause()
      const up = dial({ host, port: Number(values.to), protocol: proto(values.server) })
      up.once('connect', () => { relay(c, up, { idleTimeoutMs: 0, halfCloseTimeoutMs: 0 }) })
      up.once('error', () => { c.resetAndDestroy() })
    })
    say({ type: 'ready', pid: process.pid })
  } else {
    const s = dial({ host, port, protocol: proto(values.protocol) })
    s.allowHalfOpen = true
    let bytes = 0
    let exact = true
    let progressed = false
    s.once('connect', () => {
      say({ type: 'ready' })
      s.write(`${values.line}\n`)
      const n = Number(values.send)
      if (n > 0) {
        let off = 0
        const more = (): void => {
          while (off < n) {
            const k = Math.min(65_536, n - off)
            const ok = s.write(pattern(off, k))
            off += k
            if (!ok) { s.once('drain', more); return }
          }
          s.end()
        }
        more()
      }
    })
    s.on('data', (d: Buffer) => {
      if (exact && !d.equals(pattern(bytes, d.length))) exact = false
      bytes += d.length
      if (!progressed && bytes >= 1_048_576) { progressed = true; say({ type: 'progress', bytes }) }
    })
    s.on('end', () => {
      // Node reports a reset that arrives with the last bytes as an end of stream (libuv: POLLHUP
      // after a short read); the socket still holds the error, as a C client's read() would return it.
      const pending = pendingSocketError(s)
      if (pending !== undefined) say({ type: 'result', bytes, end: 'error', code: pending, readAsEnd: true, exact })
      else say({ type: 'result', bytes, end: 'eof', exact })
      s.end()
      s.destroy()
    })
    s.on('error', (e: NodeJS.ErrnoException) => { say({ type: 'result', bytes, end: 'error', code: e.code, exact }) })
  }
}

main().catch((err: unknown) => { say({ type: 'fatal', error: String(err) }); process.exit(1) })
