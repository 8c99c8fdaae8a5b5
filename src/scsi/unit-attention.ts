// Pending unit attention conditions of one LUN (SAM-5 5.14; one I_T nexus per LUN here). A small
// fixed FIFO of (ASC << 8) | ASCQ codes; a reset supersedes everything queued before it.
import { SCSI_ASC_POWER_ON_RESET } from './scsi-constants.ts';

const CAPACITY = 8;

export class UnitAttentionQueue {
  private readonly codes = new Uint16Array(CAPACITY);
  private count = 0;

  get pending(): boolean {
    return this.count > 0;
  }

  /** Queues a condition once; when full, the oldest non-reset entry makes room. */
  push(ascAscq: number): void {
    for (let i = 0; i < this.count; i++) if (this.codes[i] === ascAscq) return;
    if (this.count === CAPACITY) {
      const drop = this.codes[0] === SCSI_ASC_POWER_ON_RESET ? 1 : 0;
      this.codes.copyWithin(drop, drop + 1, CAPACITY);
      this.count--;
    }
    this.codes[this.count++] = ascAscq;
  }

  /** Power on / reset: clears every other condition (SAM-5: it reports the reset only). */
  reset(): void {
    this.codes[0] = SCSI_ASC_POWER_ON_RESET;
    this.count = 1;
  }

  /** Removes and returns the oldest condition, or -1. */
  shift(): number {
    if (this.count === 0) return -1;
    const c = this.codes[0];
    this.codes.copyWithin(0, 1, this.count);
    this.count--;
    return c;
  }

  clear(): void {
    this.count = 0;
  }
}
