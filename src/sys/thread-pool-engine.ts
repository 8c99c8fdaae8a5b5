// The fallback block engine for hosts without io_uring: a few worker threads run the blocking
// syscalls. Requests and results travel through a SharedArrayBuffer (thread-pool-layout.ts) with
// Atomics, so the data path allocates nothing, and the submitting thread makes no syscall beyond
// the Atomics.notify that wakes sleeping workers. Completions are signalled on an eventfd when asked.
import { Worker } from 'node:worker_threads';
import { closeFd } from './fd.ts';
import { eventfdCreate } from './eventfd.ts';
import { IoVectorTable } from './io-vectors.ts';
import { IoEngineError, type IoEngine } from './io-engine.ts';
import {
  TP_DONE_SEQ,
  TP_EVENTFD,
  TP_F64_IOV,
  TP_F64_LEN,
  TP_F64_OFFSET,
  TP_F64_WORDS,
  TP_MASK,
  TP_NOTIFY,
  TP_OP_FALLOCATE,
  TP_OP_FSYNC,
  TP_OP_READV,
  TP_OP_WRITEV,
  TP_READY,
  TP_REC_FD,
  TP_REC_IOVCNT,
  TP_REC_MODE,
  TP_REC_OP,
  TP_REC_RESULT,
  TP_REC_WORDS,
  TP_SQ_TAIL,
  TP_STOP,
  ringCapacity,
  threadPoolBytes,
  threadPoolViews,
  type ThreadPoolViews,
} from './thread-pool-layout.ts';

export const THREAD_POOL_DEFAULT_THREADS = 4;
const MAX_THREADS = 64;
const WORKER_START_TIMEOUT_MS = 30_000;

export class ThreadPoolEngine implements IoEngine {
  readonly kind = 'thread-pool';
  readonly depth: number;
  readonly iov: IoVectorTable;
  readonly eventFd: number;
  readonly doneSlots: Int32Array;
  readonly doneResults: Int32Array;
  readonly threads: number;
  #v: ThreadPoolViews;
  #mask: number;
  #workers: Worker[] = [];
  /** Prepared, not yet published slots. */
  #pending: Int32Array;
  #pendingCount = 0;
  #sqTail = 0;
  #cqHead = 0;
  #outstanding = 0;
  #closed = false;

  constructor(depth: number, threads = THREAD_POOL_DEFAULT_THREADS) {
    if (!Number.isInteger(depth) || depth < 1 || depth > 4096) throw new RangeError(`thread-pool depth ${depth} is not in 1..4096`);
    if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
      throw new RangeError(`thread-pool threads ${threads} is not in 1..${MAX_THREADS}`);
    }
    this.depth = depth;
    this.threads = threads;
    const sab = new SharedArrayBuffer(threadPoolBytes(depth));
    this.#v = threadPoolViews(sab, depth);
    this.#mask = ringCapacity(depth) - 1;
    this.#v.ctl[TP_MASK] = this.#mask;
    this.#v.cq.fill(-1);
    this.#pending = new Int32Array(depth);
    this.doneSlots = new Int32Array(depth);
    this.doneResults = new Int32Array(depth);
    this.iov = new IoVectorTable(depth);
    this.eventFd = eventfdCreate();
    this.#v.ctl[TP_EVENTFD] = this.eventFd;
    this.#v.ctl[TP_NOTIFY] = 1;
    for (let i = 0; i < threads; i++) {
      const w = new Worker(new URL('./thread-pool-worker.ts', import.meta.url), { workerData: { sab, depth }, name: `vhostd-io-${i}` });
      // An idle pool must not keep the process alive; close() stops it explicitly.
      w.unref();
      this.#workers.push(w);
    }
    // Wait until every worker sits in its loop. A worker stopped while it is still loading its
    // modules can abort the process (a native addon throwing during termination), and a pool
    // whose threads cannot start must fail here, loudly, not leave requests hanging.
    const deadline = Date.now() + WORKER_START_TIMEOUT_MS;
    for (;;) {
      const ready = Atomics.load(this.#v.ctl, TP_READY);
      if (ready >= threads) break;
      const left = deadline - Date.now();
      if (left <= 0) {
        this.close();
        throw new IoEngineError(
          'IO_ENGINE_START_FAILED',
          `thread-pool engine: only ${ready} of ${threads} I/O worker threads started within ${WORKER_START_TIMEOUT_MS} ms`,
        );
      }
      Atomics.wait(this.#v.ctl, TP_READY, ready, left);
    }
  }

  get queued(): number {
    return this.#pendingCount;
  }

  get outstanding(): number {
    return this.#outstanding;
  }

  #prep(op: number, slot: number, fd: number, offset: number, len: number, iovCount: number, mode: number): void {
    if (this.#closed) throw new IoEngineError('IO_ENGINE_CLOSED', 'thread-pool engine used after close()');
    if (!(slot >= 0 && slot < this.depth)) throw new RangeError(`thread-pool slot ${slot} is not in 0..${this.depth - 1}`);
    const { rec, f64 } = this.#v;
    const r = slot * TP_REC_WORDS;
    const d = slot * TP_F64_WORDS;
    rec[r + TP_REC_OP] = op;
    rec[r + TP_REC_FD] = fd;
    rec[r + TP_REC_IOVCNT] = iovCount;
    rec[r + TP_REC_MODE] = mode;
    rec[r + TP_REC_RESULT] = 0;
    f64[d + TP_F64_OFFSET] = offset;
    f64[d + TP_F64_LEN] = len;
    f64[d + TP_F64_IOV] = op === TP_OP_READV || op === TP_OP_WRITEV ? this.iov.iovAddr(slot) : 0;
    this.#pending[this.#pendingCount++] = slot;
    this.#outstanding++;
  }

  readv(slot: number, fd: number, iovCount: number, offset: number): void {
    this.#prep(TP_OP_READV, slot, fd, offset, 0, iovCount, 0);
  }

  writev(slot: number, fd: number, iovCount: number, offset: number): void {
    this.#prep(TP_OP_WRITEV, slot, fd, offset, 0, iovCount, 0);
  }

  fsync(slot: number, fd: number): void {
    this.#prep(TP_OP_FSYNC, slot, fd, 0, 0, 0, 0);
  }

  fallocate(slot: number, fd: number, mode: number, offset: number, len: number): void {
    this.#prep(TP_OP_FALLOCATE, slot, fd, offset, len, 0, mode);
  }

  submit(): number {
    const n = this.#pendingCount;
    if (n === 0 || this.#closed) return 0;
    const { ctl, sq } = this.#v;
    let t = this.#sqTail;
    for (let i = 0; i < n; i++) {
      Atomics.store(sq, t & this.#mask, this.#pending[i]);
      t = (t + 1) | 0;
    }
    this.#sqTail = t;
    this.#pendingCount = 0;
    // Publishing the tail releases the records and ring entries written above.
    Atomics.store(ctl, TP_SQ_TAIL, t);
    Atomics.notify(ctl, TP_SQ_TAIL, Math.min(n, this.threads));
    return n;
  }

  reap(): number {
    if (this.#closed) return 0;
    const { cq, rec } = this.#v;
    let n = 0;
    const max = this.doneSlots.length;
    while (n < max) {
      const i = this.#cqHead & this.#mask;
      // -1: that position is reserved by a worker but not yet stored (or empty); later ones wait.
      const slot = Atomics.load(cq, i);
      if (slot < 0) break;
      Atomics.store(cq, i, -1);
      this.doneSlots[n] = slot;
      this.doneResults[n] = Atomics.load(rec, slot * TP_REC_WORDS + TP_REC_RESULT);
      this.#cqHead = (this.#cqHead + 1) | 0;
      n++;
    }
    this.#outstanding -= n;
    return n;
  }

  wait(timeoutMs: number): boolean {
    if (this.#closed) return false;
    const { ctl, cq } = this.#v;
    const seq = Atomics.load(ctl, TP_DONE_SEQ);
    if (Atomics.load(cq, this.#cqHead & this.#mask) >= 0) return true;
    Atomics.wait(ctl, TP_DONE_SEQ, seq, Math.max(0, timeoutMs));
    return Atomics.load(cq, this.#cqHead & this.#mask) >= 0;
  }

  setCompletionSignal(enabled: boolean): void {
    Atomics.store(this.#v.ctl, TP_NOTIFY, enabled ? 1 : 0);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const { ctl } = this.#v;
    // Workers leave their loop and end on their own (a worker inside a syscall finishes it first).
    Atomics.store(ctl, TP_STOP, 1);
    Atomics.notify(ctl, TP_SQ_TAIL);
    this.#workers = [];
    if (this.#outstanding === 0) {
      this.iov.close();
      closeFd(this.eventFd);
    }
  }
}
