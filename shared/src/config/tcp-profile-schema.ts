/**
 * The TCP/MPTCP kernel profile keys both daemons own while they run (concentrator `kernel:`, CPE
 * `failover.kernel:`; applied by shared/src/sys/sysctl-profile.ts, docs/failover.md). Every key
 * unset leaves the kernel alone; a set key is written at start and its previous value restored at
 * stop. One definition, so the two daemons' keys cannot drift apart.
 */
import { Type } from 'typebox'

export const tcpProfileProperties = {
  /** `net.mptcp.stale_loss_cnt` (kernel default 4). Unset: leave alone. */
  staleLossCnt: Type.Optional(Type.Integer({
    minimum: 1,
    maximum: 100,
    unit: 'intervals',
    description: 'net.mptcp.stale_loss_cnt: retransmission intervals without progress before a subflow is stale and data moves off it (unset: leave alone); restored at stop'
  })),
  /** `net.ipv4.tcp_rto_max_ms` (kernel default 120000). Unset: leave alone. Below 120000 needs `tcpRetries2`. */
  rtoMaxMs: Type.Optional(Type.Integer({
    minimum: 1000,
    maximum: 120_000,
    unit: 'ms',
    description: 'net.ipv4.tcp_rto_max_ms: cap of the retransmission back-off, so a subflow towards a revived access resumes quickly (unset: leave alone; below 120000 needs tcpRetries2); restored at stop'
  })),
  /** `net.ipv4.tcp_retries2` (kernel default 15). Unset: leave alone. */
  tcpRetries2: Type.Optional(Type.Integer({
    minimum: 3,
    maximum: 255,
    unit: 'retransmissions',
    description: 'net.ipv4.tcp_retries2: retransmissions before a connection or subflow is given up; raise it with a small rtoMaxMs (unset: leave alone); restored at stop'
  })),
  /** Max field of `net.ipv4.tcp_wmem` (kernel default 4194304). Unset: leave alone. */
  tcpWmemMax: Type.Optional(Type.Integer({
    minimum: 65_536,
    maximum: 1_073_741_824,
    unit: 'bytes',
    description: 'net.ipv4.tcp_wmem max field: cap of the send-buffer auto-tuning, which bounds how long a re-injection after a dead access waits behind the unsent backlog of the live subflow (min and default kept, clamped to it; unset: leave alone); restored at stop'
  }))
}
