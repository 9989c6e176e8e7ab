/**
 * Peer process for relay-keepalive.e2e.test.ts, run inside a namespace; JSON lines on stdout.
 *
 *   far <protocol> <port>        accept on 0.0.0.0:<port> and hold every connection open, silent
 *   relay <protocol> <host> <port> <keepalive JSON>
 *                                a LAN client and the relay's LAN leg over loopback (TCP), the
 *                                upstream leg dialled to <host>:<port>; prints 'relaying', then the
 *                                relay's end as counted by countRelayEnd and what the LAN client saw
 */
import net from 'node:net'
import { once } from 'node:events'
import { relay } from '../../shared/src/net/relay.ts'
import { dial } from '../../shared/src/net/dial.ts'
import { listen } from '../../shared/src/net/listen.ts'
import { legKeepalive, type LegKeepalive } from '../../shared/src/net/sockopt.ts'
import { countRelayEnd, type RelayEndSink } from '../../shared/src/metrics/relay-hooks.ts'

const say = (m: Record<string, unknown>): void => { process.stdout.write(`${JSON.stringify(m)}\n`) }
const [role, protocol, a1, a2, a3] = process.argv.slice(2)
const proto = protocol === 'tcp' ? 'tcp' : 'mptcp'

if (role === 'far') {
  const held: net.Socket[] = []
  await listen({ host: '0.0.0.0', port: Number(a1), protocol: proto, allowHalfOpen: true }, (s) => { s.on('error', () => {}); held.push(s) })
  say({ event: 'ready' })
} else {
  const keepalive = JSON.parse(a3 ?? '{}') as LegKeepalive
  const lanSrv = net.createServer({ allowHalfOpen: true })
  lanSrv.listen(0, '127.0.0.1')
  await once(lanSrv, 'listening')
  const accepted = once(lanSrv, 'connection') as Promise<[net.Socket]>
  const lanClient = net.connect({ port: (lanSrv.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true })
  const [lanLeg] = await accepted
  let lanSaw = 'open'
  lanClient.on('data', () => {})
  lanClient.on('end', () => { lanSaw = 'end' })
  lanClient.on('error', (e: Error & { code?: string }) => { lanSaw = e.code ?? 'error' })
  const up = dial({ host: a1 ?? '', port: Number(a2), protocol: proto, allowHalfOpen: true })
  await once(up, 'connect')
  const started = Date.now()
  const r = relay(lanLeg, up, { idleTimeoutMs: 3_600_000, halfCloseTimeoutMs: 45_000, keepalive })
  const closed: Array<Record<string, string>> = []
  const sink = {
    connectionsClosed: { inc: (l: Record<string, string>) => { closed.push(l) } },
    connectionDuration: { observe: () => {} },
    bytesReceived: { inc: () => {} },
    bytesSent: { inc: () => {} }
  } as unknown as RelayEndSink
  say({ event: 'relaying', lan: legKeepalive(lanLeg), upstream: legKeepalive(up) })
  const res = await r.done
  countRelayEnd(sink, 'transparent', res)
  await new Promise((resolve) => setTimeout(resolve, 100))
  say({ event: 'done', reason: res.reason, error: (res.error as { code?: string } | undefined)?.code, ms: Date.now() - started, counted: closed, lanSaw })
  process.exit(0)
}
