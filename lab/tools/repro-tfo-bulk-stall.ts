/**
 * Reproduces the kernel MPTCP + TCP Fast Open bulk stall (docs/mptcp-socket-layer.md, "Kernel
 * issues"). In a kept lab (`npm run lab -- --keep --prefix ha-`), with tcp_fastopen=3 in hag and 1 in cpe:
 *   ip netns exec ha-hag node --import tsx lab/tools/repro-tfo-bulk-stall.ts server <hold 1|0> <delayMs>
 *   ip netns exec ha-cpe node --import tsx lab/tools/repro-tfo-bulk-stall.ts client
 * The server sends 40 MiB from the moment the client's SYN data arrives (+ delayMs). Seen on 6.18:
 * with delayMs 0 most TFO connections stall after 4–9 MiB (client MPTcpExtNoDSSInWindow rising),
 * with the write gate on or off; with delayMs 50 (after the LTE join) none did (8/8).
 */
import { listen } from '../../shared/src/net/listen.ts'
import { dial } from '../../shared/src/net/dial.ts'
import { tcpInfo } from '../../shared/src/net/sockopt.ts'
const [role, gate] = process.argv.slice(2)
const delayMs = Number(process.argv[4] ?? 0)
const TOTAL = 40 * 1024 * 1024
if (role === 'server') {
  await listen({ host: '203.0.113.200', port: 1095, fastOpenQueue: 64, holdWritesUntilEstablished: gate === '1', allowHalfOpen: true }, (s) => {
    s.on('error', () => {})
    s.once('data', () => {
      let sent = 0
      const chunk = Buffer.alloc(64 * 1024, 7)
      const pump = (): void => {
        while (sent < TOTAL) { sent += chunk.length; if (!s.write(chunk)) { s.once('drain', pump); return } }
        s.end()
      }
      setTimeout(pump, delayMs)
    })
  })
  console.log('ready')
} else {
  for (let i = 0; i < 4; i++) {
    const s = dial({ host: '203.0.113.200', port: 1095, fastOpen: true })
    s.on('error', () => {})
    const t0 = performance.now()
    s.write('go')
    let got = 0
    const res = await new Promise<string>((resolve) => {
      const t = setTimeout(() => { resolve(`STALL at ${got} bytes`) }, 15000)
      s.on('data', (d: Buffer) => { got += d.length })
      s.on('end', () => { clearTimeout(t); resolve(`ok ${got} bytes in ${((performance.now() - t0) / 1000).toFixed(1)} s`) })
    })
    let sd = false; try { sd = ((tcpInfo(s).options ?? 0) & 0x20) !== 0 } catch {}
    console.log(`conn ${i} synData=${sd}: ${res}`)
    s.destroy()
  }
}
