/**
 * The relay of the relay benchmark's CPE direction (`--direction cpe`, bench/relay.ts):
 * `node dist/bench/relay-cpe-relay.js --listen <ip:port> --upstream <ip:port> --data-plane stream|splice`.
 *
 * What the CPE agent does with an accepted LAN connection once its mode has decided where it
 * goes, and nothing else: accept plain TCP, dial the upstream as MPTCP (`dial()`, the CPE's own
 * socket layer), then `relay()` with the CPE's default limits and keepalive and the given data
 * plane — the shared relay and data planes, with the CPE's protocols on each leg. The CPE agent's
 * control plane (uplinks, steering, Convert, SOCKS5) is not in the path: like socat and HAProxy,
 * no handshake before the relay. Prints `{"type":"ready"}`; SIGTERM closes it.
 */
import net from 'node:net'
import { parseArgs } from 'node:util'
import { relayKeepalive } from '../shared/src/config/common-schema.ts'
import { createDataPlane } from '../shared/src/net/data-plane.ts'
import { dial } from '../shared/src/net/dial.ts'
import { relay } from '../shared/src/net/relay.ts'

const { values } = parseArgs({ options: { listen: { type: 'string' }, upstream: { type: 'string' }, 'data-plane': { type: 'string', default: 'stream' } } })
const hostPort = (s: string | undefined): { host: string, port: number } => {
  const i = (s ?? '').lastIndexOf(':')
  if (s === undefined || i < 0) throw new Error('--listen and --upstream: <ip:port>')
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) }
}
const listen = hostPort(values.listen)
const upstream = hostPort(values.upstream)
const plane = createDataPlane(values['data-plane'] === 'splice' ? 'splice' : 'stream')
await plane.start()
// The CPE's defaults (cpe/src/config: limits): idle 1 h, half-close 45 s, keepalive 30 s / 10 s × 3, user timeout 60 s, highWaterMark 32 KiB.
const keepalive = relayKeepalive({ keepaliveIdleMs: 30_000, keepaliveIntervalMs: 10_000, keepaliveCount: 3, userTimeoutMs: 60_000 })
const HWM = 32 * 1024
const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, highWaterMark: HWM }, (client) => {
  client.on('error', () => {})
  const up = dial({ host: upstream.host, port: upstream.port, protocol: 'mptcp', highWaterMark: HWM })
  up.on('error', () => { client.resetAndDestroy() })
  up.once('connect', () => {
    relay(client, up, { idleTimeoutMs: 3_600_000, halfCloseTimeoutMs: 45_000, keepalive, dataPlane: plane })
  })
})
server.listen(listen.port, listen.host, () => { process.stdout.write(JSON.stringify({ type: 'ready', dataPlane: plane.kind() }) + '\n') })
process.on('SIGTERM', () => {
  server.close()
  plane.stop().then(() => { process.stdout.write(JSON.stringify({ type: 'result' }) + '\n'); process.exit(0) }, () => { process.exit(1) })
})
