/**
 * MPTCP_FULL_INFO needs two arrays in native memory whose addresses go into the optval (user
 * pointers). Allocating and viewing them per call cost ≈ 86 µs on the test host, so a reader owns
 * them for its lifetime: one getsockopt per `read()`, one consistent snapshot of every subflow.
 * Call `close()` to free the native memory; a closed reader must not be used.
 *
 * Not re-entrant across threads (Node runs it on the main thread, synchronously).
 */
import {
  decodeMptcpFullInfo,
  MPTCP_FULL_INFO_BYTES,
  MPTCP_SUBFLOW_INFO_BYTES,
  type MptcpFullInfo
} from '../codec/mptcp-info.ts'
import { TCP_INFO_BYTES } from '../codec/tcp-info.ts'
import { native } from './libc.ts'
import { Errno, getsockoptInto, syscallError } from './syscall.ts'

const SOL_MPTCP = 284
const MPTCP_FULL_INFO = 4
/** Upper bound on array slots: the in-kernel path manager allows at most 8 subflows. */
const MAX_SLOTS = 64

interface NativeArray {
  ptr: unknown
  address: bigint
  bytes: Uint8Array
}

function allocArray (bytes: number): NativeArray {
  const ptr = native.alloc(bytes)
  return { ptr, address: native.address(ptr), bytes: new Uint8Array(native.view(ptr, bytes)) }
}

export class MptcpFullInfoReader {
  readonly #header = Buffer.alloc(MPTCP_FULL_INFO_BYTES)
  #slots = 0
  #subflowInfo: NativeArray | undefined
  #tcpInfo: NativeArray | undefined

  /** @param slots subflows reserved up front (default 8); grows on demand up to 64. */
  constructor (slots = 8) {
    this.#allocate(slots)
  }

  get slots (): number { return this.#slots }

  /**
   * Snapshot of the connection and all its subflows; `undefined` when the socket does not run
   * MPTCP (plain TCP or fallback: the kernel answers EOPNOTSUPP / ENOPROTOOPT). Other errors throw.
   */
  read (fd: number): MptcpFullInfo | undefined {
    let result = this.#readOnce(fd)
    if (result !== undefined && result.numSubflows > this.#slots && this.#slots < MAX_SLOTS) {
      this.#allocate(Math.min(MAX_SLOTS, result.numSubflows * 2))
      result = this.#readOnce(fd)
    }
    return result
  }

  close (): void {
    if (this.#subflowInfo !== undefined) native.free(this.#subflowInfo.ptr)
    if (this.#tcpInfo !== undefined) native.free(this.#tcpInfo.ptr)
    this.#subflowInfo = undefined
    this.#tcpInfo = undefined
    this.#slots = 0
  }

  #allocate (slots: number): void {
    this.close()
    this.#slots = slots
    this.#subflowInfo = allocArray(slots * MPTCP_SUBFLOW_INFO_BYTES)
    this.#tcpInfo = allocArray(slots * TCP_INFO_BYTES)
  }

  #readOnce (fd: number): MptcpFullInfo | undefined {
    const sf = this.#subflowInfo
    const tcp = this.#tcpInfo
    if (sf === undefined || tcp === undefined) throw new Error('MptcpFullInfoReader used after close()')
    const h = this.#header
    h.fill(0)
    h.writeUInt32LE(TCP_INFO_BYTES, 4)
    h.writeUInt32LE(MPTCP_SUBFLOW_INFO_BYTES, 12)
    h.writeUInt32LE(this.#slots, 20)
    h.writeBigUInt64LE(sf.address, 24)
    h.writeBigUInt64LE(tcp.address, 32)
    const n = getsockoptInto(fd, SOL_MPTCP, MPTCP_FULL_INFO, h)
    if (n === -Errno.EOPNOTSUPP || n === -Errno.ENOPROTOOPT) return undefined
    if (n < 0) throw syscallError('getsockopt', 'SOL_MPTCP, MPTCP_FULL_INFO', -n)
    return decodeMptcpFullInfo(h.subarray(0, n), sf.bytes, tcp.bytes)
  }
}
