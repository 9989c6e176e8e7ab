/**
 * The only module that touches FFI. It declares the few libc calls Node lacks (IPPROTO_MPTCP
 * sockets, setsockopt/getsockopt, ioctl for TUN) through koffi. Everything else in the project
 * goes through `sockopt.ts` / `tun.ts`, so koffi can later give way to an N-API addon.
 *
 * Conventions (see docs/mptcp-socket-layer.md):
 * - `void *` takes a Buffer; `_Inout_ uint32_t *` takes a one-element array, read back from [0].
 * - On rc < 0 read `koffi.errno()` immediately.
 */
import koffi from 'koffi'

const lib = koffi.load('libc.so.6')

export const libc = {
  socket: lib.func('int socket(int domain, int type, int protocol)'),
  setsockopt: lib.func('int setsockopt(int fd, int level, int name, void *val, uint32_t len)'),
  getsockopt: lib.func('int getsockopt(int fd, int level, int name, _Inout_ void *val, _Inout_ uint32_t *len)'),
  bind: lib.func('int bind(int fd, void *addr, uint32_t len)'),
  listen: lib.func('int listen(int fd, int backlog)'),
  close: lib.func('int close(int fd)'),
  // ioctl is variadic in C; every request we use passes one pointer, which the x86-64 and AAPCS64
  // calling conventions pass identically for variadic and fixed prototypes.
  ioctl: lib.func('int ioctl(int fd, unsigned long request, _Inout_ void *arg)'),
  strerror: lib.func('const char *strerror(int errnum)')
} as const

/** errno of the last failed FFI call on this thread. */
export function lastErrno (): number {
  return koffi.errno()
}

export function errnoMessage (errno: number): string {
  return String(libc.strerror(errno))
}

/** Allocate native memory for APIs that take user pointers (MPTCP_FULL_INFO arrays). */
export const native = {
  alloc: (bytes: number): unknown => koffi.alloc('uint8_t', bytes),
  address: (ptr: unknown): bigint => koffi.address(ptr),
  view: (ptr: unknown, bytes: number): ArrayBuffer => koffi.view(ptr, bytes),
  free: (ptr: unknown): void => { koffi.free(ptr) }
} as const
