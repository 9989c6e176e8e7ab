/**
 * TUN devices from Node: open /dev/net/tun, attach it to a named layer-3 interface (TUNSETIFF with
 * IFF_TUN | IFF_NO_PI) and move whole IP packets through the returned fd.
 *
 * Node pitfalls (measured, see docs/link-emulation.md):
 * - The fd is a character device: `net.Socket` refuses it and `fs.read` runs on libuv's thread pool,
 *   where a blocking read holds one pool thread until a packet arrives. Keep exactly one read
 *   outstanding per device (more would reorder packets) and raise UV_THREADPOOL_SIZE.
 * - `TunReader` drains a burst synchronously after each pool read: it flips the fd to non-blocking
 *   (FIONBIO), reads until EAGAIN, flips it back and only then queues the next pool read. Under load
 *   this turns one thread-pool round trip per packet into one per burst.
 * - Writing a packet back is a short, non-blocking syscall (the kernel injects it into the stack),
 *   so `writePacket` uses `fs.writeSync` on the event loop.
 *
 * The device lives as long as the fd: closing it (or the process dying) removes the interface with
 * its addresses, routes and qdiscs.
 */
import { closeSync, openSync, read, readSync, writeSync } from 'node:fs'
import { SyscallError } from '../errors.ts'
import { errnoMessage, lastErrno, libc } from './libc.ts'

/** `_IOW('T', 202, int)`: attach the fd to an interface. */
export const TUNSETIFF = 0x400454ca
/** Set or clear O_NONBLOCK on an fd through `ioctl(fd, FIONBIO, &int)`. */
export const FIONBIO = 0x5421
export const IFF_TUN = 0x0001
export const IFF_NO_PI = 0x1000
/** `struct ifreq`: 16-byte name, then a union whose first member is `short ifr_flags`. */
export const IFREQ_SIZE = 40
export const IFNAMSIZ = 16
/** Largest packet a TUN read can return with the default 1500-byte MTU is smaller; 64 KiB covers any MTU. */
export const TUN_READ_BUFFER = 65_536

/** Encode the `struct ifreq` for TUNSETIFF. Names must be 1–15 bytes of printable ASCII. */
export function encodeIfreq (name: string, flags: number): Buffer {
  if (!/^[\x21-\x7e]{1,15}$/.test(name) || name.includes('/')) {
    throw new RangeError(`interface name must be 1-15 printable characters without '/': ${JSON.stringify(name)}`)
  }
  const buf = Buffer.alloc(IFREQ_SIZE)
  buf.write(name, 0, 'latin1')
  buf.writeUInt16LE(flags & 0xffff, IFNAMSIZ)
  return buf
}

/** Name the kernel wrote back into an ifreq (NUL-terminated). */
export function decodeIfreqName (buf: Buffer): string {
  const end = buf.indexOf(0)
  return buf.toString('latin1', 0, end < 0 || end > IFNAMSIZ ? IFNAMSIZ : end)
}

export interface TunDevice {
  readonly fd: number
  /** Interface name as the kernel assigned it. */
  readonly name: string
}

/**
 * Create (or attach to) the layer-3 TUN interface `name` in the caller's network namespace and
 * return its fd. Needs CAP_NET_ADMIN. The interface starts down; bring it up with `ip link`.
 */
export function openTun (name: string): TunDevice {
  const ifr = encodeIfreq(name, IFF_TUN | IFF_NO_PI)
  let fd: number
  try {
    fd = openSync('/dev/net/tun', 'r+')
  } catch (err) {
    const errno = -((err as { errno?: number }).errno ?? 0)
    throw new SyscallError('HYBRID_ERR_TUN_SYSCALL', 'open', errno, `open /dev/net/tun: ${String(err)}`, { cause: err })
  }
  if (libc.ioctl(fd, TUNSETIFF, ifr) < 0) {
    const errno = lastErrno()
    closeSync(fd)
    throw new SyscallError('HYBRID_ERR_TUN_SYSCALL', 'ioctl', errno, `TUNSETIFF ${name}: ${errnoMessage(errno)}`)
  }
  return { fd, name: decodeIfreqName(ifr) }
}

/** Set or clear O_NONBLOCK on an fd. */
export function setNonBlocking (fd: number, on: boolean): void {
  const arg = Buffer.alloc(4)
  arg.writeInt32LE(on ? 1 : 0)
  if (libc.ioctl(fd, FIONBIO, arg) < 0) {
    const errno = lastErrno()
    throw new SyscallError('HYBRID_ERR_TUN_SYSCALL', 'ioctl', errno, `FIONBIO: ${errnoMessage(errno)}`)
  }
}

/** Write one IP packet into the device: the kernel receives it as if it arrived on that interface. */
export function writePacket (fd: number, packet: Uint8Array): void {
  writeSync(fd, packet, 0, packet.length)
}

export function closeTun (dev: TunDevice): void {
  try { closeSync(dev.fd) } catch { /* already closed */ }
}

export type PacketHandler = (packet: Buffer) => void

/**
 * Reads packets from a TUN fd in arrival order and hands each one (a fresh Buffer the handler may
 * keep) to `onPacket`. One pool read outstanding at a time, then a synchronous non-blocking drain.
 */
export class TunReader {
  readonly #fd: number
  readonly #onPacket: PacketHandler
  readonly #onError: (err: Error) => void
  readonly #drain: boolean
  #buf = Buffer.allocUnsafe(TUN_READ_BUFFER)
  #stopped = false
  /** Pool reads that returned a packet, and packets taken by the synchronous drain. */
  readonly counters = { poolReads: 0, drained: 0 }

  constructor (fd: number, onPacket: PacketHandler, onError: (err: Error) => void, opts: { drain?: boolean } = {}) {
    this.#fd = fd
    this.#onPacket = onPacket
    this.#onError = onError
    this.#drain = opts.drain ?? true
  }

  start (): void {
    this.#next()
  }

  stop (): void {
    this.#stopped = true
  }

  #next (): void {
    if (this.#stopped) return
    read(this.#fd, this.#buf, 0, TUN_READ_BUFFER, null, (err, n) => {
      if (this.#stopped) return
      if (err !== null) { this.#onError(err); return }
      this.counters.poolReads++
      this.#deliver(n)
      if (this.#drain) this.#drainNow()
      this.#next()
    })
  }

  #deliver (n: number): void {
    if (n <= 0) return
    this.#onPacket(Buffer.from(this.#buf.subarray(0, n)))
  }

  #drainNow (): void {
    setNonBlocking(this.#fd, true)
    try {
      for (;;) {
        const n = readSync(this.#fd, this.#buf, 0, TUN_READ_BUFFER, null)
        if (n <= 0) break
        this.counters.drained++
        this.#deliver(n)
      }
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK') this.#onError(err as Error)
    } finally {
      setNonBlocking(this.#fd, false)
    }
  }
}
