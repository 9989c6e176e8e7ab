/**
 * Thin, checked wrappers over the libc socket calls of `libc.ts`: every failure becomes a
 * `SyscallError` naming the call, the option and the errno (number, name and strerror text).
 * Used by `sockopt.ts` and `mptcp-full-info-reader.ts` only.
 *
 * All scratch buffers here are used synchronously (FFI calls block the thread), so sharing them
 * inside this module is safe.
 */
import { SyscallError, type ErrorCode } from '../errors.ts'
import { errnoMessage, lastErrno, libc } from './libc.ts'

/** The errno values the socket layer reacts to (asm-generic, shared by x86_64/arm/arm64/riscv). */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EBADF: 9,
  EACCES: 13,
  EFAULT: 14,
  ENODEV: 19,
  EINVAL: 22,
  ENOTSOCK: 88,
  ENOPROTOOPT: 92,
  EPROTONOSUPPORT: 93,
  EOPNOTSUPP: 95,
  EAFNOSUPPORT: 97,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  EINPROGRESS: 115
} as const
export type Errno = typeof Errno[keyof typeof Errno]

const errnoNames = new Map<number, string>(Object.entries(Errno).map(([name, value]) => [value, name]))

export function errnoName (errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`
}

/** "EOPNOTSUPP (95, Operation not supported)" */
export function describeErrno (errno: number): string {
  return `${errnoName(errno)} (${errno}, ${errnoMessage(errno)})`
}

export function syscallError (syscall: string, what: string, errno: number, code: ErrorCode = 'HYBRID_ERR_SOCKET_SYSCALL'): SyscallError {
  return new SyscallError(code, syscall, errno, `${syscall}(${what}) failed: ${describeErrno(errno)}`, { detail: { syscall, what, errno } })
}

const intBuf = Buffer.alloc(4)

/** setsockopt with an int value; throws SyscallError. */
export function setsockoptInt (fd: number, level: number, name: number, value: number, what: string): void {
  intBuf.writeInt32LE(value, 0)
  setsockoptBytes(fd, level, name, intBuf, what)
}

/** setsockopt with a byte value (strings such as SO_BINDTODEVICE); throws SyscallError. */
export function setsockoptBytes (fd: number, level: number, name: number, value: Buffer, what: string): void {
  const rc = libc.setsockopt(fd, level, name, value, value.byteLength) as number
  if (rc < 0) throw syscallError('setsockopt', what, lastErrno())
}

/**
 * getsockopt into `buf`: returns the length the kernel wrote (>= 0), or `-errno`, so callers can
 * treat expected answers (EOPNOTSUPP on a fallback socket) without exceptions.
 */
export function getsockoptInto (fd: number, level: number, name: number, buf: Buffer, len = buf.byteLength): number {
  const lenRef = [len]
  const rc = libc.getsockopt(fd, level, name, buf, lenRef) as number
  if (rc < 0) return -lastErrno()
  return lenRef[0] ?? 0
}

/** getsockopt of an int value; throws SyscallError. */
export function getsockoptInt (fd: number, level: number, name: number, what: string): number {
  const n = getsockoptInto(fd, level, name, intBuf)
  if (n < 0) throw syscallError('getsockopt', what, -n)
  return intBuf.readInt32LE(0)
}

export function bindFd (fd: number, sockaddr: Buffer, what: string): void {
  const rc = libc.bind(fd, sockaddr, sockaddr.byteLength) as number
  if (rc < 0) throw syscallError('bind', what, lastErrno())
}

export function listenFd (fd: number, backlog: number, what: string): void {
  const rc = libc.listen(fd, backlog) as number
  if (rc < 0) throw syscallError('listen', what, lastErrno())
}

/** close(2), for fds not yet handed to Node; errors are ignored (nothing useful to do). */
export function closeFd (fd: number): void {
  libc.close(fd)
}
