/**
 * Keep an accepted MPTCP socket's writes out of the kernel until its MPTCP handshake completes.
 *
 * Two kernel behaviours (Linux 6.18, seen in the lab with a 20 ms RTT; hidden on delay-free veth
 * because the third ACK always won the race) hit MPTCP sockets accepted through TCP Fast Open,
 * whose SYN data the application reads before the client's third ACK (MP_CAPABLE with both keys,
 * RFC 8684 §3.1) has arrived:
 *  1. bytes (and a FIN) handed to the kernel before that ACK are not transmitted when it arrives;
 *     they wait for the client's next segment — a SOCKS5 reply or Convert header answered from the
 *     SYN data stalled until the client gave up (5-line server: write at +2 ms → no reply in 1 s);
 *  2. when a lot was queued before that ACK (a fast upstream's bulk response), the transfer later
 *     stalls mid-stream (client MPTcpExtNoDSSInWindow rising, the server retransmitting): 2 of 3
 *     TFO connections stuck after 4–7 MB, none when the first write came after the handshake.
 *
 * So nothing may reach the kernel before the handshake completes: the stream is corked, and
 * `end()` is deferred too, because Writable.end() force-uncorks. A corked stream still applies
 * backpressure (write() returns false past the high-water mark), so a relay pauses its source.
 * When MPTCP_INFO reports REMOTE_KEY_RECEIVED (set by the third ACK on the passive side) the
 * queued bytes and FIN are released. The SYN data is still read and acted on at once, so the
 * upstream connect is not delayed; the first reply leaves one RTT after the SYN, as from a plain
 * TCP server. Costs one getsockopt per accept when the key is already there (every non-TFO accept).
 */
import type { Socket } from 'node:net'
import { mptcpInfo } from './sockopt.ts'

export interface EstablishGateOptions {
  /** Poll interval while waiting for the third ACK. Milliseconds; default 1. */
  pollMs?: number
  /** Release anyway after this long. Milliseconds; default 3000. */
  timeoutMs?: number
}

type Handshake = 'waiting' | 'established' | 'gone'
type EndArgs = Parameters<Socket['end']>

function handshakeState (socket: Socket): Handshake {
  if (socket.destroyed) return 'gone'
  try {
    const info = mptcpInfo(socket)
    if (info === undefined || info.fallback) return 'gone' // plain TCP: nothing to hold
    return info.remoteKeyReceived ? 'established' : 'waiting'
  } catch {
    return 'gone' // fd already closed
  }
}

/**
 * Hold `socket`'s writes and FIN until its MPTCP handshake completes; a no-op for plain TCP,
 * fallback and already-established sockets. Call right after accept, before any write.
 */
export function holdWritesUntilEstablished (socket: Socket, opts: EstablishGateOptions = {}): void {
  if (handshakeState(socket) !== 'waiting') return
  const pollMs = opts.pollMs ?? 1
  const deadline = Date.now() + (opts.timeoutMs ?? 3000)
  let timer: NodeJS.Timeout | undefined
  let pendingEnd: EndArgs | undefined
  const originalEnd = socket.end
  socket.cork()
  // Own property shadowing Socket.prototype.end until release; removed again below.
  socket.end = function deferredEnd (...args: EndArgs): Socket {
    pendingEnd = args
    return socket
  } as Socket['end']

  const release = (): void => {
    clearTimeout(timer)
    socket.off('close', release)
    delete (socket as { end?: unknown }).end
    if (socket.destroyed) return
    socket.uncork()
    if (pendingEnd !== undefined) originalEnd.apply(socket, pendingEnd)
  }
  const tick = (): void => {
    if (handshakeState(socket) === 'waiting' && Date.now() < deadline) {
      timer = setTimeout(tick, pollMs)
      return
    }
    release()
  }
  socket.on('close', release)
  timer = setTimeout(tick, pollMs)
}
