/**
 * Outgoing MPTCP (or TCP) connections as ordinary `net.Socket`s: the socket is created through
 * FFI with IPPROTO_MPTCP (Node has no protocol selector), configured, handed to Node by fd, and
 * connected by libuv. See docs/mptcp-socket-layer.md.
 *
 * Happy-eyeballs trap (docs/mptcp-socket-layer.md, "The happy-eyeballs trap"): given a host NAME with several addresses, Node 20's
 * autoSelectFamily replaces a failed attempt's handle with a fresh plain-TCP one, so the
 * connection silently becomes TCP. `dial` therefore accepts IP literals only (of the fd's own
 * family) and passes `autoSelectFamily: false`; resolve names before calling it.
 */
import net from 'node:net'
import { HybridError } from '../errors.ts'
import { ipFamily } from '../codec/sockaddr.ts'
import {
  closeFd, openStreamSocket, setBindToDevice, setFastOpenConnect, setFastOpenNoCookie, setMark,
  setSynCount, setTransparent, type FallbackReason, type MptcpUnavailablePolicy, type SocketProtocol
} from './sockopt.ts'

export interface DialOptions {
  /** IP literal only (v4 or v6); a name throws HYBRID_ERR_SOCKET_ADDRESS. */
  host: string
  port: number
  /** Default 'mptcp'. */
  protocol?: SocketProtocol
  /** Default 'fail' (HYBRID_ERR_MPTCP_UNAVAILABLE); 'fallback' creates TCP and calls onFallback. */
  onMptcpUnavailable?: MptcpUnavailablePolicy
  onFallback?: (reason: FallbackReason) => void
  /** TCP_FASTOPEN_CONNECT: 'connect' fires at once and the first write() travels in the SYN. */
  fastOpen?: boolean
  /** TCP_FASTOPEN_NO_COOKIE: SYN data without a cookie (server needs tcp_fastopen 0x200). */
  fastOpenNoCookie?: boolean
  localAddress?: string
  localPort?: number
  /** SO_MARK (CAP_NET_ADMIN). */
  mark?: number
  /** SO_BINDTODEVICE (CAP_NET_RAW). */
  bindToDevice?: string
  /** IP(V6)_TRANSPARENT, to bind a non-local `localAddress` (CAP_NET_ADMIN). */
  transparent?: boolean
  allowHalfOpen?: boolean
  noDelay?: boolean
  /** TCP_SYNCNT: SYN retransmissions before the connect fails (1–127; kernel default 6). */
  synCount?: number
  /** Stream high-water mark of the socket (both directions); Node's default otherwise. */
  highWaterMark?: number
}

function addressError (message: string): HybridError {
  return new HybridError('HYBRID_ERR_SOCKET_ADDRESS', message)
}

function validate (opts: DialOptions): 4 | 6 {
  const family = ipFamily(opts.host)
  if (family === undefined) {
    throw addressError(`dial: host must be an IP literal, got ${JSON.stringify(opts.host)} (resolve names first; Node's happy eyeballs would swap in a plain TCP socket)`)
  }
  if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 0xffff) {
    throw addressError(`dial: port out of range: ${String(opts.port)}`)
  }
  if (opts.localAddress !== undefined && ipFamily(opts.localAddress) !== family) {
    throw addressError(`dial: localAddress ${JSON.stringify(opts.localAddress)} is not an IPv${family} literal like host ${opts.host}`)
  }
  if (opts.localPort !== undefined && (!Number.isInteger(opts.localPort) || opts.localPort < 0 || opts.localPort > 0xffff)) {
    throw addressError(`dial: localPort out of range: ${String(opts.localPort)}`)
  }
  return family
}

function applyOptions (fd: number, family: 4 | 6, opts: DialOptions): void {
  if (opts.mark !== undefined) setMark(fd, opts.mark)
  if (opts.bindToDevice !== undefined) setBindToDevice(fd, opts.bindToDevice)
  if (opts.transparent === true) setTransparent(fd, family)
  if (opts.fastOpen === true) setFastOpenConnect(fd)
  if (opts.fastOpenNoCookie === true) setFastOpenNoCookie(fd)
  if (opts.synCount !== undefined) setSynCount(fd, opts.synCount)
}

/**
 * Create, configure and start connecting a socket; returns at once with the connect in progress
 * (usual 'connect' / 'error' events). Synchronous throws: HYBRID_ERR_SOCKET_ADDRESS (bad input),
 * HYBRID_ERR_MPTCP_UNAVAILABLE (policy 'fail'), SyscallError (a socket option was refused).
 */
export function dial (opts: DialOptions): net.Socket {
  const family = validate(opts)
  const { fd } = openStreamSocket({
    family,
    protocol: opts.protocol ?? 'mptcp',
    onMptcpUnavailable: opts.onMptcpUnavailable ?? 'fail',
    ...(opts.onFallback === undefined ? {} : { onFallback: opts.onFallback })
  })
  let socket: net.Socket
  try {
    applyOptions(fd, family, opts)
    const hwm = opts.highWaterMark === undefined ? {} : { highWaterMark: opts.highWaterMark }
    socket = new net.Socket({ fd, allowHalfOpen: opts.allowHalfOpen ?? false, readable: true, writable: true, ...hwm })
  } catch (err) {
    closeFd(fd)
    throw err
  }
  if (opts.noDelay !== undefined) socket.setNoDelay(opts.noDelay)
  const connectOpts: net.TcpSocketConnectOpts = { host: opts.host, port: opts.port, family, autoSelectFamily: false }
  if (opts.localAddress !== undefined) connectOpts.localAddress = opts.localAddress
  if (opts.localPort !== undefined) connectOpts.localPort = opts.localPort
  try {
    socket.connect(connectOpts)
  } catch (err) {
    socket.destroy()
    throw err
  }
  return socket
}
