// librados and librbd (Ceph's client libraries) through koffi. Loaded at the first use, so a
// machine without librbd1 runs everything else; loadLibrbd() says what is missing.
//
// Handles (rados_t, rados_ioctx_t, rbd_image_t) are BigInt pointers made once at setup, so
// passing one costs nothing. Completions are made per I/O: they travel as Numbers (x86-64 user
// addresses are below 2^47, exact in a double), and the per-I/O argument is a small integer.
// Calls that may wait on the network (connect, open, close, resize, lock) are made with
// koffi's .async from the main thread only: they run on libuv's thread pool.
import koffi, { type LibraryHandle } from 'koffi';
import { SysError } from './errno.ts';

type Fn = ReturnType<LibraryHandle['func']>;

export interface Librbd {
  rados_create2: Fn;
  rados_conf_read_file: Fn;
  rados_conf_set: Fn;
  rados_conf_get: Fn;
  rados_connect: Fn;
  rados_shutdown: Fn;
  rados_ioctx_create: Fn;
  rados_ioctx_destroy: Fn;
  rados_get_instance_id: Fn;
  rados_cluster_fsid: Fn;
  rbd_open: Fn;
  rbd_close: Fn;
  rbd_get_size: Fn;
  rbd_get_features: Fn;
  rbd_resize: Fn;
  rbd_flush: Fn;
  rbd_invalidate_cache: Fn;
  rbd_is_exclusive_lock_owner: Fn;
  rbd_set_image_notification: Fn;
  rbd_poll_io_events: Fn;
  rbd_aio_create_completion: Fn;
  rbd_aio_readv: Fn;
  rbd_aio_writev: Fn;
  rbd_aio_discard: Fn;
  rbd_aio_write_zeroes: Fn;
  rbd_aio_flush: Fn;
  rbd_aio_get_return_value: Fn;
  rbd_aio_get_arg: Fn;
  rbd_aio_release: Fn;
  rbd_version: Fn;
}

/** rbd_set_image_notification's type for an eventfd. */
export const RBD_EVENT_TYPE_EVENTFD = 2;
/** Feature bit of images whose writer holds a lock (features.h). */
export const RBD_FEATURE_EXCLUSIVE_LOCK = 4;
export const RBD_FEATURE_NAMES: readonly [number, string][] = [
  [1, 'layering'],
  [2, 'striping'],
  [4, 'exclusive-lock'],
  [8, 'object-map'],
  [16, 'fast-diff'],
  [32, 'deep-flatten'],
  [64, 'journaling'],
  [128, 'data-pool'],
];

let lib: Librbd | null = null;
let loadError: Error | null = null;

/** The bindings; throws a SysError (ENOENT) naming the missing library when librbd1 is absent. */
export function loadLibrbd(): Librbd {
  if (lib) return lib;
  if (loadError) throw loadError;
  let rados: LibraryHandle;
  let rbd: LibraryHandle;
  try {
    rados = koffi.load('librados.so.2');
    rbd = koffi.load('librbd.so.1');
  } catch (e) {
    loadError = new SysError('dlopen', 2, `librados.so.2/librbd.so.1 cannot be loaded (install librbd1): ${(e as Error).message}`);
    throw loadError;
  }
  lib = {
    rados_create2: rados.func('int rados_create2(_Out_ void **cluster, const char *clustername, const char *name, uint64_t flags)'),
    rados_conf_read_file: rados.func('int rados_conf_read_file(void *cluster, const char *path)'),
    rados_conf_set: rados.func('int rados_conf_set(void *cluster, const char *option, const char *value)'),
    rados_conf_get: rados.func('int rados_conf_get(void *cluster, const char *option, _Out_ uint8_t *buf, size_t len)'),
    rados_connect: rados.func('int rados_connect(void *cluster)'),
    rados_shutdown: rados.func('void rados_shutdown(void *cluster)'),
    rados_ioctx_create: rados.func('int rados_ioctx_create(void *cluster, const char *pool, _Out_ void **ioctx)'),
    rados_ioctx_destroy: rados.func('void rados_ioctx_destroy(void *ioctx)'),
    rados_get_instance_id: rados.func('uint64_t rados_get_instance_id(void *cluster)'),
    rados_cluster_fsid: rados.func('int rados_cluster_fsid(void *cluster, _Out_ uint8_t *buf, size_t len)'),
    rbd_open: rbd.func('int rbd_open(void *ioctx, const char *name, _Out_ void **image, const char *snap)'),
    rbd_close: rbd.func('int rbd_close(void *image)'),
    rbd_get_size: rbd.func('int rbd_get_size(void *image, _Out_ uint64_t *size)'),
    rbd_get_features: rbd.func('int rbd_get_features(void *image, _Out_ uint64_t *features)'),
    rbd_resize: rbd.func('int rbd_resize(void *image, uint64_t size)'),
    rbd_flush: rbd.func('int rbd_flush(void *image)'),
    rbd_invalidate_cache: rbd.func('int rbd_invalidate_cache(void *image)'),
    rbd_is_exclusive_lock_owner: rbd.func('int rbd_is_exclusive_lock_owner(void *image, _Out_ int *owner)'),
    rbd_set_image_notification: rbd.func('int rbd_set_image_notification(void *image, int fd, int type)'),
    // Completions as integers (see the header); the per-I/O arg is a small integer, not a pointer.
    rbd_poll_io_events: rbd.func('int rbd_poll_io_events(void *image, void *comps, int numcomp)'),
    rbd_aio_create_completion: rbd.func('int rbd_aio_create_completion(uintptr_t arg, void *cb, void *out)'),
    rbd_aio_readv: rbd.func('int rbd_aio_readv(void *image, void *iov, int iovcnt, uint64_t off, uintptr_t c)'),
    rbd_aio_writev: rbd.func('int rbd_aio_writev(void *image, void *iov, int iovcnt, uint64_t off, uintptr_t c)'),
    rbd_aio_discard: rbd.func('int rbd_aio_discard(void *image, uint64_t off, uint64_t len, uintptr_t c)'),
    rbd_aio_write_zeroes: rbd.func('int rbd_aio_write_zeroes(void *image, uint64_t off, size_t len, uintptr_t c, int zero_flags, int op_flags)'),
    rbd_aio_flush: rbd.func('int rbd_aio_flush(void *image, uintptr_t c)'),
    // ssize_t: bytes of one request (below 2^31) or -errno; as int, it stays a small integer.
    rbd_aio_get_return_value: rbd.func('int rbd_aio_get_return_value(uintptr_t c)'),
    // The arg is a small integer: the low 32 bits of the returned pointer are all of it.
    rbd_aio_get_arg: rbd.func('uint32_t rbd_aio_get_arg(uintptr_t c)'),
    rbd_aio_release: rbd.func('void rbd_aio_release(uintptr_t c)'),
    rbd_version: rbd.func('void rbd_version(_Out_ int *major, _Out_ int *minor, _Out_ int *extra)'),
  };
  return lib;
}

/** Calls a koffi function on the thread pool; resolves with its return value. */
export function callAsync<T>(fn: Fn, ...args: unknown[]): Promise<T> {
  return new Promise((resolve, reject) => {
    (fn.async as (...a: unknown[]) => void)(...args, (err: Error | null, res: T) => (err ? reject(err) : resolve(res)));
  });
}

/** librbd's version, e.g. "1.16.0" (Ceph 16.2). */
export function librbdVersion(): string {
  const l = loadLibrbd();
  const a = [0];
  const b = [0];
  const c = [0];
  l.rbd_version(a, b, c);
  return `${a[0]}.${b[0]}.${c[0]}`;
}
