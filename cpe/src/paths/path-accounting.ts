/**
 * Per-path byte accounting from MPTCP_FULL_INFO samples (pure). Each sample lists a connection's
 * subflows with their cumulative `tcpi_bytes_acked` (sent and acknowledged: `up`) and
 * `tcpi_bytes_received` (`down`); a subflow belongs to the path (uplink) owning its local address.
 * Only the growth since the previous sample of the same subflow is counted, so periodic samples plus
 * a final one never count a byte twice.
 *
 * Not `bytes_sent` (that includes retransmissions). `bytes_acked` also counts the SYN (and the FIN)
 * as one byte each: the first sample of a subflow subtracts 1; the FIN's byte is left in (≤ 1 byte per
 * subflow). Subflows whose local address belongs to no uplink are not counted.
 */
import { unmapV4 } from '../../../shared/src/net/endpoint.ts'

export interface SubflowSample {
  localAddress: string
  localPort: number
  remoteAddress: string
  remotePort: number
  /** Cumulative tcpi_bytes_acked (includes the SYN); undefined on kernels without it. */
  bytesAcked: number | undefined
  /** Cumulative tcpi_bytes_received. */
  bytesReceived: number | undefined
  rttUs: number
}

export interface PathTotals { up: number, down: number, subflows: number, rttUs: number[] }

interface Seen { up: number, down: number }

const subflowKey = (s: SubflowSample): string => `${s.localAddress}|${s.localPort}|${s.remoteAddress}|${s.remotePort}`

export class PathAccounting {
  /** connection id → subflow key → counted so far. */
  readonly #seen = new Map<number, Map<string, Seen>>()

  /**
   * Records one sample of connection `connId`; returns per path the bytes not yet counted, the
   * subflows in this sample and their RTTs. `pathOf` maps a local address to a path name.
   */
  sample (connId: number, subflows: readonly SubflowSample[], pathOf: (address: string) => string | undefined): Map<string, PathTotals> {
    let seen = this.#seen.get(connId)
    if (seen === undefined) {
      seen = new Map()
      this.#seen.set(connId, seen)
    }
    const out = new Map<string, PathTotals>()
    for (const s of subflows) {
      const path = pathOf(s.localAddress)
      if (path === undefined) continue
      const key = subflowKey(s)
      const up = Math.max(0, (s.bytesAcked ?? 0) - 1)
      const down = Math.max(0, s.bytesReceived ?? 0)
      const before = seen.get(key) ?? { up: 0, down: 0 }
      const totals = out.get(path) ?? { up: 0, down: 0, subflows: 0, rttUs: [] }
      // Counters only grow; a smaller value means a different subflow reused the key: count it whole.
      totals.up += up >= before.up ? up - before.up : up
      totals.down += down >= before.down ? down - before.down : down
      totals.subflows += 1
      totals.rttUs.push(s.rttUs)
      out.set(path, totals)
      seen.set(key, { up, down })
    }
    return out
  }

  /** The connection is gone; its subflow history is dropped. */
  forget (connId: number): void {
    this.#seen.delete(connId)
  }

  get connections (): number { return this.#seen.size }
}

/** Local address → path name, from the uplinks' current addresses. */
export function addressMap (uplinks: ReadonlyArray<{ name: string, addresses: readonly string[] }>): Map<string, string> {
  const map = new Map<string, string>()
  for (const u of uplinks) for (const a of u.addresses) map.set(normaliseAddress(a), u.name)
  return map
}

/** Strips the IPv4-mapped prefix and lower-cases IPv6. */
export function normaliseAddress (address: string): string {
  return unmapV4(address.toLowerCase())
}
