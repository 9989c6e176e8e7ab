/**
 * TCP_USER_TIMEOUT without killing slow readers. Since Linux 5.11 ("tcp: fix TCP_USER_TIMEOUT with
 * zero window") the user timeout also bounds zero-window probing: a peer whose receive window stays
 * shut for longer than the timeout is dropped with ETIMEDOUT, even though it answers every probe.
 * For a proxy that is wrong: a LAN client that stops reading (a paused video player, a download
 * manager, the slow-reader e2e) is alive, and the relay's backpressure already bounds what it costs.
 * With `limits.userTimeoutMs` 60 s every stalled download through the CPE was cut after a minute
 * (measured: 6 of 6 stalled for 80 s were gone), the kernel's abort sends no RST, and a client that
 * resumed reading could hang on a connection that no longer existed.
 *
 * So while a plain-TCP leg is window-stalled — nothing in flight (`tcpi_unacked` 0) but bytes
 * queued (`tcpi_notsent_bytes` > 0): only the peer's window holds them — the relay switches the
 * leg's TCP_USER_TIMEOUT off, and back on as soon as data is in flight again (the window opened,
 * which also resets the kernel's probe timestamp, so re-enabling cannot fire early). A peer that
 * vanishes while stalled stops answering probes; the kernel probes at least every TCP_RTO_MAX
 * (120 s) even after backing off, so no ACK for longer than the user timeout plus 120 s means it
 * is gone: the relay ends with `peer_timeout` itself. Unacknowledged data in flight keeps the
 * kernel's user timeout, unchanged.
 */
import type { Socket } from 'node:net'
import { setUserTimeout, tcpInfo } from './sockopt.ts'

/** Linux TCP_RTO_MAX: the longest interval between two zero-window probes. */
export const ZERO_WINDOW_PROBE_MAX_MS = 120_000

export interface WindowSample {
  /** tcpi_unacked: segments in flight. */
  unacked: number
  /** tcpi_notsent_bytes: bytes queued, not yet sent (undefined on kernels < 4.6: never stalled). */
  notsentBytes: number | undefined
  /** tcpi_last_ack_recv. */
  lastAckRecvMs: number
}

/** What to do with a leg after one sample: switch the user timeout off / on, end it as dead, or nothing. */
export type ZeroWindowAction = 'off' | 'on' | 'dead' | 'none'

/** Pure decision for one sample; `off` = the leg's user timeout is currently switched off by us. */
export function zeroWindowAction (s: WindowSample, off: boolean, userTimeoutMs: number): ZeroWindowAction {
  const stalled = s.unacked === 0 && (s.notsentBytes ?? 0) > 0
  if (!stalled) return off ? 'on' : 'none'
  if (s.lastAckRecvMs > userTimeoutMs + ZERO_WINDOW_PROBE_MAX_MS) return 'dead'
  return off ? 'none' : 'off'
}

/** How often a leg is sampled: a quarter of the user timeout (so the switch comes well before it), 200 ms – 15 s. */
export function zeroWindowCheckMs (userTimeoutMs: number): number {
  return Math.min(15_000, Math.max(200, Math.floor(userTimeoutMs / 4)))
}

/**
 * Sample `legs` (plain TCP, user timeout `userTimeoutMs` > 0 set) every zeroWindowCheckMs and apply
 * zeroWindowAction; `onDead(leg)` once for a stalled leg whose peer stopped answering. One getsockopt
 * per leg and check (≈ 0.13 per second per relayed connection with the 60 s default). Returns the
 * timer (unref'd); clear it when the relay ends.
 */
export function watchZeroWindow (legs: readonly Socket[], userTimeoutMs: number, onDead: (leg: Socket) => void): NodeJS.Timeout {
  const off = new Set<Socket>()
  const timer = setInterval(() => {
    for (const leg of legs) {
      if (leg.destroyed) continue
      try {
        const t = tcpInfo(leg)
        const action = zeroWindowAction({ unacked: t.unacked, notsentBytes: t.notsentBytes, lastAckRecvMs: t.lastAckRecvMs }, off.has(leg),
          userTimeoutMs)
        if (action === 'off') { setUserTimeout(leg, 0); off.add(leg) } else if (action === 'on') {
          setUserTimeout(leg,
            userTimeoutMs); off.delete(leg)
        } else if (action === 'dead') { onDead(leg); return }
      } catch {
        // The socket closed between the check and the call: the relay's close handling takes over.
      }
    }
  }, zeroWindowCheckMs(userTimeoutMs))
  timer.unref()
  return timer
}
