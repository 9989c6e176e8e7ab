/**
 * Push an accepted MPTCP socket's early replies out once the MPTCP handshake completes.
 *
 * Kernel behaviour (Linux 6.18, seen in the lab with a 20 ms RTT; not seen on delay-free veth):
 * on an MPTCP socket accepted through TCP Fast Open the application reads the SYN data at once,
 * but bytes (and a FIN) it hands to the kernel before the client's third ACK — MP_CAPABLE with
 * both keys, RFC 8684 §3.1 — has arrived are NOT transmitted when that ACK arrives: they wait
 * until the client's next segment. A SOCKS5 reply or a Convert header answered from the SYN data
 * therefore stalled until the client gave up (reproduced with a 5-line server: write at +2 ms →
 * no reply in 1 s; write at +30 ms → reply after one RTT).
 *
 * Fix at the shared depth, without touching what the application writes: poll MPTCP_INFO until
 * REMOTE_KEY_RECEIVED (set by the third ACK on the passive side), then issue
 * setsockopt(TCP_NODELAY, 1), which on an MPTCP socket makes the kernel push pending data
 * (mptcp_check_and_set_pending). The SYN data is still read and acted on immediately, so the
 * upstream connect is not delayed. (Corking the stream instead does not work: Writable.end()
 * force-uncorks, and a short upstream response ends the leg within milliseconds.)
 *
 * Side effect: Nagle is off on these sockets, as it is on every relay leg we dial.
 * Costs one getsockopt per accept when the key is already there (every non-TFO accept).
 */
import type { Socket } from 'node:net'
import { mptcpInfo, setNoDelay } from './sockopt.ts'

export interface EstablishGateOptions {
  /** Poll interval while waiting for the third ACK. Milliseconds; default 1. */
  pollMs?: number
  /** Stop watching after this long. Milliseconds; default 3000. */
  timeoutMs?: number
}

type Handshake = 'waiting' | 'established' | 'gone'

function handshakeState (socket: Socket): Handshake {
  if (socket.destroyed) return 'gone'
  try {
    const info = mptcpInfo(socket)
    if (info === undefined || info.fallback) return 'gone' // plain TCP: nothing to do
    return info.remoteKeyReceived ? 'established' : 'waiting'
  } catch {
    return 'gone' // fd already closed
  }
}

/**
 * Watch a freshly accepted socket; when its MPTCP handshake completes, push whatever the
 * application queued before that. A no-op for plain TCP, fallback and already-established sockets.
 */
export function pushWhenEstablished (socket: Socket, opts: EstablishGateOptions = {}): void {
  if (handshakeState(socket) !== 'waiting') return
  const pollMs = opts.pollMs ?? 1
  const deadline = Date.now() + (opts.timeoutMs ?? 3000)
  let timer: NodeJS.Timeout | undefined
  const stop = (): void => {
    clearTimeout(timer)
    socket.off('close', stop)
  }
  const tick = (): void => {
    const state = handshakeState(socket)
    if (state === 'waiting' && Date.now() < deadline) {
      timer = setTimeout(tick, pollMs)
      return
    }
    stop()
    if (state === 'established') {
      try { setNoDelay(socket) } catch { /* closed in between: nothing to push */ }
    }
  }
  socket.on('close', stop)
  timer = setTimeout(tick, pollMs)
}
