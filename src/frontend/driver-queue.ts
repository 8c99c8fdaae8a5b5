// What a device driver needs from a virtqueue, whatever its layout: DriverSplitQueue and
// DriverPackedQueue both implement DriverQueue, so the virtio-scsi and virtio-blk drivers run on
// either. Also the pieces both layouts share: the reusable buffer list and the typed error.
import { eventfdDrain } from '../sys/eventfd.ts';
import { watchReadable } from '../sys/fd-watch.ts';

export type DriverQueueErrorCode =
  | 'BAD_QUEUE_SIZE' | 'EMPTY_CHAIN' | 'CHAIN_TOO_LONG' | 'BAD_BUFFER'
  | 'USED_IDX_JUMP' | 'BAD_USED_ID' | 'USED_LEN_TOO_LARGE' | 'BROKEN';

export class DriverQueueError extends Error {
  readonly code: DriverQueueErrorCode;
  constructor(code: DriverQueueErrorCode, message: string) {
    super(message);
    this.name = 'DriverQueueError';
    this.code = code;
  }
}

/** A reusable list of guest buffers (GPA + length): fill it, pass it to add(), clear it. */
export class BufferList {
  readonly capacity: number;
  readonly gpas: Float64Array;
  readonly lens: Uint32Array;
  count = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.gpas = new Float64Array(capacity);
    this.lens = new Uint32Array(capacity);
  }

  clear(): this {
    this.count = 0;
    return this;
  }

  /** Appends a buffer; throws when full (a programming error, not a device one). */
  push(gpa: number, len: number): this {
    if (this.count >= this.capacity) throw new DriverQueueError('CHAIN_TOO_LONG', `buffer list holds at most ${this.capacity}`);
    this.gpas[this.count] = gpa;
    this.lens[this.count] = len;
    this.count++;
    return this;
  }

  totalLength(): number {
    let t = 0;
    for (let i = 0; i < this.count; i++) t += this.lens[i];
    return t;
  }
}

export type DriverQueueKind = 'split' | 'packed';

/** The driver side of one virtqueue, split or packed. */
export interface DriverQueue {
  readonly kind: DriverQueueKind;
  readonly size: number;
  /** Descriptors per preallocated indirect table (0: no indirect tables). */
  readonly indirectMax: number;
  /** The three ring areas as the virtio spec names them (split: desc, avail, used; packed: desc, driver event, device event). */
  readonly descGpa: number;
  readonly driverAreaGpa: number;
  readonly deviceAreaGpa: number;
  /** SET_VRING_BASE value for a ring that never ran (split 0; packed both wrap counters 1: 0x80008000). */
  readonly initialVringBase: number;
  /** -1 when the queue has none (or is closed). */
  readonly kickFd: number;
  readonly callFd: number;
  /** VIRTIO_RING_F_EVENT_IDX negotiated. */
  eventIdx: boolean;
  /** After pollUsed(): tokens and lengths of completions [0, n). */
  readonly completedTokens: Float64Array;
  readonly completedLens: Uint32Array;
  readonly kicks: number;
  readonly kicksSuppressed: number;
  /** Free descriptor slots in the ring. */
  readonly numFree: number;
  /** Buffers made available and not yet reaped. */
  readonly inFlight: number;
  /** The validation error that broke the queue, if any. */
  readonly error: DriverQueueError | null;
  /**
   * Queues out (device-readable) then in (device-writable) buffers under token; with indirect, in
   * one indirect table. Returns the buffer's id (split: head index; packed: buffer id), or -1 when
   * the ring has no room. Not visible to the device until publish() or kick().
   */
  add(out: BufferList, inb: BufferList, token: number, indirect?: boolean): number;
  /** Makes everything added so far visible to the device. */
  publish(): void;
  /** publish(), then signals the kick eventfd unless the device suppressed it; returns whether it signalled. */
  kick(): boolean;
  /** Signals the kick eventfd regardless of suppression. */
  notify(): void;
  /** Reaps completions into completedTokens/completedLens; returns how many. Throws DriverQueueError on a device bug. */
  pollUsed(): number;
  disableCalls(): void;
  /** Re-enables calls; true when completions are already pending (reap before sleeping). */
  enableCalls(): boolean;
  waitForCall(timeoutMs: number): Promise<boolean>;
  close(): void;
}

/**
 * Waits until eventfd fd is signalled (true) or timeoutMs passes (false), without blocking the
 * event loop; drains it.
 */
export function waitForEventfd(fd: number, timeoutMs: number): Promise<boolean> {
  if (fd < 0) return Promise.reject(new DriverQueueError('BAD_BUFFER', 'queue has no call eventfd'));
  if (eventfdDrain(fd) > 0) return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    let done = false;
    const finish = (v: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      watch.stop();
      resolve(v);
    };
    const watch = watchReadable(fd, () => {
      // Never throw out of a poll callback (it would crash the process).
      let n = 0;
      try {
        n = eventfdDrain(fd);
      } catch {
        n = 1;
      }
      if (n > 0) finish(true);
    });
    const timer = setTimeout(() => finish(false), timeoutMs);
  });
}
