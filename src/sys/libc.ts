// Raw libc entry points through koffi. Only src/sys/ imports this file.
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');
koffi.alias('ssize_t', 'int64_t');

export const c = {
  close: libc.func('int close(int)'),
  read: libc.func('ssize_t read(int, void *, size_t)'),
  write: libc.func('ssize_t write(int, const void *, size_t)'),
  fcntl: libc.func('int fcntl(int, int, int)'),
  fstat: libc.func('int fstat(int, void *)'),
  ftruncate: libc.func('int ftruncate(int, int64_t)'),
  socket: libc.func('int socket(int, int, int)'),
  socketpair: libc.func('int socketpair(int, int, int, _Out_ int *sv)'),
  bind: libc.func('int bind(int, const void *, uint32_t)'),
  listen: libc.func('int listen(int, int)'),
  accept4: libc.func('int accept4(int, void *, void *, int)'),
  connect: libc.func('int connect(int, const void *, uint32_t)'),
  shutdown: libc.func('int shutdown(int, int)'),
  getsockopt: libc.func('int getsockopt(int, int, int, uintptr_t, _Inout_ uint32_t *)'),
  /** Into typed arrays: no pointer number per call. */
  getsockopt_i32: libc.func('getsockopt', 'int', ['int', 'int', 'int', 'void *', 'void *']),
  setsockopt: libc.func('int setsockopt(int, int, int, const void *, uint32_t)'),
  poll: libc.func('int poll(void *, uint64_t, int)'),
  recvmsg: libc.func('ssize_t recvmsg(int, uintptr_t, int)'),
  sendmsg: libc.func('ssize_t sendmsg(int, uintptr_t, int)'),
  memfd_create: libc.func('int memfd_create(const char *, unsigned int)'),
  mmap: libc.func('void *mmap(void *, size_t, int, int, int, int64_t)'),
  munmap: libc.func('int munmap(void *, size_t)'),
  eventfd: libc.func('int eventfd(unsigned int, int)'),
  epoll_create1: libc.func('int epoll_create1(int)'),
  epoll_ctl: libc.func('int epoll_ctl(int, int, int, void *)'),
  epoll_wait: libc.func('int epoll_wait(int, void *, int, int)'),
  sched_setaffinity: libc.func('int sched_setaffinity(int, size_t, const void *)'),
  gettid: libc.func('int gettid()'),
  clock_gettime: libc.func('int clock_gettime(int, void *)'),
  memcpy: libc.func('void *memcpy(uintptr_t, uintptr_t, size_t)'),
  _exit: libc.func('void _exit(int)'),
};

/** Native scratch memory that lives as long as the thread: for structs holding pointers. */
export interface NativeScratch {
  addr: bigint;
  bytes: Uint8Array;
  dv: DataView;
}

export function nativeScratch(size: number): NativeScratch {
  const ptr = koffi.alloc('uint8_t', size);
  const addr = koffi.address(ptr) as bigint;
  const ab = koffi.view(ptr, size);
  return { addr, bytes: new Uint8Array(ab), dv: new DataView(ab) };
}

export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const F_DUPFD_CLOEXEC = 1030;
