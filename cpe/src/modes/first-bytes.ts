/**
 * Coalescing of the LAN client's first bytes with the SOCKS5 handshake: the agent waits up to
 * `windowMs` after accept for the client to speak (a TLS ClientHello, an HTTP request) so those bytes
 * travel in the same write as greeting + auth + CONNECT, i.e. in the TFO SYN. Server-speaks-first
 * protocols (SMTP, SSH) only cost the window.
 *
 * `coalesceDecision` is the pure rule; `collectFirstBytes` applies it to a socket. While collecting
 * nothing else reads the socket; afterwards it is paused (no reading while the upstream is dialled:
 * docs/design/threat-model.md, threat 6) and bytes beyond the cap are pushed back with `unshift`.
 *
 * End of stream (the client half-closed, `nc -N`) sends at once and is reported as `ended`; the
 * 'end' event is consumed here, so the socket's `readableEnded` is what tells the relay to pass the
 * FIN on (shared/src/net/relay.ts). A Convert → socks5 fallback hands `FirstBytes` over instead of
 * pushing the bytes back (a stream refuses `unshift` after its end). docs/cpe.md.
 */
import type net from 'node:net'

export interface CoalesceState {
  /** Bytes collected so far. */
  buffered: number
  /** Milliseconds since collection began. */
  elapsedMs: number
  /** The client sent FIN (or the socket closed). */
  ended: boolean
}

export interface CoalesceLimits {
  windowMs: number
  /** Early-data cap (limits.earlyDataMaxBytes). */
  maxBytes: number
}

export type CoalesceDecision = 'wait' | 'send'

/**
 * Send when the window has passed, the cap is reached, the client ended, or (window 0) at once.
 * Having some bytes does not end the window early: a client may write a request in two chunks
 * (headers, then body) within a millisecond, and every byte in the SYN saves a round trip.
 */
export function coalesceDecision (s: CoalesceState, limits: CoalesceLimits): CoalesceDecision {
  if (s.ended || limits.windowMs <= 0) return 'send'
  if (s.buffered >= limits.maxBytes) return 'send'
  return s.elapsedMs >= limits.windowMs ? 'send' : 'wait'
}

export interface FirstBytes {
  data: Buffer
  /** The client half-closed (or the socket closed) while collecting. */
  ended: boolean
}

/**
 * Collects the client's first bytes per `coalesceDecision`; resolves once (never rejects). The socket
 * is left paused with no 'data' listener; any bytes over `maxBytes` are unshifted back into it.
 */
export function collectFirstBytes (socket: net.Socket, limits: CoalesceLimits,
  now: () => number = performance.now.bind(performance)): Promise<FirstBytes> {
  const started = now()
  const chunks: Buffer[] = []
  let buffered = 0
  let ended = false
  return new Promise((resolve) => {
    const pending: { timer?: NodeJS.Timeout } = {}
    const finish = (): void => {
      clearTimeout(pending.timer)
      socket.off('data', onData)
      socket.off('end', onEnd)
      socket.off('close', onEnd)
      socket.pause()
      let data = chunks.length === 1 ? chunks[0] ?? Buffer.alloc(0) : Buffer.concat(chunks)
      if (data.length > limits.maxBytes) {
        if (!socket.destroyed) socket.unshift(data.subarray(limits.maxBytes))
        data = data.subarray(0, limits.maxBytes)
      }
      resolve({ data, ended })
    }
    const check = (): boolean => {
      if (coalesceDecision({ buffered, elapsedMs: now() - started, ended }, limits) === 'wait') return false
      finish()
      return true
    }
    const onData = (chunk: Buffer): void => { chunks.push(chunk); buffered += chunk.length; check() }
    const onEnd = (): void => { ended = true; check() }
    if (check()) return
    socket.on('data', onData)
    socket.on('end', onEnd)
    socket.on('close', onEnd)
    pending.timer = setTimeout(finish, limits.windowMs)
  })
}
