/**
 * Dead-peer detection of relayed connections (both data planes; relay.ts explains why each watch
 * exists): keepalive options on both legs, the subflow watch of MPTCP legs (keepalive only kills
 * subflows, the MPTCP socket stays up with none) and the zero-window watch of plain legs with a
 * user timeout (zero-window.ts).
 */
import type { Socket } from 'node:net'
import { MPTCP_INFO_BYTES } from '../codec/mptcp-info.ts'
import { TCP_INFO_BYTES } from '../codec/tcp-info.ts'
import { Linux, setLegKeepalive, setUserTimeout, socketFd, type LegKeepalive } from './sockopt.ts'
import { getsockoptInto } from './syscall.ts'
import { zeroWindowAction, zeroWindowCheckMs } from './zero-window.ts'

/** One relay's dead-peer watch (the subflow count of its MPTCP legs, the window of its plain legs with a user timeout). */
interface PeerWatch {
  readonly client: Socket
  readonly server: Socket
  /** Per leg (0 client, 1 server): watched for subflows / for a shut window. */
  readonly subflowLegs: readonly [boolean, boolean]
  readonly windowLegs: readonly [boolean, boolean]
  readonly userTimeoutMs: number
  readonly onDead: (message: string) => void
  /** Consecutive subflow checks that found no subflow, per leg. */
  readonly empty: [number, number]
  /** Whether we switched the leg's TCP_USER_TIMEOUT off (window shut), per leg. */
  readonly windowOff: [boolean, boolean]
  stopped: boolean
}

/**
 * The checks of every relay with the same period share one timer (a bucket): per relay the watch
 * costs one small record (≈ 0.1 KB) instead of two intervals with their closures, a Map and a Set
 * (≈ 1.2 KB per idle relayed connection, measured with heap snapshots: bench/results/relay-*.md), and
 * a check reads only the fields it needs (decoding all of MPTCP_INFO / TCP_INFO per leg and check
 * was most of what an idle daemon allocated). The bucket holds its watches weakly: the relay owns
 * its record (`timers` of watchPeers), so a relay that ended and was collected drops out of its
 * bucket even when nobody called `stop` — the splice relay only clears its timers.
 */
class WatchBucket {
  readonly #watches = new Set<WeakRef<PeerWatch>>()
  readonly #check: (w: PeerWatch) => void
  readonly #periodMs: number
  #timer: NodeJS.Timeout | undefined

  constructor (periodMs: number, check: (w: PeerWatch) => void) {
    this.#periodMs = periodMs
    this.#check = check
  }

  add (w: PeerWatch): void {
    this.#watches.add(new WeakRef(w))
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => { this.#sweep() }, this.#periodMs)
      this.#timer.unref()
    }
  }

  /** Watches held (`live`: only those of relays still running). */
  count (live: boolean): number {
    if (!live) return this.#watches.size
    let n = 0
    for (const ref of this.#watches) { const w = ref.deref(); if (w !== undefined && !ended(w)) n++ }
    return n
  }

  #sweep (): void {
    for (const ref of this.#watches) {
      const w = ref.deref()
      if (w === undefined || ended(w)) { this.#watches.delete(ref); continue }
      this.#check(w)
    }
    if (this.#watches.size === 0) { clearInterval(this.#timer); this.#timer = undefined }
  }
}

function ended (w: PeerWatch): boolean {
  return w.stopped || (w.client.destroyed && w.server.destroyed)
}

const subflowBuckets = new Map<number, WatchBucket>()
const windowBuckets = new Map<number, WatchBucket>()

function bucket (buckets: Map<number, WatchBucket>, periodMs: number, check: (w: PeerWatch) => void): WatchBucket {
  let b = buckets.get(periodMs)
  if (b === undefined) { b = new WatchBucket(periodMs, check); buckets.set(periodMs, b) }
  return b
}

/** Watches of running relays (`live`, default), or all the shared timers still hold (an ended relay's until their next check). Tests. */
export function peerWatchCount (live = true): number {
  let n = 0
  for (const b of [...subflowBuckets.values(), ...windowBuckets.values()]) n += b.count(live)
  return n
}

const mptcpInfoScratch = Buffer.alloc(MPTCP_INFO_BYTES)
const tcpInfoScratch = Buffer.alloc(TCP_INFO_BYTES)
/** struct mptcp_info: mptcpi_subflows_total (u8, Linux ≥ 6.10). */
const MPTCPI_SUBFLOWS_TOTAL = 80
/** struct tcp_info: tcpi_unacked, tcpi_last_ack_recv, tcpi_notsent_bytes (u32). */
const TCPI_UNACKED = 24
const TCPI_LAST_ACK_RECV = 56
const TCPI_NOTSENT_BYTES = 144

/** mptcpi_subflows_total of a leg; undefined on kernels without it (< 6.10), fallen-back legs and closed sockets. */
function subflowsTotal (leg: Socket): number | undefined {
  let n: number
  try {
    n = getsockoptInto(socketFd(leg), Linux.SOL_MPTCP, Linux.MPTCP_INFO, mptcpInfoScratch)
  } catch {
    return undefined
  }
  return n > MPTCPI_SUBFLOWS_TOTAL ? mptcpInfoScratch.readUInt8(MPTCPI_SUBFLOWS_TOTAL) : undefined
}

/**
 * Every keepalive interval (≥ 1 s), the subflow count of each watched MPTCP leg; a leg with no
 * subflow at two checks in a row is dead. Kernels without `subflowsTotal` (< 6.10) and fallen-back
 * legs are skipped.
 */
function checkSubflows (w: PeerWatch): void {
  for (let i = 0; i < 2; i++) {
    const leg = i === 0 ? w.client : w.server
    if (!w.subflowLegs[i] || leg.destroyed) continue
    const total = subflowsTotal(leg)
    if (total === undefined) continue
    w.empty[i] = total === 0 ? (w.empty[i] ?? 0) + 1 : 0
    if ((w.empty[i] ?? 0) >= 2) {
      w.stopped = true
      w.onDead(`MPTCP leg ${i === 0 ? 'client' : 'server'} has no subflow left (keepalive)`)
      return
    }
  }
}

/** zero-window.ts on each watched plain leg: user timeout off while a live peer keeps its window shut, dead after no ACK to the probes. */
function checkWindows (w: PeerWatch): void {
  for (let i = 0; i < 2; i++) {
    const leg = i === 0 ? w.client : w.server
    if (!w.windowLegs[i] || leg.destroyed) continue
    try {
      const n = getsockoptInto(socketFd(leg), Linux.IPPROTO_TCP, Linux.TCP_INFO, tcpInfoScratch)
      if (n < TCPI_LAST_ACK_RECV + 4) continue
      const action = zeroWindowAction({
        unacked: tcpInfoScratch.readUInt32LE(TCPI_UNACKED),
        notsentBytes: n >= TCPI_NOTSENT_BYTES + 4 ? tcpInfoScratch.readUInt32LE(TCPI_NOTSENT_BYTES) : undefined,
        lastAckRecvMs: tcpInfoScratch.readUInt32LE(TCPI_LAST_ACK_RECV)
      }, w.windowOff[i] ?? false, w.userTimeoutMs)
      if (action === 'off') { setUserTimeout(leg, 0); w.windowOff[i] = true } else if (action === 'on') {
        setUserTimeout(leg, w.userTimeoutMs); w.windowOff[i] = false
      } else if (action === 'dead') {
        w.stopped = true
        w.onDead(`${i === 0 ? 'client' : 'server'} leg: window shut and no ACK to zero-window probes (peer gone)`)
        return
      }
    } catch {
      // The socket closed between the check and the call: the relay's close handling takes over.
    }
  }
}

/**
 * Dead-peer detection on both legs: keepalive options, the subflow watch of MPTCP legs and the
 * zero-window watch of legs with a user timeout. `onDead(message)` when a watch finds a peer gone.
 * `timers` holds the relay's watch record (keep it while the relay lives; `clearInterval` on it is
 * a no-op): the watch ends when both legs are destroyed, when `stopPeerWatch` is called, or when
 * the relay is collected.
 */
export function watchPeers (client: Socket, server: Socket, k: LegKeepalive,
  onDead: (message: string) => void): { timers: NodeJS.Timeout[], sockoptError?: Error } {
  const subflowLegs: [boolean, boolean] = [false, false]
  const windowLegs: [boolean, boolean] = [false, false]
  let sockoptError: Error | undefined
  for (let i = 0; i < 2; i++) {
    try {
      const applied = setLegKeepalive(i === 0 ? client : server, k)
      subflowLegs[i] = applied.mptcp && k.idleMs > 0
      windowLegs[i] = applied.userTimeout
    } catch (err) {
      sockoptError ??= err as Error
    }
  }
  const timers: NodeJS.Timeout[] = []
  if (subflowLegs[0] || subflowLegs[1] || windowLegs[0] || windowLegs[1]) {
    const w: PeerWatch = {
      client, server, subflowLegs, windowLegs, userTimeoutMs: k.userTimeoutMs, onDead, empty: [0, 0], windowOff: [false, false], stopped: false
    }
    if (windowLegs[0] || windowLegs[1]) bucket(windowBuckets, zeroWindowCheckMs(k.userTimeoutMs), checkWindows).add(w)
    if (subflowLegs[0] || subflowLegs[1]) bucket(subflowBuckets, Math.max(1000, k.intervalMs), checkSubflows).add(w)
    timers.push(w as unknown as NodeJS.Timeout)
  }
  return sockoptError === undefined ? { timers } : { timers, sockoptError }
}

/** End the watches of `timers` (from watchPeers) now. */
export function stopPeerWatch (timers: readonly NodeJS.Timeout[]): void {
  for (const t of timers) (t as unknown as PeerWatch).stopped = true
}
