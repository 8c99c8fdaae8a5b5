// Pending unit attention conditions of one LUN (SAM-5 5.14; one I_T nexus per LUN here). A small
// fixed FIFO of (ASC << 8) | ASCQ codes; a reset supersedes everything queued before it. It lives
// in the LUN's shared state: the LUN's instances in several reactors report each condition once.
import { SCSI_ASC_POWER_ON_RESET } from './scsi-constants.ts';
import { UA_CAPACITY as CAPACITY, UA_CODES, UA_COUNT, UA_LOCK } from './lun-shared-state.ts';

export class UnitAttentionQueue {
  private readonly w: Int32Array;

  /** `words`: the LUN's shared state words (LunSharedState); a private array when omitted. */
  constructor(words: Int32Array = new Int32Array(UA_CODES + CAPACITY)) {
    this.w = words;
  }

  /** Checked before every command: one load, no lock. */
  get pending(): boolean {
    return Atomics.load(this.w, UA_COUNT) > 0;
  }

  // Held for a few loads and stores, and only while the queue changes (rare): a spin is cheaper
  // than anything that sleeps.
  private lock(): void {
    while (Atomics.compareExchange(this.w, UA_LOCK, 0, 1) !== 0);
  }

  private unlock(): void {
    Atomics.store(this.w, UA_LOCK, 0);
  }

  /** Queues a condition once; when full, the oldest non-reset entry makes room. */
  push(ascAscq: number): void {
    const w = this.w;
    this.lock();
    let count = w[UA_COUNT];
    for (let i = 0; i < count; i++) {
      if (w[UA_CODES + i] === ascAscq) return this.unlock();
    }
    if (count === CAPACITY) {
      const drop = w[UA_CODES] === SCSI_ASC_POWER_ON_RESET ? 1 : 0;
      w.copyWithin(UA_CODES + drop, UA_CODES + drop + 1, UA_CODES + CAPACITY);
      count--;
    }
    w[UA_CODES + count] = ascAscq;
    Atomics.store(w, UA_COUNT, count + 1);
    this.unlock();
  }

  /** Power on / reset: clears every other condition (SAM-5: it reports the reset only). */
  reset(): void {
    this.lock();
    this.w[UA_CODES] = SCSI_ASC_POWER_ON_RESET;
    Atomics.store(this.w, UA_COUNT, 1);
    this.unlock();
  }

  /** Removes and returns the oldest condition, or -1. */
  shift(): number {
    const w = this.w;
    this.lock();
    const count = w[UA_COUNT];
    if (count === 0) {
      this.unlock();
      return -1;
    }
    const c = w[UA_CODES];
    w.copyWithin(UA_CODES, UA_CODES + 1, UA_CODES + count);
    Atomics.store(w, UA_COUNT, count - 1);
    this.unlock();
    return c;
  }

  clear(): void {
    this.lock();
    Atomics.store(this.w, UA_COUNT, 0);
    this.unlock();
  }
}
