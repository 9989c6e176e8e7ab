/**
 * The stream strategy of the CONNECT-UDP proxy: one HTTP/2 extended CONNECT stream (RFC 8441)
 * becomes one UDP flow, or a refusal. In order: the request checks (RFC 9298 §3.5:
 * 400/404/405), authorisation (udp-auth.ts: 407/403), a slot under the flow caps (503/429), the
 * destination policy exactly as for TCP (deny by default; names resolved by the policy's resolver;
 * 403 or the DNS statuses), one connected UDP socket to the first vetted address, then
 * `200` with `capsule-protocol: ?1` and the relay (udp-flow.ts). Never throws out of a handler.
 */
import dgram from 'node:dgram'
import http2 from 'node:http2'
import { checkConnectUdpRequest, type RequestHeaders } from '../../../shared/src/codec/connect-udp.ts'
import type { Logger } from '../../../shared/src/log.ts'
import type { EndpointAddress } from '../../../shared/src/net/endpoint.ts'
import type { UdpConfig } from '../config/udp.ts'
import type { ConcentratorMetrics } from '../metrics.ts'
import type { Runtime } from '../runtime.ts'
import { authoriseUdpRequest } from './udp-auth.ts'
import { UdpFlow } from './udp-flow.ts'
import type { FlowSlot, UdpFlowTable } from './udp-flow-table.ts'
import { isPolicyRefusal, refusalLabel, type UdpRefusalReason } from './udp-metrics.ts'
import { checkRefusalReason, udpRefusal } from './udp-refusal.ts'

export type OpenUdpSocket = (target: EndpointAddress, port: number) => Promise<dgram.Socket>

export interface UdpStreamDeps {
  readonly config: UdpConfig
  readonly runtime: () => Runtime
  readonly metrics: ConcentratorMetrics
  readonly flows: UdpFlowTable
  readonly log: Logger
  readonly now?: () => number
  /** Default: a new connected dgram socket (tests inject failures). */
  readonly openSocket?: OpenUdpSocket
}

/** A UDP socket connected to `target:port` (bound to an ephemeral port of the routed address). */
export const openConnectedSocket: OpenUdpSocket = async (target, port) => {
  const socket = dgram.createSocket({ type: target.family === 6 ? 'udp6' : 'udp4' })
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.connect(port, target.address, () => { socket.off('error', reject); resolve() })
  }).catch((err: unknown) => { try { socket.close() } catch { /* never opened */ } throw err })
  return socket
}

function gone (stream: http2.ServerHttp2Stream): boolean {
  return stream.closed || stream.destroyed
}

/** Answer a refusal (if the stream is still there) and count it. */
export function refuseStream (stream: http2.ServerHttp2Stream, reason: UdpRefusalReason, detail: string,
  deps: Pick<UdpStreamDeps, 'metrics' | 'log'>): void {
  deps.metrics.udpFlowsRefused.inc({ reason: refusalLabel(reason) })
  if (isPolicyRefusal(reason)) deps.metrics.udpPolicyRefusals.inc({ reason })
  const r = udpRefusal(reason, detail)
  deps.log.debug({ err: { code: r.code, message: `${reason}: ${detail}` }, status: r.status }, 'connect-udp refused')
  if (gone(stream) || stream.headersSent) return
  stream.respond({ ':status': r.status, ...r.headers })
  // RST_STREAM NO_ERROR once the answer is out: the client may stop sending (RFC 9113 §8.1).
  stream.end(r.body, () => { if (!gone(stream)) stream.close(http2.constants.NGHTTP2_NO_ERROR) })
}

function idleTimeoutFor (config: UdpConfig, port: number): number {
  return config.quicPorts.includes(port) ? config.quicIdleTimeoutMs : config.idleTimeoutMs
}

/** Handle one stream of the proxy's HTTP/2 server; `source` is the client's canonical address. */
export async function handleConnectUdpStream (stream: http2.ServerHttp2Stream, headers: RequestHeaders, source: string,
  deps: UdpStreamDeps): Promise<void> {
  const check = checkConnectUdpRequest(headers)
  if (!check.ok) { refuseStream(stream, checkRefusalReason(check.status), check.detail, deps); return }
  const rt = deps.runtime()
  const auth = authoriseUdpRequest(single(headers['proxy-authorization']), source, rt, deps.metrics)
  if (!auth.ok) { refuseStream(stream, auth.reason, auth.detail, deps); return }
  const admitted = deps.flows.admit(auth.subscriber)
  if (!admitted.ok) { refuseStream(stream, admitted.reason, 'flow cap reached', deps); return }
  const { slot } = admitted
  try {
    await open(stream, check.target, source, rt, slot, deps)
  } catch (err) {
    slot.release()
    throw err
  }
}

async function open (stream: http2.ServerHttp2Stream, target: { host: string, port: number }, source: string, rt: Runtime,
  slot: FlowSlot, deps: UdpStreamDeps): Promise<void> {
  const decision = await rt.policy.check(target.host, target.port, source)
  if (gone(stream)) { slot.release(); return }
  if (!decision.allowed) { slot.release(); refuseStream(stream, decision.reason, decision.detail, deps); return }
  const address = decision.addresses[0] as EndpointAddress
  let socket: dgram.Socket
  try {
    socket = await (deps.openSocket ?? openConnectedSocket)(address, decision.port)
  } catch (err) {
    slot.release()
    refuseStream(stream, 'socket_error', (err as NodeJS.ErrnoException).code ?? 'socket failed', deps)
    return
  }
  if (gone(stream)) { socket.close(); slot.release(); return }
  stream.respond({ ':status': 200, 'capsule-protocol': '?1' })
  const c = deps.config
  const flow = new UdpFlow(stream, socket, {
    idleTimeoutMs: idleTimeoutFor(c, decision.port),
    maxDatagramBytes: c.maxDatagramBytes,
    streamBufferMaxBytes: c.streamBufferMaxBytes,
    socketQueueMaxDatagrams: c.socketQueueMaxDatagrams,
    metrics: deps.metrics,
    log: deps.log,
    ...(deps.now === undefined ? {} : { now: deps.now }),
    onEnd: slot.release
  })
  slot.attach(flow)
}

function single (v: string | readonly string[] | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined
}
