/**
 * The CONNECT-UDP proxy (RFC 9298 over HTTP/2, RFC 8441): an MPTCP (or TCP) listener from the
 * shared `listen()` whose sockets are handed to one h2c server with `enableConnectProtocol`
 * (prior knowledge, no TLS, like the SOCKS5 plane). Each stream goes to connect-udp-stream.ts.
 * `stop()` closes the listener, ends every flow (reason `shutdown`) and destroys the sessions.
 */
import http2 from 'node:http2'
import type net from 'node:net'
import type { Logger } from '../../../shared/src/log.ts'
import { listen } from '../../../shared/src/net/listen.ts'
import type { MptcpUnavailablePolicy } from '../../../shared/src/net/sockopt.ts'
import { sourceKey } from '../accept/source-address.ts'
import type { UdpConfig } from '../config/udp.ts'
import type { ConcentratorMetrics } from '../metrics.ts'
import type { Runtime } from '../runtime.ts'
import { handleConnectUdpStream, type OpenUdpSocket } from './connect-udp-stream.ts'
import { UdpFlowTable } from './udp-flow-table.ts'

export interface UdpProxyDeps {
  readonly log: Logger
  readonly metrics: ConcentratorMetrics
  readonly runtime: () => Runtime
  readonly onMptcpUnavailable: MptcpUnavailablePolicy
  /** SO_REUSEPORT (workers share the listener). */
  readonly reusePort?: boolean
  readonly now?: () => number
  readonly openSocket?: OpenUdpSocket
}

export interface UdpProxy {
  readonly address: { host: string, port: number }
  /** What the listener really is: 'tcp' after an MPTCP fallback. */
  readonly protocol: 'mptcp' | 'tcp'
  /** Flow slots taken (open flows and requests being answered). */
  readonly flowCount: () => number
  /** HTTP/2 connections open. */
  readonly connectionCount: () => number
  stop: () => Promise<void>
}

/**
 * HTTP/2 flow-control windows of the CONNECT-UDP sessions, per stream and per session: a client
 * can have at most this much unread in the proxy (Node consumes window only as the stream is
 * read; a flow being set up is not read yet), so the session window bounds the memory one
 * connection can make the proxy hold (2 MiB, against 64 KiB by default). 512 KiB per stream covers
 * a 50 Mbit/s flow at 80 ms RTT.
 */
export const UDP_STREAM_WINDOW_BYTES = 512 * 1024
export const UDP_SESSION_WINDOW_BYTES = 2 * 1024 * 1024

/** The h2c server: sessions with the raised windows, each stream to connect-udp-stream.ts. */
function createH2Server (config: UdpConfig, deps: UdpProxyDeps, flows: UdpFlowTable, onSession: (s: http2.Http2Session) => void): http2.Http2Server {
  const log = deps.log
  const sources = new WeakMap<http2.Http2Session, string>()
  // Flow-control windows far above HTTP/2's 64 KiB default: at 40 ms RTT 64 KiB caps one flow at
  // ~13 Mbit/s. What each end buffers stays bounded by the datagram-dropping limits, not by the window.
  const h2 = http2.createServer({
    settings: { enableConnectProtocol: true, maxConcurrentStreams: config.maxStreamsPerConnection, initialWindowSize: UDP_STREAM_WINDOW_BYTES }
  })
  const streamDeps = {
    config,
    runtime: deps.runtime,
    metrics: deps.metrics,
    flows,
    log,
    ...(deps.now === undefined ? {} : { now: deps.now }),
    ...(deps.openSocket === undefined ? {} : { openSocket: deps.openSocket })
  }
  h2.on('session', (session) => {
    session.setLocalWindowSize(UDP_SESSION_WINDOW_BYTES)
    session.on('error', (err) => { log.debug({ err }, 'udp proxy session error'); session.destroy() })
    sources.set(session, sourceKey(session.socket.remoteAddress))
    onSession(session)
  })
  h2.on('stream', (stream, headers) => {
    stream.on('error', (err) => { log.debug({ err }, 'udp proxy stream error') })
    const source = sources.get(stream.session as http2.Http2Session) ?? 'unknown'
    handleConnectUdpStream(stream, headers, source, streamDeps).catch((err: unknown) => {
      log.error({ err }, 'connect-udp stream failed')
      stream.destroy()
    })
  })
  h2.on('sessionError', (err) => { log.debug({ err }, 'udp proxy session error') })
  return h2
}

/** One accepted connection into the h2c server, with the preface deadline and Nagle off. */
function acceptH2 (socket: net.Socket, h2: http2.Http2Server, sessionOf: () => http2.Http2Session | undefined, handshakeTimeoutMs: number): void {
  // Datagrams are small writes that must leave at once: Nagle would hold a reply until the
  // previous one is acknowledged (the lab measured +18 ms RTT with it).
  socket.setNoDelay(true)
  h2.emit('connection', socket) // emits 'session' synchronously
  // A session that fails (a bad preface, a GOAWAY) must not leave its socket open.
  const session = sessionOf()
  session?.on('close', () => { socket.destroy() })
  // The client's preface and SETTINGS within limits.handshakeTimeoutMs, as for a SOCKS5 greeting.
  const deadline = setTimeout(() => { socket.destroy() }, handshakeTimeoutMs).unref()
  session?.once('remoteSettings', () => { clearTimeout(deadline) })
  socket.once('close', () => { clearTimeout(deadline) })
}

export async function startUdpProxy (config: UdpConfig, deps: UdpProxyDeps): Promise<UdpProxy> {
  const log = deps.log
  const flows = new UdpFlowTable(config)
  const sockets = new Set<net.Socket>()
  let created: http2.Http2Session | undefined
  const h2 = createH2Server(config, deps, flows, (session) => { created = session })
  let accepting = true
  let protocol: 'mptcp' | 'tcp' = config.protocol
  const server = await listen({
    host: config.listen.host,
    port: config.listen.port,
    protocol: config.protocol,
    onMptcpUnavailable: deps.onMptcpUnavailable,
    onFallback: () => { protocol = 'tcp' },
    ...(deps.reusePort === true ? { reusePort: true } : {})
  }, (socket) => {
    socket.on('error', () => {})
    if (!accepting || sockets.size >= config.maxConnections) { socket.destroy(); return }
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    created = undefined
    acceptH2(socket, h2, () => created, deps.runtime().limits.handshakeTimeoutMs)
  })
  server.on('error', (err) => { log.error({ err }, 'udp proxy listener error') })
  const a = server.address()
  const address = a !== null && typeof a === 'object' ? { host: a.address, port: a.port } : { host: config.listen.host, port: config.listen.port }
  log.info({ ...address, protocol, maxFlows: config.maxFlows }, 'connect-udp proxy listening')
  return {
    address,
    protocol,
    flowCount: () => flows.size,
    connectionCount: () => sockets.size,
    stop: async () => {
      accepting = false
      server.close()
      for (const flow of [...flows.flows]) flow.end('shutdown')
      for (const socket of sockets) socket.destroy()
      h2.close()
      await new Promise<void>((resolve) => { setImmediate(resolve) })
    }
  }
}
