/**
 * Which pending upstream connects to abort and dial again when an access dies (docs/failover.md,
 * "Connects caught in the detection window"). Pure: the caller (pending-dials.ts) reads the
 * sockets' TCP state and local path and runs the re-dials.
 *
 * An attempt qualifies only while its (initial) subflow is in SYN_SENT: no SYN-ACK seen, so the
 * peer has not (as far as the CPE can know) accepted anything. A SYN carrying data (TFO, a
 * pipelined SOCKS5 handshake, a Convert TLV) may still have been delivered over a one-way-lossy
 * path; the re-dial replays it then. Once the handshake is over nothing is ever re-dialled.
 *
 * - `path_down` (the failover controller has steered off a path that went down, so new
 *   connects are already steered away): every SYN_SENT attempt on that path, or on no known path.
 * - `stalled` (periodic sweep): a SYN_SENT attempt pending for at least `boundMs` (the health
 *   detection time) on a path that is down, or on no known path while some path is down.
 */

/** tcpi_state of a socket whose SYN is unanswered (include/net/tcp_states.h). */
export const TCP_SYN_SENT = 2

export const RedialReason = ['path_down', 'stalled'] as const
export type RedialReason = (typeof RedialReason)[number]

export interface PendingAttempt {
  readonly id: number
  /** tcpi_state of the attempt's socket (its first subflow for MPTCP); undefined when unreadable. */
  readonly tcpState: number | undefined
  /** The uplink the attempt leaves over (its local address, else the steering at dial time). */
  readonly path: string | undefined
  /** Monotonic ms since the attempt was dialled. */
  readonly ageMs: number
}

export type RedialTrigger =
  | { readonly kind: 'path_down', readonly path: string }
  | { readonly kind: 'sweep', readonly downPaths: ReadonlySet<string>, readonly boundMs: number }

export interface RedialDecision { readonly id: number, readonly reason: RedialReason }

/** The attempts to re-dial for a trigger, in input order. Attempts in any state but SYN_SENT are left alone. */
export function attemptsToRedial (attempts: readonly PendingAttempt[], trigger: RedialTrigger): RedialDecision[] {
  const out: RedialDecision[] = []
  for (const a of attempts) {
    if (a.tcpState !== TCP_SYN_SENT) continue
    if (trigger.kind === 'path_down') {
      if (a.path === undefined || a.path === trigger.path) out.push({ id: a.id, reason: 'path_down' })
      continue
    }
    if (a.ageMs < trigger.boundMs || trigger.downPaths.size === 0) continue
    if (a.path === undefined || trigger.downPaths.has(a.path)) out.push({ id: a.id, reason: 'stalled' })
  }
  return out
}

/** Blackhole detection time of path health: `(downAfter − 1) × intervalMs + timeoutMs` (docs/path-health.md). */
export function detectionMs (h: { downAfter: number, intervalMs: number, timeoutMs: number }): number {
  return (h.downAfter - 1) * h.intervalMs + h.timeoutMs
}
