// When a uring bdev's file lives on tmpfs or ramfs, its channels map the file and copy to and from
// the mapping instead of calling pread/pwrite (a read of a 4 KiB tmpfs block costs half as much).
// A mapping read past the end of a file that someone truncated, or of a hole tmpfs cannot fill, is
// a SIGBUS that ends the daemon, so the mappings are only touched while this holds a lease on the
// file (nobody else has it open, so nobody can shrink it or punch holes) and the file has no holes
// (checked under the lease; the channels write zeroes instead of punching while the bdev maps).
// The lease is a write lease even for a read-only bdev: a read lease is not broken by an
// open(O_RDONLY | O_TRUNC), which truncates all the same.
// When another process opens or truncates the file, the kernel holds that call back and sends
// SIGIO: the gate is closed (waiting for copies in progress), the lease dropped, and the channels
// go back to read/write calls. The lease is asked for again every retryMs. Main thread only.
import { componentLogger } from '../../log/logger.ts';
import { EACCES, EAGAIN, errnoName } from '../../sys/errno.ts';
import { closeFd, fdSize } from '../../sys/fd.ts';
import { firstHole } from '../../sys/block-file.ts';
import { F_UNLCK, F_WRLCK, getLease, leaseBreakSeconds, onLeaseBreak, registerLeaseHolder, setLease } from '../../sys/file-lease.ts';
import { mmapFd, munmap, PROT_READ, PROT_WRITE } from '../../sys/memory.ts';
import { MapGateOwner } from './file-map-gate.ts';

/** Default pause between attempts to take the lease again after losing or not getting it. */
export const FILE_MAP_RETRY_MS = 10_000;
/**
 * Below this lease-break time (seconds) the file is not mapped: the kernel lets a breaker go on
 * after it whether or not the main thread answered, and a truncate then meets reactors still
 * copying (SIGBUS). 45 s by default.
 */
export const MIN_LEASE_BREAK_SECONDS = 5;

const log = componentLogger('bdev_uring');

export interface FileMapLeaseOptions {
  /** The bdev's name (log lines). */
  name: string;
  /** The bdev's own fd on the file: the lease is taken through it; this closes it on destroy(). */
  fd: number;
  /** blockFileInfo identity of the file. */
  identity: string;
  /** Bytes mapped: the file must hold at least this many, all allocated. */
  length: number;
  readonly: boolean;
  retryMs?: number;
}

export class FileMapLease {
  readonly gate = new MapGateOwner();
  /**
   * The one mapping of the file in this process (mappings are process-wide): every channel makes
   * a view of it. Made at once and unmapped on destroy() after the gate closed for good, so no
   * view is read after that.
   */
  readonly addr: bigint;
  readonly length: number;
  readonly #name: string;
  readonly #fd: number;
  readonly #retryMs: number;
  #held = false;
  #retry: ReturnType<typeof setTimeout> | null = null;
  #destroyed = false;
  /** Why the file is not mapped now (bdev_get_bdevs, log); '' while mapped. */
  reason = '';
  readonly #unsubscribe: () => void;
  readonly #unregister: () => void;

  constructor(opts: FileMapLeaseOptions) {
    this.#name = opts.name;
    this.#fd = opts.fd;
    this.length = opts.length;
    // Mapping touches no page: safe before the lease; the gate decides when pages may be touched.
    this.addr = mmapFd(opts.fd, opts.length, 0, opts.readonly ? PROT_READ : PROT_READ | PROT_WRITE);
    this.#retryMs = opts.retryMs ?? FILE_MAP_RETRY_MS;
    this.#unsubscribe = onLeaseBreak(() => this.#onSignal());
    this.#unregister = registerLeaseHolder(opts.identity, () => this.#drop('this process opens the file again'));
    this.#tryTake();
  }

  /** The channels may use their mappings now. */
  get mapped(): boolean {
    return this.gate.isOpen;
  }

  #tryTake(): void {
    this.#retry = null;
    if (this.#destroyed || this.#held) return;
    const breakS = leaseBreakSeconds();
    if (breakS !== null && breakS < MIN_LEASE_BREAK_SECONDS) {
      return this.#refused(`/proc/sys/fs/lease-break-time is ${breakS} s (under ${MIN_LEASE_BREAK_SECONDS} s, a stalled event loop could let a truncate through)`, true);
    }
    const r = setLease(this.#fd, F_WRLCK);
    if (r < 0) {
      const detail = r === -EAGAIN ? ': the file is open elsewhere' : r === -EACCES ? ': only the owner of the file (or CAP_LEASE) may take one' : '';
      // Only "open elsewhere" can change by itself.
      this.#refused(`no file lease (${errnoName(-r)}${detail})`, r === -EAGAIN);
      return;
    }
    this.#held = true;
    // Under the lease nobody else can open the file, so what is checked now stays true.
    const size = fdSize(this.#fd);
    if (size < this.length) return this.#giveBack(`the file holds ${size} bytes, the bdev maps ${this.length}`);
    const hole = firstHole(this.#fd, 0);
    if (hole < 0) return this.#giveBack(`cannot look for holes (${errnoName(-hole)})`);
    // tmpfs also reports fallocated, never written ranges as holes.
    if (hole < this.length) return this.#giveBack(`the file has a hole at byte ${hole} (write it in full to have it mapped)`);
    this.gate.open();
    if (this.reason !== '') log.info({ bdev: this.#name }, 'file mapped again: reads and writes are memory copies');
    this.reason = '';
  }

  /** Lets go of a lease whose checks failed, and tries again later. */
  #giveBack(why: string): void {
    setLease(this.#fd, F_UNLCK);
    this.#held = false;
    this.#refused(why, true);
  }

  #refused(why: string, retry: boolean): void {
    if (why !== this.reason) {
      log.info({ bdev: this.#name, reason: why, retry_s: retry ? this.#retryMs / 1000 : null }, 'file not mapped: reads and writes go through system calls');
    }
    this.reason = why;
    if (retry) this.#schedule();
  }

  #schedule(): void {
    if (this.#destroyed || this.#retry !== null) return;
    this.#retry = setTimeout(() => this.#tryTake(), this.#retryMs);
    this.#retry.unref();
  }

  /** SIGIO: some lease is breaking; ours if it no longer reads as the type taken. */
  #onSignal(): void {
    if (this.#held && getLease(this.#fd) !== F_WRLCK) this.#drop('another process opened or truncated the file');
  }

  /** Closes the gate (waits for copies in progress), then lets the blocked opener go. */
  #drop(why: string, retry = true): void {
    if (!this.#held) return;
    this.gate.close(1000, (slot) => log.warn({ bdev: this.#name, slot }, 'a copy through the file mapping takes over 1 s: the lease is released after it'));
    setLease(this.#fd, F_UNLCK);
    this.#held = false;
    if (retry) this.#refused(why, true);
    else this.reason = why;
  }

  /** Unmaps for good: closes the gate, drops the lease, unmaps, closes the fd. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#drop('the bdev is deleted', false);
    this.#destroyed = true;
    // The gate stays closed from here on: channels still holding views never read them again.
    munmap(this.addr, this.length);
    if (this.#retry !== null) clearTimeout(this.#retry);
    this.#retry = null;
    this.#unsubscribe();
    this.#unregister();
    closeFd(this.#fd);
  }
}
