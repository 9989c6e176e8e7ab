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

/**
 * The splice data plane's calls (shared/src/net/splice-engine.ts, run in its worker thread; the probe
 * runs them once on the main thread). `long` is ssize_t on every Linux ABI Node runs on.
 */
export const spliceLibc = {
  splice: lib.func('long splice(int fdIn, void *offIn, int fdOut, void *offOut, size_t len, unsigned int flags)'),
  pipe2: lib.func('int pipe2(_Out_ void *fds, int flags)'),
  fcntl: lib.func('int fcntl(int fd, int cmd, int arg)'),
  epollCreate1: lib.func('int epoll_create1(int flags)'),
  epollCtl: lib.func('int epoll_ctl(int epfd, int op, int fd, void *event)'),
  epollWait: lib.func('int epoll_wait(int epfd, _Out_ void *events, int maxevents, int timeout)'),
  eventfd: lib.func('int eventfd(unsigned int initval, int flags)'),
  read: lib.func('long read(int fd, _Out_ void *buf, size_t count)'),
  write: lib.func('long write(int fd, void *buf, size_t count)'),
  shutdown: lib.func('int shutdown(int fd, int how)'),
  socketpair: lib.func('int socketpair(int domain, int type, int protocol, _Out_ void *sv)'),
  getsockopt: lib.func('int getsockopt(int fd, int level, int name, _Inout_ void *val, _Inout_ uint32_t *len)'),
  setsockopt: lib.func('int setsockopt(int fd, int level, int name, void *val, uint32_t len)'),
  close: lib.func('int close(int fd)')
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
