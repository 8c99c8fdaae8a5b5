// The block-device layer's contracts. A Bdev is the control-plane object (main thread); a
// BdevChannel is its per-thread I/O handle, opened in a reactor from a structured-cloneable spec
// (SPDK's io_channel idea). Knows nothing of SCSI or virtio.
import type { SgList } from '../iovec/sg-list.ts';

/** I/O status: 0 on success, else a negative errno (as SPDK). */
export const BDEV_OK = 0;
export const BDEV_EIO = -5;
export const BDEV_EINVAL = -22;
export const BDEV_ENOSPC = -28;
export const BDEV_EROFS = -30;
export const BDEV_ENOTSUP = -95;
export const BDEV_ENOMEM = -12;

/** Receives the completion of one I/O. Implemented by the task object itself: no closures per I/O. */
export interface BdevIoWaiter {
  bdevIoDone(status: number): void;
}

export interface BdevIoTypes {
  read: boolean;
  write: boolean;
  flush: boolean;
  unmap: boolean;
  write_zeroes: boolean;
  reset: boolean;
}

/** Everything a reactor needs to open a channel. Must survive structuredClone (postMessage). */
export interface BdevChannelSpec {
  module: string;
  name: string;
  blockSize: number;
  numBlocks: number;
  /** Module-specific fields (fds, paths, sizes). */
  [key: string]: unknown;
}

/**
 * Per-thread I/O handle. Offsets and lengths are in blocks. The completion may be called
 * synchronously from inside the submitting call (RAM bdevs do): callers must tolerate that.
 * Out-of-range I/O completes with BDEV_EINVAL; it never touches memory outside the device.
 */
export interface BdevChannel {
  readonly name: string;
  readonly blockSize: number;
  numBlocks: number;
  read(offsetBlocks: number, numBlocks: number, sg: SgList, sgOffset: number, waiter: BdevIoWaiter): void;
  write(offsetBlocks: number, numBlocks: number, sg: SgList, sgOffset: number, waiter: BdevIoWaiter): void;
  flush(offsetBlocks: number, numBlocks: number, waiter: BdevIoWaiter): void;
  unmap(offsetBlocks: number, numBlocks: number, waiter: BdevIoWaiter): void;
  writeZeroes(offsetBlocks: number, numBlocks: number, waiter: BdevIoWaiter): void;
  /**
   * Reaps completions of asynchronous I/O; returns how many completed. The owning thread calls it
   * every loop turn, also after I/O that completed synchronously: a channel may hold shared state
   * while it has I/O in flight and give it back only here (an lvol's quiesce share).
   */
  poll(): number;
  /** I/O accepted and not yet completed (0 for channels that complete synchronously). */
  inflight(): number;
  /** Applies a new size after a resize event. */
  resize(numBlocks: number): void;
  close(): void;
  /**
   * Optional: fds (eventfds, watched edge-triggered) that become readable whenever I/O of this
   * channel may have completed, so its thread may sleep while it has I/O in flight. Without
   * them the channel is polled every loop turn while inflight() > 0.
   */
  readonly wakeFds?: readonly number[];
}

export type BdevEvent = 'remove' | 'resize';

/** The control-plane object (main thread). */
export interface Bdev {
  readonly name: string;
  readonly aliases: string[];
  readonly uuid: string;
  readonly productName: string;
  readonly moduleName: string;
  readonly blockSize: number;
  readonly numBlocks: number;
  readonly ioTypes: BdevIoTypes;
  /** Volatile write cache present (SCSI WCE, virtio-blk writeback). */
  readonly writeCache: boolean;
  /** Reads of unmapped blocks return zeroes (SCSI LBPRZ). */
  readonly unmapReadsZero: boolean;
  /** Optimal I/O boundary in blocks (0 = none). */
  readonly optimalIoBoundary: number;
  /** Name of the module or controller that claimed it exclusively, or null. */
  claimedBy: string | null;
  channelSpec(): BdevChannelSpec;
  /** Module-specific fields for bdev_get_bdevs' driver_specific. */
  driverSpecific(): Record<string, unknown>;
  /** Releases resources; called after it left the registry and no channel remains open. */
  destroy(): void;
}
