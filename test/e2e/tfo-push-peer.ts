/**
 * Peer process for tfo-push.e2e.test.ts (runs inside a namespace).
 *   server <host> <port> <gate:1|0>  — MPTCP+TFO listener answering each request at once, then FIN
 *   client <host> <port> <n>         — n TFO connections; prints one JSON line per connection
 */
import { listen } from '../../shared/src/net/listen.ts'
import { dial } from '../../shared/src/net/dial.ts'
import { tcpInfo } from '../../shared/src/net/sockopt.ts'

const [role, host = '', portText = '0', arg = '0'] = process.argv.slice(2)
const port = Number(portText)

if (role === 'server') {
  await listen({ host, port, fastOpenQueue: 64, holdWritesUntilEstablished: arg === '1' }, (s) => {
    s.on('error', () => {})
    // Answer straight from the SYN data and close, like an HTTP/1.0 server behind a fast upstream.
    s.once('data', () => { s.end('reply') })
  })
  process.stdout.write('ready\n')
} else {
  for (let i = 0; i < Number(arg); i++) {
    const s = dial({ host, port, fastOpen: true })
    s.on('error', () => {})
    const started = performance.now()
    s.write('request')
    const replyMs = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => { resolve(null) }, 1000)
      s.once('data', () => { clearTimeout(t); resolve(performance.now() - started) })
    })
    let synData = false
    try { synData = ((tcpInfo(s).options ?? 0) & 0x20) !== 0 } catch { /* already closed */ }
    s.destroy()
    process.stdout.write(JSON.stringify({ i, replyMs, synData }) + '\n')
  }
}
