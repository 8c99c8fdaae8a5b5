// The io_uring block engine: SQEs are written straight into the mapped SQE array, published with
// one release store of the SQ tail and pushed by one io_uring_enter per submit(); completions are
// read from the mapped CQ ring (acquire load of the CQ tail, release store of the CQ head), no
// syscall. user_data is the slot number. Nothing is allocated per request.
import { closeFd } from './fd.ts';
import { EAGAIN, EINTR, lastErrno, SysError } from './errno.ts';
import { eventfdCreate } from './eventfd.ts';
import { blockLibc, POLLIN, sysIoUringEnter, sysIoUringRegister } from './block-io-libc.ts';
import { IoVectorTable } from './io-vectors.ts';
import { createIoUringRings, type IoUringRings } from './io-uring-setup.ts';
import {
  IORING_CQ_EVENTFD_DISABLED,
  IORING_ENTER_GETEVENTS,
  IORING_OP_FALLOCATE,
  IORING_OP_FSYNC,
  IORING_OP_READV,
  IORING_OP_WRITEV,
  IORING_REGISTER_EVENTFD,
  IORING_SQ_CQ_OVERFLOW,
  IORING_SQ_TASKRUN,
  IORING_UNREGISTER_EVENTFD,
  SQE_SIZE,
} from './io-uring-abi.ts';
import { IoEngineError, TWO_32, type IoEngine } from './io-engine.ts';

const EBUSY = 16;
const SQE_WORDS = SQE_SIZE / 4;

export class IoUringEngine implements IoEngine {
  readonly kind = 'io_uring';
  readonly depth: number;
  readonly iov: IoVectorTable;
  readonly eventFd: number;
  readonly doneSlots: Int32Array;
  readonly doneResults: Int32Array;
  readonly ringFd: number;
  #r: IoUringRings;
  /** Our copy of the SQ tail (the kernel's copy is published in submit()). */
  #sqTail: number;
  /** Our copy of the CQ head (we are its only writer). */
  #cqHead: number;
  #queued = 0;
  #outstanding = 0;
  #pollfd = new Int32Array(2);
  #closed = false;

  /** A ring of `depth` entries (the kernel may round up; the engine still uses slots < depth). */
  constructor(depth: number) {
    if (!Number.isInteger(depth) || depth < 1 || depth > 4096) throw new RangeError(`io_uring depth ${depth} is not in 1..4096`);
    this.#r = createIoUringRings(depth);
    const r = this.#r;
    this.ringFd = r.fd;
    this.depth = depth;
    this.#sqTail = r.sq32[r.sqTail];
    this.#cqHead = r.cq32[r.cqHead];
    this.doneSlots = new Int32Array(depth);
    this.doneResults = new Int32Array(depth);
    let efd = -1;
    try {
      this.iov = new IoVectorTable(depth);
      efd = eventfdCreate();
      if (sysIoUringRegister(r.fd, IORING_REGISTER_EVENTFD, new Int32Array([efd]), 1) < 0) {
        throw new SysError('io_uring_register(IORING_REGISTER_EVENTFD)', lastErrno());
      }
    } catch (e) {
      closeFd(efd);
      r.unmap();
      closeFd(r.fd);
      throw e;
    }
    this.eventFd = efd;
  }

  get queued(): number {
    return this.#queued;
  }

  get outstanding(): number {
    return this.#outstanding;
  }

  /** Writes one SQE at the local tail. The ring never fills: slots < depth <= sq entries, one SQE each. */
  #prep(op: number, slot: number, fd: number, offset: number, addr: number, len: number, opFlags: number): void {
    if (this.#closed) throw new IoEngineError('IO_ENGINE_CLOSED', 'io_uring engine used after close()');
    if (!(slot >= 0 && slot < this.depth)) throw new RangeError(`io_uring slot ${slot} is not in 0..${this.depth - 1}`);
    const r = this.#r;
    const w = (this.#sqTail & r.sqMask) * SQE_WORDS;
    const s = r.sqes;
    s[w] = op; // opcode, flags 0, ioprio 0
    s[w + 1] = fd;
    s[w + 2] = offset % TWO_32;
    s[w + 3] = Math.floor(offset / TWO_32);
    s[w + 4] = addr % TWO_32;
    s[w + 5] = Math.floor(addr / TWO_32);
    s[w + 6] = len;
    s[w + 7] = opFlags;
    s[w + 8] = slot; // user_data
    s[w + 9] = 0;
    s.fill(0, w + 10, w + SQE_WORDS);
    this.#sqTail = (this.#sqTail + 1) >>> 0;
    this.#queued++;
    this.#outstanding++;
  }

  readv(slot: number, fd: number, iovCount: number, offset: number): void {
    this.#prep(IORING_OP_READV, slot, fd, offset, this.iov.iovAddr(slot), iovCount, 0);
  }

  writev(slot: number, fd: number, iovCount: number, offset: number): void {
    this.#prep(IORING_OP_WRITEV, slot, fd, offset, this.iov.iovAddr(slot), iovCount, 0);
  }

  fsync(slot: number, fd: number): void {
    this.#prep(IORING_OP_FSYNC, slot, fd, 0, 0, 0, 0);
  }

  /** IORING_OP_FALLOCATE carries the mode in len and the length in addr. */
  fallocate(slot: number, fd: number, mode: number, offset: number, len: number): void {
    this.#prep(IORING_OP_FALLOCATE, slot, fd, offset, len, mode, 0);
  }

  submit(): number {
    if (this.#closed) return 0;
    const r = this.#r;
    const sqFlags = Atomics.load(r.sq32, r.sqFlags);
    // Overflowed CQEs, or completions waiting in task work (COOP_TASKRUN): both need an enter.
    const flush = (sqFlags & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN)) !== 0;
    if (this.#queued === 0 && !flush) return 0;
    // Release: the SQE contents become visible to the kernel no later than the new tail.
    Atomics.store(r.sq32, r.sqTail, this.#sqTail);
    const pending = (this.#sqTail - Atomics.load(r.sq32, r.sqHead)) >>> 0;
    // GETEVENTS with min_complete 0 runs the task work and flushes overflowed CQEs into the ring.
    const n = sysIoUringEnter(r.fd, pending, 0, flush ? IORING_ENTER_GETEVENTS : 0);
    if (n < 0) {
      const e = lastErrno();
      // Transient: the kernel is short of resources or was interrupted; the SQEs stay queued.
      if (e === EAGAIN || e === EBUSY || e === EINTR) return 0;
      return -e;
    }
    this.#queued = (this.#sqTail - Atomics.load(r.sq32, r.sqHead)) >>> 0;
    return n;
  }

  reap(): number {
    if (this.#closed) return 0;
    const r = this.#r;
    // Acquire: CQE contents are complete once the tail says so.
    const tail = Atomics.load(r.cq32, r.cqTail);
    let head = this.#cqHead;
    let n = 0;
    const max = this.doneSlots.length;
    while (head !== tail && n < max) {
      const w = r.cqes + (head & r.cqMask) * 4;
      this.doneSlots[n] = r.cq32[w]; // user_data low word = slot
      this.doneResults[n] = r.cqI32[w + 2];
      n++;
      head = (head + 1) >>> 0;
    }
    if (n > 0) {
      this.#cqHead = head;
      // Release: the kernel may reuse these CQEs only after we have read them.
      Atomics.store(r.cq32, r.cqHead, head);
      this.#outstanding -= n;
    }
    return n;
  }

  wait(timeoutMs: number): boolean {
    if (this.#closed) return false;
    const r = this.#r;
    if (Atomics.load(r.cq32, r.cqTail) !== this.#cqHead) return true;
    this.#pollfd[0] = r.fd;
    this.#pollfd[1] = POLLIN;
    const n = blockLibc.poll(this.#pollfd, 1, Math.max(0, Math.min(timeoutMs, 0x7fffffff)));
    return n > 0 || Atomics.load(r.cq32, r.cqTail) !== this.#cqHead;
  }

  setCompletionSignal(enabled: boolean): void {
    const r = this.#r;
    if (this.#closed || r.cqFlags < 0) return;
    const f = Atomics.load(r.cq32, r.cqFlags);
    Atomics.store(r.cq32, r.cqFlags, enabled ? f & ~IORING_CQ_EVENTFD_DISABLED : f | IORING_CQ_EVENTFD_DISABLED);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const r = this.#r;
    sysIoUringRegister(r.fd, IORING_UNREGISTER_EVENTFD, null, 0);
    closeFd(this.eventFd);
    // Closing the ring cancels what is still in flight; the kernel copied the iovecs at submission
    // (IORING_FEAT_SUBMIT_STABLE), but keep their memory anyway when requests are outstanding.
    r.unmap();
    closeFd(r.fd);
    if (this.#outstanding === 0) this.iov.close();
  }
}
