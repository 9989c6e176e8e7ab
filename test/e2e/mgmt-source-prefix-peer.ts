/**
 * Peer for mgmt-source-prefix.e2e.test.ts (runs inside its namespace, whose lo carries the
 * addresses below). Starts a management server on [::] with management.limits
 * { maxConnections: 64, perSourceMaxConnections: 10, perSourceIpv6PrefixLength: <argv[2]> },
 * opens one idle connection from each of 2001:db8:1:2::1 … ::20 (20 addresses of one /64), then
 * asks /livez from 2001:db8:1:3::1 (another /64), and prints one JSON line:
 *   {"type":"result","held":n,"refused":n,"livezOtherPrefix":status,"metrics":"…refused lines…"}
 * Exits after at most 20 s whatever happens.
 */
import { request } from 'node:http'
import { connect, type Socket } from 'node:net'
import { listenMgmt } from '../../shared/src/mgmt/mgmt-server.ts'
import { buildTestMgmt } from '../helpers/mgmt-test-server.ts'

setTimeout(() => { process.exit(3) }, 20_000).unref()
const prefixLength = Number(process.argv[2] ?? '64')
const { app, metrics } = buildTestMgmt({
  daemon: 'concentrator',
  allowedHosts: ['[2001:db8:1:9::1]'],
  limits: { maxConnections: 64, perSourceMaxConnections: 10, perSourceIpv6PrefixLength: prefixLength, idleTimeoutMs: 60_000 }
})
const { port } = await listenMgmt(app, { host: '2001:db8:1:9::1', port: 0 })

const sockets: Socket[] = []
const closed = new Set<Socket>()
await Promise.all(Array.from({ length: 20 }, async (_, i) => new Promise<void>((resolve, reject) => {
  const s = connect({ host: '2001:db8:1:9::1', port, localAddress: `2001:db8:1:2::${(i + 1).toString(16)}` })
  sockets.push(s)
  s.on('error', () => {})
  s.on('close', () => { closed.add(s) })
  s.once('connect', () => { resolve() })
  s.once('error', reject)
})))
await new Promise((resolve) => setTimeout(resolve, 500))

const livez = await new Promise<number>((resolve) => {
  const req = request({
    host: '2001:db8:1:9::1',
    port,
    path: '/livez',
    localAddress: '2001:db8:1:3::1',
    agent: false,
    timeout: 3000,
    headers: { host: '[2001:db8:1:9::1]' }
  }, (res) => {
    res.resume()
    res.on('end', () => { resolve(res.statusCode ?? 0) })
  })
  req.on('timeout', () => { req.destroy() })
  req.on('error', () => { resolve(0) })
  req.end()
})
const refusedLines = (await metrics()).split('\n').filter((l) => l.startsWith('hybrid_mgmt_connections_refused_total{')).join('\n')
process.stdout.write(JSON.stringify({
  type: 'result',
  held: sockets.length - closed.size,
  refused: closed.size,
  livezOtherPrefix: livez,
  metrics: refusedLines
}) + '\n')
for (const s of sockets) s.destroy()
await app.close()
process.exit(0)
