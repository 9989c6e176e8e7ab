/**
 * Peer process for relay-keepalive.e2e.test.ts, run inside a namespace; JSON lines on stdout.
 *
 *   far <protocol> <port> [bytes]
 *                                accept on 0.0.0.0:<port>; hold every connection open, silent, or
 *                                with `bytes`: send that many bytes (as fast as the window allows), then FIN
 *   relay <protocol> <host> <port> <keepalive JSON> [stallMs]
 *                                a LAN client and the relay's LAN leg over loopback (TCP), the
 *                                upstream leg dialled to <host>:<port>; prints 'relaying', then the
 *                                relay's end as counted by countRelayEnd and what the LAN client saw
 *                                (`lanBytes` read). With `stallMs` the LAN client reads nothing for
 *                                that long, then reads to the end; 'stalled' (half way) reports the
 *                                LAN leg's TCP_USER_TIMEOUT and TCP_INFO window state at that moment.
 */
import net from 'node:net'
import { once } from 'node:events'
import { relay } from '../../shared/src/net/relay.ts'
import { dial } from '../../shared/src/net/dial.ts'
import { listen } from '../../shared/src/net/listen.ts'
import { legKeepalive, tcpInfo, type LegKeepalive } from '../../shared/src/net/sockopt.ts'
import { countRelayEnd, type RelayEndSink } from '../../shared/src/metrics/relay-hooks.ts'

const say = (m: Record<string, unknown>): void => { process.stdout.write(`${JSON.stringify(m)}\n`) }
const [role, protocol, a1, a2, a3] = process.argv.slice(2)
const proto = protocol === 'tcp' ? 'tcp' : 'mptcp'

if (role === 'far') {
  const held: net.Socket[] = []
  const send = a2 === undefined ? 0 : Number(a2)
  const chunk = Buffer.alloc(65_536, 0x5a)
  await listen({ host: '0.0.0.0', port: Number(a1), protocol: proto, allowHalfOpen: true }, (s) => {
    s.on('error', () => {})
    held.push(s)
    let left = send
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(left, chunk.length)
        left -= n
        if (!s.write(chunk.subarray(0, n))) return
      }
      if (send > 0) s.end()
    }
    s.on('drain', pump)
    pump()
  })
  say({ event: 'ready' })
} else {
  const keepalive = JSON.parse(a3 ?? '{}') as LegKeepalive
  const stallMs = Number(process.argv[7] ?? '0')
  const lanSrv = net.createServer({ allowHalfOpen: true })
  lanSrv.listen(0, '127.0.0.1')
  await once(lanSrv, 'listening')
  const accepted = once(lanSrv, 'connection') as Promise<[net.Socket]>
  const lanClient = net.connect({ port: (lanSrv.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true })
  const [lanLeg] = await accepted
  let lanSaw = 'open'
  let lanBytes = 0
  if (stallMs > 0) {
    lanClient.pause()
    setTimeout(() => {
      if (lanLeg.destroyed) { say({ event: 'stalled', gone: true }); return }
      const t = tcpInfo(lanLeg)
      say({
        event: 'stalled',
        userTimeoutMs: legKeepalive(lanLeg).userTimeoutMs,
        unacked: t.unacked,
        notsentBytes: t.notsentBytes,
        lastAckRecvMs: t.lastAckRecvMs
      })
    }, stallMs / 2)
    setTimeout(() => { lanClient.resume() }, stallMs)
  }
  lanClient.on('data', (d: Buffer) => { lanBytes += d.length })
  lanClient.on('end', () => { lanSaw = 'end'; if (stallMs > 0) lanClient.end() })
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
  say({
    event: 'done',
    reason: res.reason,
    error: (res.error as { code?: string } | undefined)?.code,
    ms: Date.now() - started,
    counted: closed,
    lanSaw,
    lanBytes
  })
  process.exit(0)
}
