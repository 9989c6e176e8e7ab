/**
 * The kernel socket layer: MPTCP/TCP socket creation, the socket options Node lacks (TFO,
 * IP_TRANSPARENT, SO_MARK, SO_BINDTODEVICE …) and the MPTCP/TCP introspection getters.
 * Everything that calls libc goes through here (and `syscall.ts`, `mptcp-full-info-reader.ts`);
 * see docs/mptcp-socket-layer.md.
 *
 * Setters and getters take a raw fd, a `net.Socket` or a `net.Server`. Failed calls throw a
 * `SyscallError` (code HYBRID_ERR_SOCKET_SYSCALL) naming call, option and errno. Getters that are
 * expected to fail on non-MPTCP sockets (MPTCP_INFO, MPTCP_FULL_INFO) return `undefined` instead.
 */
import type net from 'node:net'
import { constants as osConstants } from 'node:os'
import { HybridError, SyscallError } from '../errors.ts'
import { decodeSockaddr, encodeSockaddr, SockaddrSize, type SocketAddress } from '../codec/sockaddr.ts'
import { decodeMptcpInfo, MPTCP_INFO_BYTES, type MptcpFullInfo, type MptcpInfo } from '../codec/mptcp-info.ts'
import { decodeTcpInfo, TCP_INFO_BYTES, type TcpInfo } from '../codec/tcp-info.ts'
import { lastErrno, libc } from './libc.ts'
import { formatHostPort } from './endpoint.ts'
import { MptcpFullInfoReader } from './mptcp-full-info-reader.ts'
import {
  bindFd, closeFd, describeErrno, Errno, getsockoptInt, getsockoptInto, listenFd,
  setsockoptBytes, setsockoptInt, syscallError
} from './syscall.ts'

/** Linux constants (x86_64 uapi; arm/arm64/riscv share them: docs/design/kernel-facts.md §1). */
export const Linux = {
  AF_INET: 2,
  AF_INET6: 10,
  SOCK_STREAM: 1,
  SOCK_NONBLOCK: 0x800,
  SOCK_CLOEXEC: 0x80000,
  IPPROTO_TCP: 6,
  IPPROTO_MPTCP: 262,
  SOL_SOCKET: 1,
  SO_REUSEADDR: 2,
  SO_REUSEPORT: 15,
  SO_KEEPALIVE: 9,
  SO_LINGER: 13,
  SO_ERROR: 4,
  SO_BINDTODEVICE: 25,
  SO_MARK: 36,
  SO_PROTOCOL: 38,
  SO_DOMAIN: 39,
  SOL_IP: 0,
  IP_TRANSPARENT: 19,
  SO_ORIGINAL_DST: 80,
  SOL_IPV6: 41,
  IPV6_V6ONLY: 26,
  IPV6_TRANSPARENT: 75,
  IP6T_SO_ORIGINAL_DST: 80,
  TCP_SYNCNT: 7,
  TCP_NODELAY: 1,
  TCP_INFO: 11,
  TCP_FASTOPEN: 23,
  TCP_FASTOPEN_CONNECT: 30,
  TCP_FASTOPEN_NO_COOKIE: 34,
  TCP_KEEPIDLE: 4,
  TCP_KEEPINTVL: 5,
  TCP_KEEPCNT: 6,
  TCP_USER_TIMEOUT: 18,
  SOL_MPTCP: 284,
  MPTCP_INFO: 1,
  MPTCP_FULL_INFO: 4
} as const

export type SocketProtocol = 'mptcp' | 'tcp'
export type MptcpUnavailablePolicy = 'fail' | 'fallback'
export type FallbackReason = 'mptcp_unavailable'
/** A raw fd, or a Node socket/server whose fd is used. */
export type SocketTarget = number | net.Socket | net.Server

/**
 * The fd behind a Node socket or server. This is the ONLY place that touches Node's internal
 * `_handle` (docs/mptcp-socket-layer.md); if Node changes it, only this function needs updating.
 */
export function socketFd (target: SocketTarget): number {
  if (typeof target === 'number') return target
  const fd = (target as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd
  if (typeof fd !== 'number' || fd < 0) {
    throw new HybridError('HYBRID_ERR_SOCKET_SYSCALL', 'socket has no file descriptor (destroyed, not connected yet, or not a TCP socket)')
  }
  return fd
}

/**
 * Stop libuv reading a socket for good (uv_read_stop, and it stays stopped): the splice data plane
 * calls this before it takes the fd over (splice-relay.ts); the second place, beside `socketFd`,
 * that touches Node's `_handle`.
 *
 * `socket.pause()` alone does not stop the reads: a paused net.Socket keeps reading until its
 * readable buffer reaches highWaterMark. And a stopped read does not stay stopped by itself: every
 * `socket.read()` and `resume()` restarts it, and so does the `read(0)` that Readable's push()
 * queues on process.nextTick (`maybeReadMore`) — a relay started inside a 'data' handler (the CPE's
 * modes, at the concentrator's reply) had its read restarted a tick later, and Node took the next
 * bytes off the fd before the engine could (they stayed in the paused socket's buffer: lost). So
 * the handle's `readStart` is replaced by a no-op: the Socket is never read again.
 */
export function stopReading (s: net.Socket): void {
  s.pause()
  const h = (s as unknown as { _handle?: { reading?: boolean, readStop?: () => number, readStart?: () => number } | null })._handle
  if (h === null || h === undefined || typeof h.readStop !== 'function') return
  h.readStart = () => 0
  h.reading = false
  h.readStop()
}

export interface OpenSocketOptions {
  family: 4 | 6
  protocol?: SocketProtocol
  onMptcpUnavailable?: MptcpUnavailablePolicy
  onFallback?: (reason: FallbackReason) => void
}

export interface OpenedSocket {
  fd: number
  /** What was actually created (`tcp` after a fallback). */
  protocol: SocketProtocol
}

/** errnos of socket(…, IPPROTO_MPTCP) on a kernel without (enabled) MPTCP. */
const mptcpMissing = new Set<number>([Errno.EPROTONOSUPPORT, Errno.ENOPROTOOPT, Errno.EINVAL])

/**
 * socket(AF_INET|AF_INET6, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC, IPPROTO_MPTCP|IPPROTO_TCP).
 * Without kernel MPTCP: throws HYBRID_ERR_MPTCP_UNAVAILABLE (policy 'fail', the default) or
 * creates a TCP socket and calls `onFallback('mptcp_unavailable')` (policy 'fallback').
 */
export function openStreamSocket (opts: OpenSocketOptions): OpenedSocket {
  const domain = opts.family === 4 ? Linux.AF_INET : Linux.AF_INET6
  const type = Linux.SOCK_STREAM | Linux.SOCK_NONBLOCK | Linux.SOCK_CLOEXEC
  const what = `${opts.family === 4 ? 'AF_INET' : 'AF_INET6'}, SOCK_STREAM`
  if ((opts.protocol ?? 'mptcp') === 'mptcp') {
    const fd = libc.socket(domain, type, Linux.IPPROTO_MPTCP) as number
    if (fd >= 0) return { fd, protocol: 'mptcp' }
    const errno = lastErrno()
    if (!mptcpMissing.has(errno)) throw syscallError('socket', `${what}, IPPROTO_MPTCP`, errno)
    if (opts.onMptcpUnavailable !== 'fallback') throw mptcpUnavailable(errno)
    opts.onFallback?.('mptcp_unavailable')
  }
  const fd = libc.socket(domain, type, Linux.IPPROTO_TCP) as number
  if (fd < 0) throw syscallError('socket', `${what}, IPPROTO_TCP`, lastErrno())
  return { fd, protocol: 'tcp' }
}

function mptcpUnavailable (errno: number): SyscallError {
  const message = `kernel MPTCP is not available: socket(…, IPPROTO_MPTCP) failed with ${describeErrno(errno)}. ` +
    'Enable it with `sysctl net.mptcp.enabled=1` (per network namespace) on a kernel >= 5.6 built with ' +
    'CONFIG_MPTCP=y (CONFIG_MPTCP_IPV6 for IPv6), or allow fallback to TCP (onMptcpUnavailable: \'fallback\').'
  return new SyscallError('HYBRID_ERR_MPTCP_UNAVAILABLE', 'socket', errno, message, { detail: { syscall: 'socket', errno } })
}

export { closeFd }

/** bind(2) to an IP literal (HYBRID_ERR_SOCKET_ADDRESS for anything else). */
export function bindSocket (target: SocketTarget, host: string, port: number): void {
  bindFd(socketFd(target), encodeSockaddr(host, port), formatHostPort(host, port))
}

export function listenSocket (target: SocketTarget, backlog: number): void {
  listenFd(socketFd(target), backlog, `backlog ${backlog}`)
}

// --- setters ------------------------------------------------------------------------------

/** TCP_FASTOPEN_CONNECT: connect() returns at once; the SYN leaves with the first write(). */
export function setFastOpenConnect (target: SocketTarget, on = true): void {
  setsockoptInt(socketFd(target), Linux.IPPROTO_TCP, Linux.TCP_FASTOPEN_CONNECT, on ? 1 : 0, 'IPPROTO_TCP, TCP_FASTOPEN_CONNECT')
}

/**
 * TCP_NODELAY through FFI, always issuing the syscall (Node's setNoDelay skips it when its cached
 * value is unchanged). On an MPTCP socket, setting it to 1 also makes the kernel push any pending
 * data (mptcp_check_and_set_pending), which establish-gate.ts relies on.
 */
export function setNoDelay (target: SocketTarget, on = true): void {
  setsockoptInt(socketFd(target), Linux.IPPROTO_TCP, Linux.TCP_NODELAY, on ? 1 : 0, `IPPROTO_TCP, TCP_NODELAY ${on ? 1 : 0}`)
}

/** TCP_SYNCNT: SYN retransmissions before connect() gives up (1–127; Linux default 6 ≈ 127 s). */
export function setSynCount (target: SocketTarget, count: number): void {
  setsockoptInt(socketFd(target), Linux.IPPROTO_TCP, Linux.TCP_SYNCNT, count, `IPPROTO_TCP, TCP_SYNCNT ${count}`)
}

/** TCP_FASTOPEN on a listener: queue length of pending TFO requests (server side). */
export function setFastOpenQueue (target: SocketTarget, qlen: number): void {
  setsockoptInt(socketFd(target), Linux.IPPROTO_TCP, Linux.TCP_FASTOPEN, qlen, 'IPPROTO_TCP, TCP_FASTOPEN')
}

/** TCP_FASTOPEN_NO_COOKIE: send SYN data without a cookie (server needs tcp_fastopen 0x200). */
export function setFastOpenNoCookie (target: SocketTarget, on = true): void {
  setsockoptInt(socketFd(target), Linux.IPPROTO_TCP, Linux.TCP_FASTOPEN_NO_COOKIE, on ? 1 : 0, 'IPPROTO_TCP, TCP_FASTOPEN_NO_COOKIE')
}

/** IP_TRANSPARENT / IPV6_TRANSPARENT (CAP_NET_ADMIN or CAP_NET_RAW); MPTCP subflows inherit it. */
export function setTransparent (target: SocketTarget, family: 4 | 6, on = true): void {
  const fd = socketFd(target)
  if (family === 4) setsockoptInt(fd, Linux.SOL_IP, Linux.IP_TRANSPARENT, on ? 1 : 0, 'SOL_IP, IP_TRANSPARENT')
  else setsockoptInt(fd, Linux.SOL_IPV6, Linux.IPV6_TRANSPARENT, on ? 1 : 0, 'SOL_IPV6, IPV6_TRANSPARENT')
}

/** SO_MARK (CAP_NET_ADMIN), e.g. for per-WAN policy routing. */
export function setMark (target: SocketTarget, mark: number): void {
  setsockoptInt(socketFd(target), Linux.SOL_SOCKET, Linux.SO_MARK, mark | 0, 'SOL_SOCKET, SO_MARK')
}

/** SO_BINDTODEVICE (CAP_NET_RAW); an empty name removes the binding. */
export function setBindToDevice (target: SocketTarget, device: string): void {
  const name = Buffer.from(`${device}\0`, 'utf8')
  if (name.byteLength > 16) throw new HybridError('HYBRID_ERR_SOCKET_ADDRESS', `interface name too long: ${JSON.stringify(device)}`)
  setsockoptBytes(socketFd(target), Linux.SOL_SOCKET, Linux.SO_BINDTODEVICE, name, `SOL_SOCKET, SO_BINDTODEVICE ${device}`)
}

const lingerBuf = Buffer.alloc(8)

/**
 * SO_LINGER {l_onoff, l_linger = 0}: with `on`, every close of the socket — also the kernel's close
 * when the process dies (kill -9) — sends RST (plain TCP) or MP_FASTCLOSE + RST (MPTCP, measured on
 * 6.18: the peer reads ECONNRESET) instead of FIN, and drops unsent data. `on = false` restores the
 * default (FIN, unsent data still delivered). The relay sets it while a connection is relayed so
 * a crash never looks like a clean end of stream (relay.ts).
 */
export function setResetOnClose (target: SocketTarget, on: boolean): void {
  lingerBuf.writeInt32LE(on ? 1 : 0, 0)
  lingerBuf.writeInt32LE(0, 4)
  setsockoptBytes(socketFd(target), Linux.SOL_SOCKET, Linux.SO_LINGER, lingerBuf, `SOL_SOCKET, SO_LINGER {${on ? 1 : 0}, 0}`)
}

/**
 * `setResetOnClose(target, true)` at accept, for a connection still in its handshake (SOCKS5 or
 * Convert exchange, upstream dial): a process death then resets the client leg as it would a
 * relayed one. Returns the error instead of throwing (the connection works on without it). A path
 * that closes the connection on purpose with a reply to deliver calls `disarmResetOnClose` first.
 */
export function armResetOnClose (target: SocketTarget): Error | undefined {
  try {
    setResetOnClose(target, true)
    return undefined
  } catch (err) {
    return err as Error
  }
}

/**
 * Back to a normal close (FIN, queued bytes delivered) before a deliberate close with an answer
 * (a SOCKS5 failure reply, a Convert Error TLV): under SO_LINGER {1, 0} the close would discard the
 * answer still unsent and reset. A socket already gone (or no TCP handle, in unit tests) is left alone.
 */
export function disarmResetOnClose (target: SocketTarget): void {
  try { setResetOnClose(target, false) } catch { /* gone meanwhile: nothing to deliver */ }
}

/** Whether SO_LINGER {1, 0} is set (close sends a reset). */
export function resetOnClose (target: SocketTarget): boolean {
  const n = getsockoptInto(socketFd(target), Linux.SOL_SOCKET, Linux.SO_LINGER, lingerBuf)
  if (n < 0) throw syscallError('getsockopt', 'SOL_SOCKET, SO_LINGER', -n)
  return lingerBuf.readInt32LE(0) !== 0 && lingerBuf.readInt32LE(4) === 0
}

export function setReuseAddr (target: SocketTarget, on = true): void {
  setsockoptInt(socketFd(target), Linux.SOL_SOCKET, Linux.SO_REUSEADDR, on ? 1 : 0, 'SOL_SOCKET, SO_REUSEADDR')
}

/** SO_REUSEPORT: several sockets (of one user) bind the same address and port; the kernel spreads new connections over them. */
export function setReusePort (target: SocketTarget, on = true): void {
  setsockoptInt(socketFd(target), Linux.SOL_SOCKET, Linux.SO_REUSEPORT, on ? 1 : 0, 'SOL_SOCKET, SO_REUSEPORT')
}

export function setV6Only (target: SocketTarget, on = true): void {
  setsockoptInt(socketFd(target), Linux.SOL_IPV6, Linux.IPV6_V6ONLY, on ? 1 : 0, 'SOL_IPV6, IPV6_V6ONLY')
}

/**
 * Dead-peer detection for a relayed leg. The kernel counts keepalive idle and interval in whole
 * seconds: millisecond values are rounded up (1–32767 s).
 */
export interface LegKeepalive {
  /** TCP_KEEPIDLE: silence before the first probe. 0 = keepalive off (SO_KEEPALIVE 0). */
  idleMs: number
  /** TCP_KEEPINTVL: between unanswered probes. */
  intervalMs: number
  /** TCP_KEEPCNT: unanswered probes before the connection is dropped (ETIMEDOUT). */
  count: number
  /** TCP_USER_TIMEOUT: unacknowledged data older than this drops the connection. 0 = off. */
  userTimeoutMs: number
}

const keepSeconds = (ms: number): number => Math.min(32_767, Math.max(1, Math.ceil(ms / 1000)))

/**
 * Set SO_KEEPALIVE + TCP_KEEPIDLE/TCP_KEEPINTVL/TCP_KEEPCNT and TCP_USER_TIMEOUT in one go (Node's
 * setKeepAlive sets the idle time only, and libuv ≥ 1.45 forces interval 1 s, count 10).
 * On an MPTCP socket (Linux 6.18, measured) the keepalive options are accepted and copied to every
 * subflow, but TCP_USER_TIMEOUT is not (setsockopt ENOPROTOOPT): it is skipped there, and
 * keepalive alone bounds a vanished peer. Keepalive there only kills the dead subflows: the MPTCP
 * socket stays ESTABLISHED with no subflow and reports no error (measured on 6.18), so the relay
 * watches the subflow count of MPTCP legs (see relay.ts). Returns which options were applied.
 */
export function setLegKeepalive (target: SocketTarget, k: LegKeepalive): { keepalive: boolean, userTimeout: boolean, mptcp: boolean } {
  const fd = socketFd(target)
  const on = k.idleMs > 0
  setsockoptInt(fd, Linux.SOL_SOCKET, Linux.SO_KEEPALIVE, on ? 1 : 0, `SOL_SOCKET, SO_KEEPALIVE ${on ? 1 : 0}`)
  if (on) {
    setsockoptInt(fd, Linux.IPPROTO_TCP, Linux.TCP_KEEPIDLE, keepSeconds(k.idleMs), 'IPPROTO_TCP, TCP_KEEPIDLE')
    setsockoptInt(fd, Linux.IPPROTO_TCP, Linux.TCP_KEEPINTVL, keepSeconds(k.intervalMs), 'IPPROTO_TCP, TCP_KEEPINTVL')
    setsockoptInt(fd, Linux.IPPROTO_TCP, Linux.TCP_KEEPCNT, k.count, 'IPPROTO_TCP, TCP_KEEPCNT')
  }
  if (socketProtocol(fd) === 'mptcp') return { keepalive: on, userTimeout: false, mptcp: true }
  setsockoptInt(fd, Linux.IPPROTO_TCP, Linux.TCP_USER_TIMEOUT, k.userTimeoutMs, 'IPPROTO_TCP, TCP_USER_TIMEOUT')
  return { keepalive: on, userTimeout: k.userTimeoutMs > 0, mptcp: false }
}

/**
 * TCP_USER_TIMEOUT alone (ms, 0 = off: the kernel's retransmission and probe limits). Plain TCP
 * only (MPTCP sockets refuse it). The relay turns it off while a live peer keeps its window shut
 * (zero-window.ts) and back on when the window opens.
 */
export function setUserTimeout (target: SocketTarget, ms: number): void {
  setsockoptInt(socketFd(target), Linux.IPPROTO_TCP, Linux.TCP_USER_TIMEOUT, ms, `IPPROTO_TCP, TCP_USER_TIMEOUT ${ms}`)
}

const intBuf4 = Buffer.alloc(4)

const osErrnoNames = new Map<number, string>(Object.entries(osConstants.errno).map(([name, value]) => [value, name]))

/**
 * The socket's pending error (SO_ERROR, which also clears it) as an errno name such as
 * `ECONNRESET`; `undefined` when there is none or the socket is gone. Node (libuv) reports a reset
 * that arrives together with the last queued bytes as an end of stream: after a short read with
 * POLLHUP set it synthesises EOF without reading the error (measured: 10 000 bytes then RST to a
 * paused socket → 'end', SO_ERROR then ECONNRESET). The relay asks this at every 'end' so such a
 * reset is passed on as a reset, never as a FIN.
 */
export function pendingSocketError (target: SocketTarget): string | undefined {
  let fd: number
  try { fd = socketFd(target) } catch { return undefined }
  const n = getsockoptInto(fd, Linux.SOL_SOCKET, Linux.SO_ERROR, intBuf4)
  if (n < 4) return undefined
  const errno = intBuf4.readInt32LE(0)
  return errno === 0 ? undefined : (osErrnoNames.get(errno) ?? `errno ${errno}`)
}

/** The keepalive settings as the kernel has them (SO_KEEPALIVE, TCP_KEEP*, TCP_USER_TIMEOUT; ms). */
export function legKeepalive (target: SocketTarget): {
  keepalive: boolean,
  idleMs: number,
  intervalMs: number,
  count: number,
  userTimeoutMs: number | undefined
} {
  const fd = socketFd(target)
  const int = (level: number, name: number, what: string): number => getsockoptInt(fd, level, name, what)
  const ut = getsockoptInto(fd, Linux.IPPROTO_TCP, Linux.TCP_USER_TIMEOUT, intBuf4)
  if (ut < 0 && !notMptcp(ut)) throw syscallError('getsockopt', 'IPPROTO_TCP, TCP_USER_TIMEOUT', -ut)
  return {
    keepalive: int(Linux.SOL_SOCKET, Linux.SO_KEEPALIVE, 'SOL_SOCKET, SO_KEEPALIVE') !== 0,
    idleMs: int(Linux.IPPROTO_TCP, Linux.TCP_KEEPIDLE, 'IPPROTO_TCP, TCP_KEEPIDLE') * 1000,
    intervalMs: int(Linux.IPPROTO_TCP, Linux.TCP_KEEPINTVL, 'IPPROTO_TCP, TCP_KEEPINTVL') * 1000,
    count: int(Linux.IPPROTO_TCP, Linux.TCP_KEEPCNT, 'IPPROTO_TCP, TCP_KEEPCNT'),
    // MPTCP sockets answer EOPNOTSUPP: not settable there (see setLegKeepalive).
    userTimeoutMs: ut < 0 ? undefined : intBuf4.readInt32LE(0)
  }
}

// --- getters ------------------------------------------------------------------------------

/** SO_PROTOCOL: 'mptcp' (262) or 'tcp' (6). A client MPTCP socket that fell back stays 'mptcp'. */
export function socketProtocol (target: SocketTarget): SocketProtocol {
  const proto = getsockoptInt(socketFd(target), Linux.SOL_SOCKET, Linux.SO_PROTOCOL, 'SOL_SOCKET, SO_PROTOCOL')
  return proto === Linux.IPPROTO_MPTCP ? 'mptcp' : 'tcp'
}

/** SO_DOMAIN as an IP version. */
export function socketFamily (target: SocketTarget): 4 | 6 {
  const domain = getsockoptInt(socketFd(target), Linux.SOL_SOCKET, Linux.SO_DOMAIN, 'SOL_SOCKET, SO_DOMAIN')
  return domain === Linux.AF_INET6 ? 6 : 4
}

const mptcpInfoBuf = Buffer.alloc(MPTCP_INFO_BYTES)

/** True when the kernel answers a SOL_MPTCP getsockopt with "not MPTCP" (fallback or plain TCP). */
function notMptcp (n: number): boolean {
  return n === -Errno.EOPNOTSUPP || n === -Errno.ENOPROTOOPT
}

/** MPTCP_INFO; `undefined` on a plain-TCP or fallen-back socket (EOPNOTSUPP / ENOPROTOOPT). */
export function mptcpInfo (target: SocketTarget): MptcpInfo | undefined {
  const n = getsockoptInto(socketFd(target), Linux.SOL_MPTCP, Linux.MPTCP_INFO, mptcpInfoBuf)
  if (notMptcp(n)) return undefined
  if (n < 0) throw syscallError('getsockopt', 'SOL_MPTCP, MPTCP_INFO', -n)
  return decodeMptcpInfo(mptcpInfoBuf.subarray(0, n))
}

/**
 * True when the connection does not run MPTCP: the kernel answers SOL_MPTCP getsockopts with
 * EOPNOTSUPP/ENOPROTOOPT (a fallen-back MPTCP socket, or the plain-TCP socket an MPTCP listener
 * accepts from a TCP-only client), or MPTCP_INFO has the FALLBACK flag. On a socket created as
 * plain TCP it is also true.
 */
export function isMptcpFallback (target: SocketTarget): boolean {
  const n = getsockoptInto(socketFd(target), Linux.SOL_MPTCP, Linux.MPTCP_INFO, mptcpInfoBuf)
  if (notMptcp(n)) return true
  if (n < 0) throw syscallError('getsockopt', 'SOL_MPTCP, MPTCP_INFO', -n)
  return n >= 12 && (mptcpInfoBuf.readUInt32LE(8) & 0x1) !== 0
}

const tcpInfoBuf = Buffer.alloc(TCP_INFO_BYTES)

/** TCP_INFO (on an MPTCP socket: the initial/first subflow; works on fallback sockets too). */
export function tcpInfo (target: SocketTarget): TcpInfo {
  const n = getsockoptInto(socketFd(target), Linux.IPPROTO_TCP, Linux.TCP_INFO, tcpInfoBuf)
  if (n < 0) throw syscallError('getsockopt', 'IPPROTO_TCP, TCP_INFO', -n)
  const info = decodeTcpInfo(tcpInfoBuf.subarray(0, n))
  if (info === undefined) throw syscallError('getsockopt', `IPPROTO_TCP, TCP_INFO returned only ${n} bytes`, Errno.EINVAL)
  return info
}

let sharedReader: MptcpFullInfoReader | undefined

/**
 * MPTCP_FULL_INFO: the connection plus every subflow (addresses joined with per-subflow tcp_info)
 * in one consistent snapshot; `undefined` on plain/fallback sockets (and kernels < 6.5).
 * Pass your own `reader` to control the native buffers' lifetime; otherwise a process-wide reader
 * (≈ 4.4 KB of native memory, allocated on first use) is reused.
 */
export function mptcpFullInfo (target: SocketTarget, reader?: MptcpFullInfoReader): MptcpFullInfo | undefined {
  const r = reader ?? (sharedReader ??= new MptcpFullInfoReader())
  return r.read(socketFd(target))
}

const origDstBuf = Buffer.alloc(SockaddrSize.in6)

/**
 * SO_ORIGINAL_DST (IPv4: SOL_IP, IPv6: SOL_IPV6 = IP6T_SO_ORIGINAL_DST): the destination before an
 * nft/iptables REDIRECT or DNAT. Without NAT (flow tracked by conntrack) it returns the local
 * address; without a conntrack entry it throws (ENOENT); on MPTCP sockets it throws (EOPNOTSUPP,
 * measured on 6.18). With TPROXY the original destination is simply `socket.localAddress`/`localPort`.
 */
export function originalDestination (target: SocketTarget): { address: string, port: number, family: 4 | 6 } {
  const fd = socketFd(target)
  const family = socketFamily(fd)
  const level = family === 4 ? Linux.SOL_IP : Linux.SOL_IPV6
  const len = family === 4 ? SockaddrSize.in : SockaddrSize.in6
  const what = family === 4 ? 'SOL_IP, SO_ORIGINAL_DST' : 'SOL_IPV6, IP6T_SO_ORIGINAL_DST'
  const n = getsockoptInto(fd, level, Linux.SO_ORIGINAL_DST, origDstBuf, len)
  if (n < 0) throw syscallError('getsockopt', what, -n)
  const addr: SocketAddress | undefined = decodeSockaddr(origDstBuf.subarray(0, n))
  if (addr === undefined) throw syscallError('getsockopt', `${what} returned an unknown address`, Errno.EINVAL)
  return { address: addr.address, port: addr.port, family: addr.family }
}
