// Per-thread I/O handle of a uring bdev: its own fd and its own engine (io_uring, or the
// thread-pool fallback). Requests take a slot; read/write point the slot's iovecs straight at the
// request's SgList memory (zero copy), or go through the slot's bounce buffer when that memory has
// no host address or breaks O_DIRECT alignment. poll() submits everything queued since the last
// call in one batch, then reaps completions from shared memory and calls the waiters; a request
// does not wait for poll() while the device may be short of work (SUBMIT_BATCH).
// Requests beyond the engine's depth wait in a fixed backlog. Nothing is allocated per request.
// A file on tmpfs or ramfs that its bdev maps under a lease (uring-file-map.ts): while the bdev's
// gate is open, reads and writes are copies to and from a view of that mapping, completed inside
// the call; unmap and write-zeroes write zeroes instead of punching holes.
import { BDEV_EINVAL, BDEV_EIO, BDEV_ENOMEM, BDEV_ENOTSUP, BDEV_EROFS, BDEV_OK, type BdevChannel, type BdevIoWaiter } from '../bdev.ts';
import { BdevError } from '../bdev-error.ts';
import { blocksInRange } from '../bdev-geometry.ts';
import type { SgList } from '../../iovec/sg-list.ts';
import { componentLogger } from '../../log/logger.ts';
import { closeFd, dupFd } from '../../sys/fd.ts';
import { viewOf } from '../../sys/memory.ts';
import { MapGateUser } from './file-map-gate.ts';
import { blockFileInfo, openBlockFile } from '../../sys/block-file.ts';
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE } from '../../sys/block-io-libc.ts';
import type { IoEngine, IoEngineKind } from '../../sys/io-engine.ts';
import { openIoEngine, type IoEngineOptions } from '../../sys/io-engine-select.ts';
import { BOUNCE_CHUNK } from '../../sys/io-vectors.ts';
import { preadvMemory, preadvNowait, pwritevMemory, pwritevNowait } from '../../sys/nowait-io.ts';
import type { UringChannelSpec } from './uring.ts';

/** Requests in the engine at once per channel. */
export const URING_QUEUE_DEPTH = 256;
/** Requests that may wait for a slot, as a multiple of the depth; beyond that: BDEV_ENOMEM. */
const BACKLOG_FACTOR = 4;
/** After a read or write that would have blocked, this many go to the engine before trying inline again. */
const INLINE_BACKOFF = 32;
/**
 * A prepared request is submitted at once, not at the next poll(), while fewer than this many of
 * the channel's requests are in the kernel; past that, held-back requests go as soon as this many
 * wait. Holding a turn's requests for one submit left the device idle: the reactor parses the
 * whole avail ring first, then the kernel prepares the batch inside one block plug and the device
 * sees none of it until all of it is ready (~3 us per O_DIRECT request on ext4, ~100 us for 32).
 * A virtio disk that completes a round of requests at once waited for both every round, and 4 KiB
 * QD32 random I/O on it ran ~20% below SPDK's aio bdev, which submits each request on its own
 * (BENCHMARKS.md, Session 5). A channel that keeps this many in the kernel still makes at most one
 * submit syscall per this many requests.
 */
export const SUBMIT_BATCH = 4;

const OP_READ = 1;
const OP_WRITE = 2;
const OP_FLUSH = 3;
const OP_UNMAP = 4;
const OP_WRITE_ZEROES = 5;

// How a write-zeroes is carried out; a stage the file refuses is dropped for the channel's lifetime.
const WZ_ZERO_RANGE = 0;
const WZ_PUNCH_HOLE = 1;
const WZ_WRITE = 2;

const EINTR = 4;
const EAGAIN = 11;
const EINVAL = 22;
const EOPNOTSUPP = 95;

const log = componentLogger('bdev_uring');
/** The fallback warning is logged once per thread, not once per channel. */
let fallbackWarned = false;

export interface UringChannelOptions extends IoEngineOptions {
  /** Engine depth (default URING_QUEUE_DEPTH). */
  queueDepth?: number;
  /** false: every request goes through the engine (tests of the engine paths). */
  inline?: boolean;
}

function specError(spec: UringChannelSpec, what: string): BdevError {
  return new BdevError('BDEV_INVALID_SPEC', `uring channel '${String(spec.name)}': ${what}`);
}

function checkSpec(spec: UringChannelSpec): void {
  const { blockSize, numBlocks } = spec;
  if (!Number.isInteger(blockSize) || blockSize < 512 || (blockSize & (blockSize - 1)) !== 0 || !Number.isSafeInteger(numBlocks) || numBlocks <= 0) {
    throw specError(spec, `bad geometry ${numBlocks} x ${blockSize}`);
  }
  if (typeof spec.filename !== 'string' || spec.filename.length === 0) throw specError(spec, 'no filename');
  if (typeof spec.identity !== 'string') throw specError(spec, 'no identity');
  for (const k of ['readonly', 'direct', 'unmap', 'fallocate'] as const) {
    if (typeof spec[k] !== 'boolean') throw specError(spec, `${k} must be a boolean`);
  }
  if (!Number.isInteger(spec.sharedFd) || spec.sharedFd < -1) throw specError(spec, `bad sharedFd ${spec.sharedFd}`);
  if (spec.mapGate !== null && !(spec.mapGate instanceof SharedArrayBuffer)) throw specError(spec, 'mapGate must be a SharedArrayBuffer or null');
  if (spec.mapGate !== null && (!Number.isSafeInteger(spec.mapLength) || spec.mapLength <= 0 || spec.mapLength > blockSize * numBlocks)) {
    throw specError(spec, `bad mapLength ${spec.mapLength}`);
  }
  if (spec.mapGate !== null && (!Number.isSafeInteger(spec.mapAddr) || spec.mapAddr <= 0)) throw specError(spec, `bad mapAddr ${spec.mapAddr}`);
  for (const k of ['memAlign', 'lenAlign'] as const) {
    const v = spec[k];
    if (!Number.isInteger(v) || v < 1 || v > 65536 || (v & (v - 1)) !== 0) throw specError(spec, `${k} ${v} is not a power of two in 1..65536`);
  }
}

export class UringChannel implements BdevChannel {
  readonly name: string;
  readonly blockSize: number;
  numBlocks: number;
  /** Whether this channel runs on io_uring or on the thread-pool fallback. */
  readonly engineKind: IoEngineKind;
  /** O_DIRECT in effect (false: buffered through the page cache). */
  readonly direct: boolean;
  /** Submit failures that were not transient (diagnostics; the SQEs stay queued and are retried). */
  submitErrors = 0;
  lastSubmitErrno = 0;
  #fd: number;
  #e: IoEngine;
  readonly #depth: number;
  readonly #readonly: boolean;
  readonly #unmap: boolean;
  readonly #memAlign: number;
  readonly #lenAlign: number;
  #zeroRange: boolean;
  #punchForZeroes: boolean;
  #closed = false;
  #polling = false;
  /**
   * Reads and writes tried inside the call first (src/sys/nowait-io.ts): on a memory file system
   * always (plain preadv/pwritev); on a buffered file with RWF_NOWAIT, the engine taking what would
   * block. Never for O_DIRECT on a device, where the call would wait for the device.
   */
  #inlineReads: boolean;
  #inlineWrites: boolean;
  readonly #memoryFs: boolean;
  #inlineSkip = 0;
  /** Requests completed inline (diagnostics and tests). */
  inlineCompletions = 0;
  /** Reads and writes done as copies through the file's mapping (diagnostics and tests). */
  mappedCompletions = 0;
  #map: Uint8Array | null = null;
  readonly #mapLength: number;
  #gate: MapGateUser | null = null;
  /** The bdev maps the file: no hole may be punched in it (a read of a hole through a mapping can SIGBUS). */
  readonly #noHoles: boolean;

  // Per slot.
  readonly #free: Int32Array;
  #freeCount: number;
  readonly #op: Uint8Array;
  readonly #bounced: Uint8Array;
  readonly #stage: Uint8Array;
  readonly #pos: Float64Array;
  readonly #len: Float64Array;
  readonly #done: Float64Array;
  readonly #chunk: Float64Array;
  readonly #sgOffset: Float64Array;
  readonly #sg: (SgList | null)[];
  readonly #waiter: (BdevIoWaiter | null)[];

  // Backlog ring of requests waiting for a slot.
  readonly #blCap: number;
  #blHead = 0;
  #blCount = 0;
  readonly #blOp: Uint8Array;
  readonly #blOffset: Float64Array;
  readonly #blBlocks: Float64Array;
  readonly #blSgOffset: Float64Array;
  readonly #blSg: (SgList | null)[];
  readonly #blWaiter: (BdevIoWaiter | null)[];

  constructor(spec: UringChannelSpec, opts: UringChannelOptions = {}) {
    checkSpec(spec);
    const depth = opts.queueDepth ?? URING_QUEUE_DEPTH;
    if (!Number.isInteger(depth) || depth < 1 || depth > 4096) throw specError(spec, `queue depth ${depth} is not in 1..4096`);
    let direct = spec.direct;
    let fd: number;
    let memoryFs = false;
    if (spec.sharedFd >= 0) {
      // Another open of the file would break the bdev's lease; the identity check below makes
      // sure the fd number still is the bdev's file.
      fd = dupFd(spec.sharedFd);
    } else {
      try {
        fd = openBlockFile(spec.filename, { readonly: spec.readonly, direct });
      } catch (e) {
        if (!direct) throw e;
        // The file moved to a file system without O_DIRECT since creation: stay correct, go buffered.
        direct = false;
        fd = openBlockFile(spec.filename, { readonly: spec.readonly, direct });
      }
    }
    try {
      const info = blockFileInfo(fd);
      memoryFs = info.memoryFs;
      if (info.identity !== spec.identity) throw specError(spec, `'${spec.filename}' is no longer the file the bdev was created on`);
      if (info.size < spec.numBlocks * spec.blockSize) {
        throw specError(spec, `'${spec.filename}' holds ${info.size} bytes, the bdev needs ${spec.numBlocks * spec.blockSize}`);
      }
      const { engine, fallbackReason } = openIoEngine(depth, opts);
      if (fallbackReason !== null && !fallbackWarned) {
        fallbackWarned = true;
        log.warn({ bdev: spec.name, reason: fallbackReason }, 'io_uring not used: file I/O runs on the thread-pool fallback (slower)');
      }
      this.#e = engine;
    } catch (e) {
      closeFd(fd);
      throw e;
    }
    this.#fd = fd;
    this.name = spec.name;
    this.blockSize = spec.blockSize;
    this.numBlocks = spec.numBlocks;
    this.engineKind = this.#e.kind;
    this.direct = direct;
    this.#depth = depth;
    this.#readonly = spec.readonly;
    this.#unmap = spec.unmap && !spec.readonly;
    this.#memAlign = direct ? spec.memAlign : 1;
    this.#lenAlign = direct ? spec.lenAlign : 1;
    this.#noHoles = spec.mapGate !== null;
    this.#zeroRange = spec.fallocate && !this.#noHoles;
    this.#punchForZeroes = spec.fallocate && !this.#noHoles;
    this.#memoryFs = memoryFs;
    this.#mapLength = spec.mapGate !== null ? spec.mapLength : 0;
    if (spec.mapGate !== null) this.#mapFile(spec);
    this.#inlineReads = opts.inline !== false && (!direct || this.#memoryFs);
    this.#inlineWrites = this.#inlineReads;

    this.#free = new Int32Array(depth);
    for (let i = 0; i < depth; i++) this.#free[i] = depth - 1 - i;
    this.#freeCount = depth;
    this.#op = new Uint8Array(depth);
    this.#bounced = new Uint8Array(depth);
    this.#stage = new Uint8Array(depth);
    this.#pos = new Float64Array(depth);
    this.#len = new Float64Array(depth);
    this.#done = new Float64Array(depth);
    this.#chunk = new Float64Array(depth);
    this.#sgOffset = new Float64Array(depth);
    this.#sg = new Array<SgList | null>(depth).fill(null);
    this.#waiter = new Array<BdevIoWaiter | null>(depth).fill(null);

    this.#blCap = depth * BACKLOG_FACTOR;
    this.#blOp = new Uint8Array(this.#blCap);
    this.#blOffset = new Float64Array(this.#blCap);
    this.#blBlocks = new Float64Array(this.#blCap);
    this.#blSgOffset = new Float64Array(this.#blCap);
    this.#blSg = new Array<SgList | null>(this.#blCap).fill(null);
    this.#blWaiter = new Array<BdevIoWaiter | null>(this.#blCap).fill(null);
  }

  /** A view of the bdev's mapping when the gate has a slot left; without one this channel uses read/write only. */
  #mapFile(spec: UringChannelSpec): void {
    const gate = new MapGateUser(spec.mapGate as SharedArrayBuffer);
    if (!gate.claimed) {
      log.info({ bdev: spec.name }, 'every slot of the file mapping is taken: this channel reads and writes through system calls');
      return;
    }
    this.#map = new Uint8Array(viewOf(BigInt(spec.mapAddr), this.#mapLength));
    this.#gate = gate;
  }

  /** Copies a read or write through the mapping when the gate is open: true when done. */
  #mappedCopy(read: boolean, offsetBlocks: number, numBlocks: number, sg: SgList, sgOffset: number): boolean {
    const pos = offsetBlocks * this.blockSize;
    const len = numBlocks * this.blockSize;
    const gate = this.#gate as MapGateUser;
    if (pos + len > this.#mapLength || !gate.enter()) return false;
    try {
      if (read) sg.copyIn(sgOffset, this.#map as Uint8Array, pos, len);
      else sg.copyOut(sgOffset, this.#map as Uint8Array, pos, len);
    } finally {
      gate.leave();
    }
    this.mappedCompletions++;
    return true;
  }

  /** Readable when completions arrived while signalling is on: add it to the reactor's epoll set before sleeping. */
  get eventFd(): number {
    return this.#e.eventFd;
  }

  /** Off while the reactor busy-polls (saves the kernel's eventfd writes), on before it sleeps. */
  setCompletionSignal(enabled: boolean): void {
    if (!this.#closed) this.#e.setCompletionSignal(enabled);
  }

  /** Requests accepted and not yet completed (in the engine or waiting for a slot). */
  inflight(): number {
    return this.#depth - this.#freeCount + this.#blCount;
  }

  #dataValid(offsetBlocks: number, numBlocks: number, sg: SgList, sgOffset: number): boolean {
    return (
      blocksInRange(offsetBlocks, numBlocks, this.numBlocks) &&
      Number.isInteger(sgOffset) &&
      sgOffset >= 0 &&
      sgOffset + numBlocks * this.blockSize <= sg.length
    );
  }

  read(offsetBlocks: number, numBlocks: number, sg: SgList, sgOffset: number, waiter: BdevIoWaiter): void {
    if (this.#closed) return waiter.bdevIoDone(BDEV_EIO);
    if (!this.#dataValid(offsetBlocks, numBlocks, sg, sgOffset)) return waiter.bdevIoDone(BDEV_EINVAL);
    if (numBlocks === 0) return waiter.bdevIoDone(BDEV_OK);
    if (this.#map !== null && this.#mappedCopy(true, offsetBlocks, numBlocks, sg, sgOffset)) return waiter.bdevIoDone(BDEV_OK);
    this.#begin(OP_READ, offsetBlocks, numBlocks, sg, sgOffset, waiter);
  }

  write(offsetBlocks: number, numBlocks: number, sg: SgList, sgOffset: number, waiter: BdevIoWaiter): void {
    if (this.#closed) return waiter.bdevIoDone(BDEV_EIO);
    if (this.#readonly) return waiter.bdevIoDone(BDEV_EROFS);
    if (!this.#dataValid(offsetBlocks, numBlocks, sg, sgOffset)) return waiter.bdevIoDone(BDEV_EINVAL);
    if (numBlocks === 0) return waiter.bdevIoDone(BDEV_OK);
    if (this.#map !== null && this.#mappedCopy(false, offsetBlocks, numBlocks, sg, sgOffset)) return waiter.bdevIoDone(BDEV_OK);
    this.#begin(OP_WRITE, offsetBlocks, numBlocks, sg, sgOffset, waiter);
  }

  /** fsync of the whole file, whatever the range (a range only has to be valid). */
  flush(offsetBlocks: number, numBlocks: number, waiter: BdevIoWaiter): void {
    if (this.#closed) return waiter.bdevIoDone(BDEV_EIO);
    if (!blocksInRange(offsetBlocks, numBlocks, this.numBlocks)) return waiter.bdevIoDone(BDEV_EINVAL);
    this.#begin(OP_FLUSH, offsetBlocks, numBlocks, null, 0, waiter);
  }

  unmap(offsetBlocks: number, numBlocks: number, waiter: BdevIoWaiter): void {
    if (this.#closed) return waiter.bdevIoDone(BDEV_EIO);
    if (this.#readonly) return waiter.bdevIoDone(BDEV_EROFS);
    if (!blocksInRange(offsetBlocks, numBlocks, this.numBlocks)) return waiter.bdevIoDone(BDEV_EINVAL);
    if (!this.#unmap) return waiter.bdevIoDone(BDEV_ENOTSUP);
    if (numBlocks === 0) return waiter.bdevIoDone(BDEV_OK);
    // Unmapped blocks read back as zeroes either way; a mapped file keeps its memory.
    this.#begin(this.#noHoles ? OP_WRITE_ZEROES : OP_UNMAP, offsetBlocks, numBlocks, null, 0, waiter);
  }

  writeZeroes(offsetBlocks: number, numBlocks: number, waiter: BdevIoWaiter): void {
    if (this.#closed) return waiter.bdevIoDone(BDEV_EIO);
    if (this.#readonly) return waiter.bdevIoDone(BDEV_EROFS);
    if (!blocksInRange(offsetBlocks, numBlocks, this.numBlocks)) return waiter.bdevIoDone(BDEV_EINVAL);
    if (numBlocks === 0) return waiter.bdevIoDone(BDEV_OK);
    this.#begin(OP_WRITE_ZEROES, offsetBlocks, numBlocks, null, 0, waiter);
  }

  #begin(op: number, offsetBlocks: number, numBlocks: number, sg: SgList | null, sgOffset: number, waiter: BdevIoWaiter): void {
    // Once requests wait, newcomers queue behind them (no overtaking).
    if (this.#freeCount === 0 || this.#blCount > 0) {
      if (this.#blCount === this.#blCap) return waiter.bdevIoDone(BDEV_ENOMEM);
      const i = (this.#blHead + this.#blCount) % this.#blCap;
      this.#blOp[i] = op;
      this.#blOffset[i] = offsetBlocks;
      this.#blBlocks[i] = numBlocks;
      this.#blSgOffset[i] = sgOffset;
      this.#blSg[i] = sg;
      this.#blWaiter[i] = waiter;
      this.#blCount++;
      return;
    }
    this.#startSlot(op, offsetBlocks, numBlocks, sg, sgOffset, waiter);
  }

  #startSlot(op: number, offsetBlocks: number, numBlocks: number, sg: SgList | null, sgOffset: number, waiter: BdevIoWaiter): void {
    const slot = this.#free[--this.#freeCount];
    this.#op[slot] = op;
    this.#bounced[slot] = 0;
    this.#stage[slot] = this.#zeroRange ? WZ_ZERO_RANGE : this.#punchForZeroes ? WZ_PUNCH_HOLE : WZ_WRITE;
    this.#pos[slot] = offsetBlocks * this.blockSize;
    this.#len[slot] = numBlocks * this.blockSize;
    this.#done[slot] = 0;
    this.#sgOffset[slot] = sgOffset;
    this.#sg[slot] = sg;
    this.#waiter[slot] = waiter;
    this.#issue(slot);
  }

  /** Prepares the slot's next engine request (first attempt, next chunk, or retry) and submits it early when due. */
  #issue(slot: number): void {
    this.#prepare(slot);
    const e = this.#e;
    const waiting = e.queued;
    if (waiting > 0 && (waiting >= SUBMIT_BATCH || e.outstanding - waiting < SUBMIT_BATCH)) this.#submit();
  }

  #submit(): void {
    const r = this.#e.submit();
    if (r < 0) {
      this.submitErrors++;
      this.lastSubmitErrno = -r;
    }
  }

  /** Prepares the slot's next engine request from its state (or completes it inline, or fails it). */
  #prepare(slot: number): void {
    const e = this.#e;
    const fd = this.#fd;
    const op = this.#op[slot];
    if (op === OP_READ || op === OP_WRITE) {
      const sg = this.#sg[slot] as SgList;
      const done = this.#done[slot];
      const rest = this.#len[slot] - done;
      const pos = this.#pos[slot] + done;
      const from = this.#sgOffset[slot] + done;
      if (this.#bounced[slot] === 0) {
        const n = e.iov.fromSegments(slot, sg, from, rest, this.#memAlign, this.#lenAlign);
        if (n > 0) {
          this.#chunk[slot] = rest;
          if ((op === OP_READ ? this.#inlineReads : this.#inlineWrites) && this.#tryInline(slot, op, n, pos)) return;
          if (op === OP_READ) e.readv(slot, fd, n, pos);
          else e.writev(slot, fd, n, pos);
          return;
        }
        this.#bounced[slot] = 1;
      }
      const chunk = rest < BOUNCE_CHUNK ? rest : BOUNCE_CHUNK;
      this.#chunk[slot] = chunk;
      if (e.iov.bounce(slot, chunk) !== 1) return this.#finishSlot(slot, BDEV_EIO);
      if (op === OP_WRITE) sg.copyOut(from, e.iov.bounceView(slot), 0, chunk);
      if (op === OP_READ) e.readv(slot, fd, 1, pos);
      else e.writev(slot, fd, 1, pos);
      return;
    }
    if (op === OP_FLUSH) return e.fsync(slot, fd);
    if (op === OP_UNMAP) return e.fallocate(slot, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, this.#pos[slot], this.#len[slot]);
    // OP_WRITE_ZEROES
    let stage = this.#stage[slot];
    if (stage === WZ_ZERO_RANGE && !this.#zeroRange) stage = WZ_PUNCH_HOLE;
    if (stage === WZ_PUNCH_HOLE && !this.#punchForZeroes) stage = WZ_WRITE;
    this.#stage[slot] = stage;
    if (stage === WZ_ZERO_RANGE) return e.fallocate(slot, fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, this.#pos[slot], this.#len[slot]);
    if (stage === WZ_PUNCH_HOLE) return e.fallocate(slot, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, this.#pos[slot], this.#len[slot]);
    const done = this.#done[slot];
    const rest = this.#len[slot] - done;
    const chunk = rest < BOUNCE_CHUNK ? rest : BOUNCE_CHUNK;
    this.#chunk[slot] = chunk;
    if (e.iov.zeroes(slot, chunk) !== 1) return this.#finishSlot(slot, BDEV_EIO);
    e.writev(slot, fd, 1, this.#pos[slot] + done);
  }

  /** True when the slot's read or write was done (or progressed) inside this call. */
  #tryInline(slot: number, op: number, n: number, pos: number): boolean {
    if (this.#inlineSkip > 0) {
      this.#inlineSkip--;
      return false;
    }
    const iov = this.#e.iov.iovView(slot);
    const fd = this.#fd;
    const read = op === OP_READ;
    const r = this.#memoryFs
      ? read ? preadvMemory(fd, iov, n, pos) : pwritevMemory(fd, iov, n, pos)
      : read ? preadvNowait(fd, iov, n, pos) : pwritevNowait(fd, iov, n, pos);
    if (r > 0) {
      this.inlineCompletions++;
      this.#complete(slot, r);
      return true;
    }
    // No RWF_NOWAIT for this kind of I/O on this file (ext4 buffered writes): stop asking.
    if (r === -EOPNOTSUPP) {
      if (read) this.#inlineReads = false;
      else this.#inlineWrites = false;
    } else this.#inlineSkip = INLINE_BACKOFF; // would block, or an error the engine will report
    return false;
  }

  /** Handles one engine completion; true when it finished the request (the waiter was called). */
  #complete(slot: number, res: number): boolean {
    if (!(slot >= 0 && slot < this.#depth) || this.#waiter[slot] === null) return false;
    const op = this.#op[slot];
    if (res === -EINTR || res === -EAGAIN) {
      this.#issue(slot);
      return false;
    }
    if (res < 0) {
      // O_DIRECT refused the guest's buffers after all: redo the rest through the aligned bounce buffer.
      if ((op === OP_READ || op === OP_WRITE) && this.#memAlign > 1 && this.#bounced[slot] === 0 && res === -EINVAL) {
        this.#bounced[slot] = 1;
        this.#issue(slot);
        return false;
      }
      if (op === OP_WRITE_ZEROES && this.#stage[slot] !== WZ_WRITE && (res === -EOPNOTSUPP || res === -EINVAL)) {
        if (this.#stage[slot] === WZ_ZERO_RANGE) this.#zeroRange = false;
        else this.#punchForZeroes = false;
        this.#stage[slot]++;
        this.#issue(slot);
        return false;
      }
      this.#finishSlot(slot, res);
      return true;
    }
    if (op === OP_READ || op === OP_WRITE || (op === OP_WRITE_ZEROES && this.#stage[slot] === WZ_WRITE)) {
      // No progress at all means the file ended under us (truncated) or the device failed.
      if (res === 0 || res > this.#chunk[slot]) {
        this.#finishSlot(slot, BDEV_EIO);
        return true;
      }
      if (op === OP_READ && this.#bounced[slot] === 1) {
        (this.#sg[slot] as SgList).copyIn(this.#sgOffset[slot] + this.#done[slot], this.#e.iov.bounceView(slot), 0, res);
      }
      this.#done[slot] += res;
      if (this.#done[slot] < this.#len[slot]) {
        this.#issue(slot);
        return false;
      }
    }
    this.#finishSlot(slot, BDEV_OK);
    return true;
  }

  #finishSlot(slot: number, status: number): void {
    const w = this.#waiter[slot] as BdevIoWaiter;
    this.#waiter[slot] = null;
    this.#sg[slot] = null;
    this.#free[this.#freeCount++] = slot;
    w.bdevIoDone(status);
  }

  #startBacklog(): void {
    while (this.#blCount > 0 && this.#freeCount > 0 && !this.#closed) {
      const i = this.#blHead;
      const waiter = this.#blWaiter[i] as BdevIoWaiter;
      const sg = this.#blSg[i];
      this.#blWaiter[i] = null;
      this.#blSg[i] = null;
      this.#blHead = (i + 1) % this.#blCap;
      this.#blCount--;
      this.#startSlot(this.#blOp[i], this.#blOffset[i], this.#blBlocks[i], sg, this.#blSgOffset[i], waiter);
    }
  }

  /** Submits what was queued since the last call (one syscall at most), then reaps; returns requests completed. */
  poll(): number {
    if (this.#closed || this.#polling) return 0;
    this.#polling = true;
    const e = this.#e;
    let completed = 0;
    try {
      // Also with nothing queued: submit() is where io_uring's deferred completions get posted
      // (IORING_SQ_TASKRUN); it returns at once when there is nothing to do.
      this.#submit();
      for (;;) {
        const n = e.reap();
        if (n === 0) break;
        for (let i = 0; i < n; i++) if (this.#complete(e.doneSlots[i], e.doneResults[i])) completed++;
      }
      this.#startBacklog();
    } finally {
      this.#polling = false;
    }
    return completed;
  }

  /** Polls (and sleeps on the engine between polls) until nothing is in flight; false on timeout. Control plane. */
  drain(timeoutMs = 30_000): boolean {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.poll();
      if (this.inflight() === 0) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      if (this.#e.queued === 0) this.#e.wait(Math.min(left, 100));
    }
  }

  resize(numBlocks: number): void {
    if (Number.isSafeInteger(numBlocks) && numBlocks >= 0) this.numBlocks = numBlocks;
  }

  /**
   * Waits for requests in flight (up to 30 s), then closes the engine and the fd. Requests still
   * unfinished then complete with BDEV_EIO (their fd and native memory are leaked, not reused
   * under them); later I/O completes with BDEV_EIO too.
   */
  close(): void {
    if (this.#closed) return;
    const drained = this.drain();
    this.#closed = true;
    this.numBlocks = 0;
    if (!drained) {
      log.error({ bdev: this.name, inflight: this.inflight() }, 'closing with I/O still in flight: failing it with EIO');
      for (let s = 0; s < this.#depth; s++) if (this.#waiter[s] !== null) this.#finishSlot(s, BDEV_EIO);
      while (this.#blCount > 0) {
        const i = this.#blHead;
        const w = this.#blWaiter[i] as BdevIoWaiter;
        this.#blWaiter[i] = null;
        this.#blSg[i] = null;
        this.#blHead = (i + 1) % this.#blCap;
        this.#blCount--;
        w.bdevIoDone(BDEV_EIO);
      }
    }
    this.#e.close();
    // Copies through the mapping finish inside their call: none is in progress here. The
    // mapping is the bdev's (unmapped when it is destroyed, behind the closed gate).
    if (this.#map !== null) {
      this.#map = null;
      (this.#gate as MapGateUser).release();
      this.#gate = null;
    }
    // With requests possibly still inside the kernel or a worker, the fd number must not be reused
    // for another file under them: keep it open (leaked) in that case.
    if (drained) closeFd(this.#fd);
    this.#fd = -1;
  }
}
