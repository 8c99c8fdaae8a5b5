// The Ceph RBD bdev: an image in a RADOS pool, through librbd. The bdev opens the image once
// (main thread, on the thread pool) and every reactor channel submits on that one handle
// (rbd-channel.ts): one exclusive-lock owner per daemon. Images with exclusive-lock hand the lock
// over cooperatively: when another client (a migration's destination) writes, librbd here
// flushes and releases it, and takes it back at its own next write.
// A resize made elsewhere (`rbd resize`) shows within a second: the size is re-read every second,
// which costs nothing until the image header changed.
import type { Bdev, BdevIoTypes } from '../bdev.ts';
import { BdevError } from '../bdev-error.ts';
import { checkBdevName, checkBlockSize, normalizeUuid } from '../bdev-geometry.ts';
import { componentLogger } from '../../log/logger.ts';
import { eventfdCreate, eventfdDrain } from '../../sys/eventfd.ts';
import { closeFd } from '../../sys/fd.ts';
import { errnoName } from '../../sys/errno.ts';
import { callAsync, loadLibrbd, RBD_EVENT_TYPE_EVENTFD, RBD_FEATURE_EXCLUSIVE_LOCK, RBD_FEATURE_NAMES } from '../../sys/librbd.ts';
import { RadosCluster } from './rbd-cluster.ts';
import { rbdCallError, RbdError } from './rbd-error.ts';
import { CTL_CHANNELS, CTL_FAILED_IOS, CTL_FORWARDED, CTL_LAST_ERRNO, CTL_WORDS, RBD_MODULE, type RbdChannelSpec } from './rbd-shared.ts';

export { RBD_MODULE };
export const RBD_PRODUCT_NAME = 'Ceph Rbd Disk';

const log = componentLogger('bdev_rbd');
const SIZE_CHECK_MS = 1000;
const ENOENT = 2;
const ESHUTDOWN = 108;

export interface RbdBdevOptions {
  name: string;
  poolName: string;
  rbdName: string;
  blockSize?: number;
  uuid?: string;
  /** A registered cluster, or a private one (closed with the bdev). */
  cluster: RadosCluster;
  /** The size changed (bdev_rbd_resize, or elsewhere): the registry tells the users. */
  onResize?: (bdev: RbdBdev) => void;
}

export class RbdBdev implements Bdev {
  readonly name: string;
  readonly aliases: string[] = [];
  readonly uuid: string;
  readonly productName = RBD_PRODUCT_NAME;
  readonly moduleName = RBD_MODULE;
  readonly blockSize: number;
  numBlocks: number;
  readonly ioTypes: BdevIoTypes = { read: true, write: true, flush: true, unmap: true, write_zeroes: true, reset: false };
  // librbd's cache (writearound by default) acknowledges writes before the OSDs have them: a
  // guest flush is what makes them stable.
  readonly writeCache = true;
  readonly unmapReadsZero = false;
  readonly optimalIoBoundary = 0;
  claimedBy: string | null = null;
  readonly poolName: string;
  readonly rbdName: string;
  readonly cluster: RadosCluster;
  readonly features: number;
  sizeBytes: number;
  readonly #image: bigint;
  readonly #ioctx: bigint;
  readonly #eventFd: number;
  readonly #control = new SharedArrayBuffer(CTL_WORDS * 4);
  readonly #ctl = new Int32Array(this.#control);
  readonly #onResize: (bdev: RbdBdev) => void;
  #timer: NodeJS.Timeout | null = null;
  #checking = false;
  #destroyed = false;

  constructor(opts: RbdBdevOptions, ioctx: bigint, image: bigint, sizeBytes: number, features: number) {
    this.name = opts.name;
    this.uuid = normalizeUuid(opts.uuid);
    this.blockSize = opts.blockSize ?? 512;
    this.poolName = opts.poolName;
    this.rbdName = opts.rbdName;
    this.cluster = opts.cluster;
    this.features = features;
    this.sizeBytes = sizeBytes;
    this.numBlocks = Math.floor(sizeBytes / this.blockSize);
    this.#ioctx = ioctx;
    this.#image = image;
    this.#onResize = opts.onResize ?? (() => {});
    // librbd queues completions for rbd_poll_io_events only on an image with an event socket.
    this.#eventFd = eventfdCreate();
    const r = loadLibrbd().rbd_set_image_notification(image, this.#eventFd, RBD_EVENT_TYPE_EVENTFD) as number;
    if (r < 0) {
      closeFd(this.#eventFd);
      throw rbdCallError('RBD_OPEN_FAILED', r, 'rbd_set_image_notification');
    }
    this.#timer = setInterval(() => void this.#checkSize(), SIZE_CHECK_MS);
    this.#timer.unref();
  }

  channelSpec(): RbdChannelSpec {
    return { module: RBD_MODULE, name: this.name, blockSize: this.blockSize, numBlocks: this.numBlocks, image: this.#image, eventFd: this.#eventFd, readOnly: false, control: this.#control };
  }

  /** Whether this daemon holds the image's exclusive lock now. */
  lockOwner(): boolean {
    const owner = [0];
    return (loadLibrbd().rbd_is_exclusive_lock_owner(this.#image, owner) as number) === 0 && owner[0] === 1;
  }

  /** bdev_rbd_resize: grows the image (the registry tells the users). */
  async resize(newBytes: number): Promise<void> {
    if (newBytes <= this.sizeBytes) {
      throw new BdevError('BDEV_INVALID_PARAM', `new size ${newBytes} bytes is not larger than the current ${this.sizeBytes}: shrinking would drop data`);
    }
    if (newBytes % this.blockSize !== 0) throw new BdevError('BDEV_INVALID_PARAM', `new size ${newBytes} bytes is not a multiple of the block size ${this.blockSize}`);
    const r = await callAsync<number>(loadLibrbd().rbd_resize, this.#image, newBytes);
    if (r < 0) throw rbdCallError('RBD_RESIZE_FAILED', r, `resizing ${this.poolName}/${this.rbdName}`);
    this.#applySize(newBytes);
  }

  async #checkSize(): Promise<void> {
    if (this.#checking || this.#destroyed) return;
    this.#checking = true;
    try {
      eventfdDrain(this.#eventFd);
      const size = [0];
      const r = await callAsync<number>(loadLibrbd().rbd_get_size, this.#image, size);
      if (r === 0 && !this.#destroyed && Number(size[0]) !== this.sizeBytes) this.#applySize(Number(size[0]));
    } finally {
      this.#checking = false;
    }
  }

  #applySize(bytes: number): void {
    const blocks = Math.floor(bytes / this.blockSize);
    log.info({ bdev: this.name, image: `${this.poolName}/${this.rbdName}`, from: this.sizeBytes, to: bytes }, 'RBD image resized');
    this.sizeBytes = bytes;
    if (blocks === this.numBlocks) return;
    this.numBlocks = blocks;
    this.#onResize(this);
  }

  driverSpecific(): Record<string, unknown> {
    const c = this.#ctl;
    const lastErrno = Atomics.load(c, CTL_LAST_ERRNO);
    const rbd: Record<string, unknown> = { pool_name: this.poolName, rbd_name: this.rbdName };
    if (this.cluster.registered) rbd.cluster_name = this.cluster.name;
    else {
      rbd.user_id = this.cluster.options.userId ?? 'admin';
      if (this.cluster.options.configParam) rbd.config = { ...this.cluster.options.configParam };
    }
    Object.assign(rbd, {
      size_bytes: this.sizeBytes,
      features: RBD_FEATURE_NAMES.filter(([bit]) => (this.features & bit) !== 0).map(([, n]) => n),
      exclusive_lock_owner: (this.features & RBD_FEATURE_EXCLUSIVE_LOCK) !== 0 ? this.lockOwner() : null,
      // Blocklisted: another client broke this one's lock; only a new bdev (connection) recovers.
      state: this.#destroyed ? 'closing' : lastErrno === ESHUTDOWN ? 'blocklisted' : 'open',
      channels: Atomics.load(c, CTL_CHANNELS),
      failed_requests: Atomics.load(c, CTL_FAILED_IOS),
      forwarded_completions: Atomics.load(c, CTL_FORWARDED),
      last_error: lastErrno === 0 ? null : errnoName(lastErrno),
      fsid: this.cluster.fsid,
    });
    return { rbd };
  }

  /** Closes the image on the thread pool (it waits for I/O librbd still has); the cluster waits for it. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    if (this.#timer) clearInterval(this.#timer);
    const l = loadLibrbd();
    const cluster = this.cluster;
    const closing = (async () => {
      try {
        const r = await callAsync<number>(l.rbd_close, this.#image);
        if (r < 0) log.warn({ bdev: this.name, errno: errnoName(-r) }, 'rbd_close failed');
        l.rados_ioctx_destroy(this.#ioctx);
        closeFd(this.#eventFd);
      } finally {
        cluster.users--;
      }
    })();
    cluster.closing.add(closing);
    void closing.finally(() => {
      cluster.closing.delete(closing);
      if (!cluster.registered) void cluster.shutdown();
    });
  }
}

/** Opens the image and builds the bdev (not yet registered). The cluster is connected. */
export async function createRbdBdev(opts: RbdBdevOptions): Promise<RbdBdev> {
  checkBdevName(opts.name);
  const bs = opts.blockSize ?? 512;
  checkBlockSize(bs);
  if (opts.uuid !== undefined) normalizeUuid(opts.uuid);
  const l = loadLibrbd();
  const cluster = opts.cluster;
  cluster.users++;
  let ioctx = 0n;
  let image = 0n;
  try {
    const io: unknown[] = [null];
    let r = await callAsync<number>(l.rados_ioctx_create, cluster.handle, opts.poolName, io);
    if (r < 0) throw r === -ENOENT ? new RbdError('RBD_POOL_NOT_FOUND', `pool '${opts.poolName}' does not exist`, ENOENT) : rbdCallError('RBD_POOL_NOT_FOUND', r, `pool '${opts.poolName}'`);
    ioctx = io[0] as bigint;
    const img: unknown[] = [null];
    r = await callAsync<number>(l.rbd_open, ioctx, opts.rbdName, img, null);
    if (r < 0) {
      throw r === -ENOENT
        ? new RbdError('RBD_OPEN_FAILED', `image '${opts.rbdName}' does not exist in pool '${opts.poolName}'`, ENOENT)
        : rbdCallError('RBD_OPEN_FAILED', r, `opening ${opts.poolName}/${opts.rbdName}`);
    }
    image = img[0] as bigint;
    const size = [0];
    r = l.rbd_get_size(image, size) as number;
    if (r < 0) throw rbdCallError('RBD_OPEN_FAILED', r, 'rbd_get_size');
    const features = [0];
    r = l.rbd_get_features(image, features) as number;
    if (r < 0) throw rbdCallError('RBD_OPEN_FAILED', r, 'rbd_get_features');
    const bytes = Number(size[0]);
    if (bytes < bs) throw new BdevError('BDEV_INVALID_PARAM', `image of ${bytes} bytes is smaller than one ${bs}-byte block`);
    const bdev = new RbdBdev(opts, ioctx, image, bytes, Number(features[0]));
    if (bytes % bs !== 0) log.warn({ bdev: bdev.name, size: bytes }, `image size is not a multiple of ${bs}: the last ${bytes % bs} bytes are not used`);
    log.info({ bdev: bdev.name, image: `${opts.poolName}/${opts.rbdName}`, size: bytes, features: bdev.features, cluster: cluster.name }, 'RBD image attached');
    return bdev;
  } catch (e) {
    if (image !== 0n) await callAsync(l.rbd_close, image);
    if (ioctx !== 0n) l.rados_ioctx_destroy(ioctx);
    cluster.users--;
    if (!cluster.registered) await cluster.shutdown();
    throw e;
  }
}
