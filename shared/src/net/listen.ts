/**
 * MPTCP (or TCP) listeners as ordinary `net.Server`s: the listening socket is created and
 * configured through FFI (protocol, SO_REUSEADDR, TFO queue, IP_TRANSPARENT, SO_MARK …), bound and
 * put in listen state, then handed to Node by fd. See docs/mptcp-socket-layer.md.
 *
 * Accepted sockets are MPTCP, except that a client without MPTCP yields a plain-TCP socket
 * (`socketProtocol` 'tcp', `isMptcpFallback` true). Keep the listener open while its connections
 * live: after close() the kernel refuses their MP_JOINs (docs/mptcp-socket-layer.md; docs/design/kernel-facts.md §3).
 */
import net from 'node:net'
import { HybridError } from '../errors.ts'
import { encodeSockaddr, ipFamily } from '../codec/sockaddr.ts'
import { bindFd, listenFd } from './syscall.ts'
import { formatHostPort } from './endpoint.ts'
import { holdWritesUntilEstablished } from './establish-gate.ts'
import {
  closeFd, openStreamSocket, setBindToDevice, setFastOpenNoCookie, setFastOpenQueue, setMark, setReuseAddr, setReusePort, setTransparent,
  setV6Only, type FallbackReason, type MptcpUnavailablePolicy, type SocketProtocol
} from './sockopt.ts'

export interface ListenOptions {
  /** IP literal (`0.0.0.0`, `::` for any). */
  host: string
  /** 0 = kernel picks (read it from `server.address()`). */
  port: number
  /** Default 'mptcp'. */
  protocol?: SocketProtocol
  onMptcpUnavailable?: MptcpUnavailablePolicy
  onFallback?: (reason: FallbackReason) => void
  /** TCP_FASTOPEN queue length on the listener (server TFO; also needs sysctl tcp_fastopen 0x2). */
  fastOpenQueue?: number
  /** IP(V6)_TRANSPARENT, for TPROXY listeners. */
  transparent?: boolean
  /** SO_REUSEADDR, default true. */
  reuseAddr?: boolean
  /**
   * SO_REUSEPORT, default false: the concentrator's workers each bind the same address and port
   * (docs/scale-out.md, "Many cores on one machine"); the kernel spreads initial subflows over them.
   */
  reusePort?: boolean
  /** Default 511. */
  backlog?: number
  mark?: number
  bindToDevice?: string
  /** IPV6_V6ONLY (IPv6 listeners only); default: the kernel's (dual-stack). */
  v6Only?: boolean
  allowHalfOpen?: boolean
  pauseOnConnect?: boolean
  /** Stream high-water mark of every accepted socket (both directions); Node's default otherwise. */
  highWaterMark?: number
  /** TCP_FASTOPEN_NO_COOKIE on the listener: SYN data accepted without a cookie from any client. */
  fastOpenNoCookie?: boolean
  /**
   * Keep each accepted MPTCP socket's writes out of the kernel until its MPTCP handshake
   * completes (see establish-gate.ts: replies written from TFO SYN data otherwise stall).
   * Default true; only MPTCP sockets still waiting for the third ACK are held.
   */
  holdWritesUntilEstablished?: boolean
  /**
   * TCP_NODELAY on every accepted socket; default true. A proxy's small handshake replies (a
   * 10-byte SOCKS5 reply, a 4-byte Convert header) would otherwise hold back the first relayed
   * bytes behind Nagle until the peer ACKs them: one extra round trip per connection.
   */
  noDelay?: boolean
}

function configure (fd: number, family: 4 | 6, opts: ListenOptions, sockaddr: Buffer): void {
  if (opts.reuseAddr ?? true) setReuseAddr(fd)
  if (opts.reusePort === true) setReusePort(fd)
  if (family === 6 && opts.v6Only !== undefined) setV6Only(fd, opts.v6Only)
  if (opts.transparent === true) setTransparent(fd, family)
  if (opts.mark !== undefined) setMark(fd, opts.mark)
  if (opts.bindToDevice !== undefined) setBindToDevice(fd, opts.bindToDevice)
  if (opts.fastOpenQueue !== undefined) setFastOpenQueue(fd, opts.fastOpenQueue)
  if (opts.fastOpenNoCookie === true) setFastOpenNoCookie(fd)
  bindFd(fd, sockaddr, formatHostPort(opts.host, opts.port))
  listenFd(fd, opts.backlog ?? 511, `backlog ${opts.backlog ?? 511}`)
}

/**
 * Create a listening socket and serve it with `net.Server`. Resolves once Node listens.
 * Throws/rejects: HYBRID_ERR_SOCKET_ADDRESS, HYBRID_ERR_MPTCP_UNAVAILABLE (policy 'fail'),
 * SyscallError (bind EADDRINUSE, a refused option …).
 */
export async function listen (opts: ListenOptions, onConnection: (socket: net.Socket) => void): Promise<net.Server> {
  const family = ipFamily(opts.host)
  if (family === undefined) {
    throw new HybridError('HYBRID_ERR_SOCKET_ADDRESS', `listen: host must be an IP literal, got ${JSON.stringify(opts.host)}`)
  }
  const sockaddr = encodeSockaddr(opts.host, opts.port)
  const { fd } = openStreamSocket({
    family,
    protocol: opts.protocol ?? 'mptcp',
    onMptcpUnavailable: opts.onMptcpUnavailable ?? 'fail',
    ...(opts.onFallback === undefined ? {} : { onFallback: opts.onFallback })
  })
  try {
    configure(fd, family, opts, sockaddr)
  } catch (err) {
    closeFd(fd)
    throw err
  }
  const hwm = opts.highWaterMark === undefined ? {} : { highWaterMark: opts.highWaterMark }
  const gate = (opts.holdWritesUntilEstablished ?? true) && (opts.protocol ?? 'mptcp') === 'mptcp'
  const handler = gate ? (socket: net.Socket) => { holdWritesUntilEstablished(socket); onConnection(socket) } : onConnection
  const server = net.createServer({
    allowHalfOpen: opts.allowHalfOpen ?? false,
    pauseOnConnect: opts.pauseOnConnect ?? false,
    noDelay: opts.noDelay ?? true,
    ...hwm
  }, handler)
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => { reject(err) }
    server.once('error', onError)
    server.listen({ fd, backlog: opts.backlog ?? 511 }, () => {
      server.off('error', onError)
      resolve()
    })
  })
  return server
}
