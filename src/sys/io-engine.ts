// The contract of a block I/O engine: requests are prepared into numbered slots (one request per
// slot at a time, slot < depth), pushed to the kernel or to worker threads in one batch by
// submit(), and their results collected without a syscall by reap(). Two implementations:
// io_uring (io-uring.ts) and a worker-thread pool for hosts without io_uring (thread-pool-engine.ts).
import type { IoVectorTable } from './io-vectors.ts';

export type IoEngineKind = 'io_uring' | 'thread-pool';

export interface IoEngine {
  readonly kind: IoEngineKind;
  /** Slots 0..depth-1; at most one outstanding request per slot. */
  readonly depth: number;
  /** Where readv()/writev() take their iovecs from: slot s uses iov's array s. */
  readonly iov: IoVectorTable;
  /** An eventfd that becomes readable when completions are posted (while signalling is on). */
  readonly eventFd: number;
  /** After reap(): slot and result (bytes, or -errno) of completions [0, n). */
  readonly doneSlots: Int32Array;
  readonly doneResults: Int32Array;
  /** Prepared requests not yet taken by submit(). */
  readonly queued: number;
  /** Requests prepared and not yet reaped. */
  readonly outstanding: number;
  readv(slot: number, fd: number, iovCount: number, offset: number): void;
  writev(slot: number, fd: number, iovCount: number, offset: number): void;
  fsync(slot: number, fd: number): void;
  /** fallocate(fd, mode, offset, len). */
  fallocate(slot: number, fd: number, mode: number, offset: number, len: number): void;
  /** Hands every queued request over at once; returns how many were taken, or -errno on a fatal error. */
  submit(): number;
  /** Collects up to `depth` completions into doneSlots/doneResults; returns how many. No syscall. */
  reap(): number;
  /** Blocks until a completion is ready or timeoutMs passes; true when one is ready. Not for the data path. */
  wait(timeoutMs: number): boolean;
  /** Turns eventFd signalling on (a reactor about to sleep) or off (busy polling saves the writes). */
  setCompletionSignal(enabled: boolean): void;
  /** Releases everything. Requests still outstanding keep their native memory (it is leaked, not freed under them). */
  close(): void;
}

/** 2^32: a byte count or offset (< 2^53) goes into an SQE as its two u32 halves. */
export const TWO_32 = 0x1_0000_0000;

export type IoEngineErrorCode = 'IO_ENGINE_CLOSED' | 'IO_ENGINE_START_FAILED';

/** An engine used after close(), or one whose worker threads did not start. */
export class IoEngineError extends Error {
  readonly code: IoEngineErrorCode;
  constructor(code: IoEngineErrorCode, message: string) {
    super(message);
    this.name = 'IoEngineError';
    this.code = code;
  }
}
