// Per-thread I/O handle of an RBD bdev. Requests go to librbd's asynchronous calls on the
// bdev's one image handle, with iovecs pointing straight at guest memory; completions are
// collected by rbd_poll_io_events from poll() on this reactor: no librbd callback, no thread hop.
// librbd writes the image's eventfd per completion; it is this channel's wake fd, so the reactor
// may sleep in epoll while requests are out (edge-triggered: every write wakes it, and nobody
// needs to read it). A completion of another channel of the same image is handed to that
// channel's inbox (rbd-shared.ts), and the eventfd is written to wake its reactor.
import { BDEV_EINVAL, BDEV_EIO, BDEV_ENOMEM, BDEV_ENOSPC, BDEV_EROFS, BDEV_OK, type BdevChannel, type BdevIoWaiter } from '../bdev.ts';
import { BdevError } from '../bdev-error.ts';
import { RbdError } from './rbd-error.ts';
import { blocksInRange } from '../bdev-geometry.ts';
import type { SgList } from '../../iovec/sg-list.ts';
import { componentLogger } from '../../log/logger.ts';
import { BOUNCE_CHUNK, IoVectorTable } from '../../sys/io-vectors.ts';
import { loadLibrbd, type Librbd } from '../../sys/librbd.ts';
import { eventfdSignal } from '../../sys/eventfd.ts';
import {
  completionArg,
  CTL_CHANNELS,
  CTL_FAILED_IOS,
  CTL_FORWARDED,
  CTL_LAST_ERRNO,
  entryWord,
  RBD_MAX_CHANNELS,
  RBD_SLOTS,
  tailWord,
  usedWord,
  type RbdChannelSpec,
} from './rbd-shared.ts';

const OP_READ = 1;
const OP_WRITE = 2;
const OP_FLUSH = 3;
const OP_DISCARD = 4;
const OP_ZEROES = 5;
/** Completions popped per rbd_poll_io_events call. */
const POLL_BATCH = 32;
const EROFS = 30;
const ENOSPC = 28;
const EDQUOT = 122;
const EINVAL = 22;
const ESHUTDOWN = 108;

const log = componentLogger('bdev_rbd');

export class RbdChannel implements BdevChannel {
  readonly name: string;
  readonly blockSize: number;
  numBlocks: number;
  readonly #lib: Librbd;
  readonly #image: bigint;
  readonly #readOnly: boolean;
  readonly #eventFd: number;
  readonly wakeFds: readonly number[];
  readonly #ctl: Int32Array;
  /** This channel's number among the image's channels (its inbox). */
  readonly #ch: number;
  readonly #iov: IoVectorTable;
  readonly #free = new Int32Array(RBD_SLOTS);
  #freeTop = RBD_SLOTS;
  #busy = 0;
  #completed = 0;
  #inboxHead = 0;
  #closed = false;
  #blocklistLogged = false;
  // Per slot.
  readonly #waiter: (BdevIoWaiter | null)[] = new Array<BdevIoWaiter | null>(RBD_SLOTS).fill(null);
  readonly #sg: (SgList | null)[] = new Array<SgList | null>(RBD_SLOTS).fill(null);
  readonly #op = new Uint8Array(RBD_SLOTS);
  /** Bounced: the request runs in BOUNCE_CHUNK parts through the slot's bounce buffer. */
  readonly #bounced = new Uint8Array(RBD_SLOTS);
  readonly #sgOffset = new Float64Array(RBD_SLOTS);
  readonly #byteOffset = new Float64Array(RBD_SLOTS);
  readonly #byteLength = new Float64Array(RBD_SLOTS);
  readonly #done = new Float64Array(RBD_SLOTS);
  readonly #part = new Float64Array(RBD_SLOTS);
  /** rbd_aio_create_completion's output, and rbd_poll_io_events' (pointers as u32 pairs). */
  readonly #out = new Uint32Array(2);
  readonly #popped = new Uint32Array(POLL_BATCH * 2);

  constructor(spec: RbdChannelSpec) {
    const { blockSize, numBlocks } = spec;
    if (!Number.isInteger(blockSize) || blockSize < 512 || (blockSize & (blockSize - 1)) !== 0 || !Number.isSafeInteger(numBlocks) || numBlocks <= 0) {
      throw new BdevError('BDEV_INVALID_SPEC', `rbd channel '${String(spec.name)}': bad geometry ${numBlocks} x ${blockSize}`);
    }
    if (!(spec.control instanceof SharedArrayBuffer) || typeof spec.image !== 'bigint' || spec.image === 0n || !Number.isInteger(spec.eventFd) || spec.eventFd < 0) {
      throw new BdevError('BDEV_INVALID_SPEC', `rbd channel '${String(spec.name)}': spec lacks control words or image`);
    }
    this.name = spec.name;
    this.blockSize = blockSize;
    this.numBlocks = numBlocks;
    this.#lib = loadLibrbd();
    this.#image = spec.image;
    this.#readOnly = spec.readOnly;
    this.#eventFd = spec.eventFd;
    this.wakeFds = [spec.eventFd];
    this.#ctl = new Int32Array(spec.control);
    let ch = -1;
    for (let i = 0; i < RBD_MAX_CHANNELS && ch < 0; i++) if (Atomics.compareExchange(this.#ctl, usedWord(i), 0, 1) === 0) ch = i;
    if (ch < 0) throw new RbdError('RBD_CHANNELS_EXHAUSTED', `rbd bdev '${spec.name}': ${RBD_MAX_CHANNELS} channels are open already`);
    this.#ch = ch;
    this.#inboxHead = Atomics.load(this.#ctl, tailWord(ch));
    this.#iov = new IoVectorTable(RBD_SLOTS);
    for (let i = 0; i < RBD_SLOTS; i++) this.#free[i] = RBD_SLOTS - 1 - i;
    Atomics.add(this.#ctl, CTL_CHANNELS, 1);
  }

  // --- submission -------------------------------------------------------------------------

  read(offsetBlocks: number, numBlocks: number, sg: SgList, sgOffset: number, waiter: BdevIoWaiter): void {
    this.#data(OP_READ, offsetBlocks, numBlocks, sg, sgOffset, waiter);
  }

  write(offsetBlocks: number, numBlocks: number, sg: SgList, sgOffset: number, waiter: BdevIoWaiter): void {
    if (this.#readOnly) return waiter.bdevIoDone(BDEV_EROFS);
    this.#data(OP_WRITE, offsetBlocks, numBlocks, sg, sgOffset, waiter);
  }

  flush(_offsetBlocks: number, _numBlocks: number, waiter: BdevIoWaiter): void {
    const slot = this.#take(OP_FLUSH, waiter, 0, 0);
    if (slot >= 0) this.#submit(slot);
  }

  unmap(offsetBlocks: number, numBlocks: number, waiter: BdevIoWaiter): void {
    this.#noData(OP_DISCARD, offsetBlocks, numBlocks, waiter);
  }

  writeZeroes(offsetBlocks: number, numBlocks: number, waiter: BdevIoWaiter): void {
    this.#noData(OP_ZEROES, offsetBlocks, numBlocks, waiter);
  }

  #noData(op: number, offsetBlocks: number, numBlocks: number, waiter: BdevIoWaiter): void {
    if (this.#readOnly) return waiter.bdevIoDone(BDEV_EROFS);
    if (!blocksInRange(offsetBlocks, numBlocks, this.numBlocks)) return waiter.bdevIoDone(BDEV_EINVAL);
    if (numBlocks === 0) return waiter.bdevIoDone(BDEV_OK);
    const slot = this.#take(op, waiter, offsetBlocks * this.blockSize, numBlocks * this.blockSize);
    if (slot >= 0) this.#submit(slot);
  }

  #data(op: number, offsetBlocks: number, numBlocks: number, sg: SgList, sgOffset: number, waiter: BdevIoWaiter): void {
    if (!blocksInRange(offsetBlocks, numBlocks, this.numBlocks)) return waiter.bdevIoDone(BDEV_EINVAL);
    const len = numBlocks * this.blockSize;
    if (!Number.isInteger(sgOffset) || sgOffset < 0 || sgOffset + len > sg.length) return waiter.bdevIoDone(BDEV_EINVAL);
    if (len === 0) return waiter.bdevIoDone(BDEV_OK);
    const slot = this.#take(op, waiter, offsetBlocks * this.blockSize, len);
    if (slot < 0) return;
    this.#sg[slot] = sg;
    this.#sgOffset[slot] = sgOffset;
    // Zero copy when the list is plain guest memory in at most 64 pieces; else in bounced parts.
    this.#bounced[slot] = this.#iov.fromSegments(slot, sg, sgOffset, len, 1, 1) < 0 ? 1 : 0;
    this.#submit(slot);
  }

  /** A free slot set up for the request, or -1 (the waiter was told) when none is free or closed. */
  #take(op: number, waiter: BdevIoWaiter, byteOffset: number, byteLength: number): number {
    if (this.#closed) {
      waiter.bdevIoDone(BDEV_EIO);
      return -1;
    }
    if (this.#freeTop === 0) {
      waiter.bdevIoDone(BDEV_ENOMEM);
      return -1;
    }
    const slot = this.#free[--this.#freeTop];
    this.#busy++;
    this.#waiter[slot] = waiter;
    this.#op[slot] = op;
    this.#byteOffset[slot] = byteOffset;
    this.#byteLength[slot] = byteLength;
    this.#done[slot] = 0;
    this.#bounced[slot] = 0;
    return slot;
  }

  /** Submits the slot's request, or its next part when bounced. */
  #submit(slot: number): void {
    const l = this.#lib;
    l.rbd_aio_create_completion(completionArg(this.#ch, slot), null, this.#out);
    const comp = this.#out[0] + this.#out[1] * 0x1_0000_0000;
    const op = this.#op[slot];
    const off = this.#byteOffset[slot] + this.#done[slot];
    let r: number;
    if (op === OP_READ || op === OP_WRITE) {
      let n: number;
      if (this.#bounced[slot] === 1) {
        const part = Math.min(BOUNCE_CHUNK, this.#byteLength[slot] - this.#done[slot]);
        this.#part[slot] = part;
        n = this.#iov.bounce(slot, part);
        if (op === OP_WRITE) (this.#sg[slot] as SgList).copyOut(this.#sgOffset[slot] + this.#done[slot], this.#iov.bounceView(slot), 0, part);
      } else {
        this.#part[slot] = this.#byteLength[slot];
        n = this.#iov.fromSegments(slot, this.#sg[slot] as SgList, this.#sgOffset[slot], this.#byteLength[slot], 1, 1);
      }
      if (n <= 0) r = -EINVAL;
      else r = op === OP_READ ? l.rbd_aio_readv(this.#image, this.#iov.iovView(slot), n, off, comp) : l.rbd_aio_writev(this.#image, this.#iov.iovView(slot), n, off, comp);
    } else if (op === OP_FLUSH) {
      r = l.rbd_aio_flush(this.#image, comp);
    } else if (op === OP_DISCARD) {
      this.#part[slot] = this.#byteLength[slot];
      r = l.rbd_aio_discard(this.#image, off, this.#byteLength[slot], comp);
    } else {
      this.#part[slot] = this.#byteLength[slot];
      r = l.rbd_aio_write_zeroes(this.#image, off, this.#byteLength[slot], comp, 0, 0);
    }
    if (r < 0) {
      // Not queued: the completion never fires.
      l.rbd_aio_release(comp);
      this.#complete(slot, r);
    }
  }

  // --- completion -------------------------------------------------------------------------

  poll(): number {
    this.#completed = 0;
    if (this.#busy === 0) return 0;
    const l = this.#lib;
    const popped = this.#popped;
    for (;;) {
      const n = l.rbd_poll_io_events(this.#image, popped, POLL_BATCH);
      for (let i = 0; i < n; i++) {
        const comp = popped[2 * i] + popped[2 * i + 1] * 0x1_0000_0000;
        const arg = l.rbd_aio_get_arg(comp);
        const ret = l.rbd_aio_get_return_value(comp) as number;
        l.rbd_aio_release(comp);
        const ch = arg >>> 16;
        const slot = arg & 0xffff;
        if (ch === this.#ch) this.#complete(slot, ret);
        else this.#forward(ch, slot, ret);
      }
      if (n < POLL_BATCH) break;
    }
    if (this.#busy > 0) this.#drainInbox();
    return this.#completed;
  }

  /** Hands another channel's completion to its inbox (dropped if that channel is gone). */
  #forward(ch: number, slot: number, ret: number): void {
    const c = this.#ctl;
    if (ch >= RBD_MAX_CHANNELS || slot >= RBD_SLOTS || Atomics.load(c, usedWord(ch)) !== 1) return;
    const i = Atomics.add(c, tailWord(ch), 1) % RBD_SLOTS;
    const w = entryWord(ch, i >= 0 ? i : i + RBD_SLOTS);
    // The owner has at most RBD_SLOTS requests out, so the entry is free or about to be read.
    while (Atomics.load(c, w) !== 0) Atomics.wait(c, w, Atomics.load(c, w), 0.01);
    c[w + 1] = ret;
    Atomics.store(c, w, slot + 1);
    Atomics.add(c, CTL_FORWARDED, 1);
    // The owner's reactor may sleep: it watches this fd (the bdev keeps it open while channels are).
    eventfdSignal(this.#eventFd);
  }

  #drainInbox(): void {
    const c = this.#ctl;
    for (;;) {
      let i = this.#inboxHead % RBD_SLOTS;
      if (i < 0) i += RBD_SLOTS;
      const w = entryWord(this.#ch, i);
      const v = Atomics.load(c, w);
      if (v === 0) return;
      const ret = c[w + 1];
      Atomics.store(c, w, 0);
      this.#inboxHead = (this.#inboxHead + 1) | 0;
      this.#complete(v - 1, ret);
    }
  }

  /** A submission or part finished with librbd's result `ret` (bytes or 0, or -errno). */
  #complete(slot: number, ret: number): void {
    if (this.#waiter[slot] === null) return;
    if (ret >= 0) {
      const op = this.#op[slot];
      if (this.#bounced[slot] === 1) {
        const part = this.#part[slot];
        if (op === OP_READ) (this.#sg[slot] as SgList).copyIn(this.#sgOffset[slot] + this.#done[slot], this.#iov.bounceView(slot), 0, part);
        this.#done[slot] += part;
        if (this.#done[slot] < this.#byteLength[slot]) return this.#submit(slot);
      } else if (op === OP_READ && ret !== this.#byteLength[slot]) {
        ret = -5; // a short read inside the image: not what was asked
      }
      if (ret >= 0) return this.#finish(slot, BDEV_OK);
    }
    this.#finish(slot, this.#status(-ret));
  }

  #status(errno: number): number {
    const c = this.#ctl;
    Atomics.add(c, CTL_FAILED_IOS, 1);
    Atomics.store(c, CTL_LAST_ERRNO, errno);
    if (errno === ESHUTDOWN && !this.#blocklistLogged) {
      this.#blocklistLogged = true;
      log.error({ bdev: this.name }, 'librbd: this client was blocklisted (another client broke its lock): I/O fails until the bdev is recreated');
    }
    if (errno === EROFS) return BDEV_EROFS;
    if (errno === ENOSPC || errno === EDQUOT) return BDEV_ENOSPC;
    if (errno === EINVAL) return BDEV_EINVAL;
    return BDEV_EIO;
  }

  #finish(slot: number, status: number): void {
    const w = this.#waiter[slot] as BdevIoWaiter;
    this.#waiter[slot] = null;
    this.#sg[slot] = null;
    this.#free[this.#freeTop++] = slot;
    this.#busy--;
    this.#completed++;
    w.bdevIoDone(status);
  }

  inflight(): number {
    return this.#busy;
  }

  resize(numBlocks: number): void {
    this.numBlocks = numBlocks;
  }

  /**
   * Requests still out belong to librbd until they complete: their memory must stay mapped, so
   * a channel closed with I/O in flight keeps its iovec table (and logs it).
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    Atomics.store(this.#ctl, usedWord(this.#ch), 0);
    Atomics.sub(this.#ctl, CTL_CHANNELS, 1);
    if (this.#busy === 0) this.#iov.close();
    else log.warn({ bdev: this.name, inflight: this.#busy }, 'channel closed with requests in librbd: their buffers stay mapped');
  }
}
