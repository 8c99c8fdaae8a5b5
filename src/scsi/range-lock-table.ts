// LBA range locks of one LUN across the reactors that hold an instance of it (SPDK's bdev LBA range
// locks across channels): COMPARE AND WRITE takes one so that no write from any reactor lands
// between its read, its compare and its write. Lives in the LUN's shared memory; each instance
// (one per reactor) has a row: alive, asleep, its lock (ticket and range), and its acknowledgements
// of the other instances' locks. An instance runs one COMPARE AND WRITE at a time (the scratch
// buffer), so one lock per row is all it needs and the table is never full.
//
// A lock is granted once every other live instance has acknowledged it (no overlapping write of
// its own is in flight; polled every loop turn while any lock exists) or is asleep (a reactor that
// sleeps has nothing in flight and starts nothing before it wakes). A write asks `active` first,
// one Atomics.load, and looks at the rows only when some lock exists; an overlapping write then
// waits (parked and retried by its reactor, never blocking it). Nobody waits on a thread: the
// table's mutex is taken only with a try (COMPARE AND WRITE retries later when it is busy).
//
// Order of publication: ACTIVE rises before a ticket appears and falls after it went, so a writer
// that ever saw a lock (and acknowledged it) sees ACTIVE != 0 for as long as the lock exists.
import { ScsiConfigError } from './scsi-errors.ts';

const MUTEX = 0;
/** Locks that exist (taken, granted or not). */
const ACTIVE = 1;
/** Bumped on every unlock: parked writes and conflicting COMPARE AND WRITEs retry when it moves. */
const RELEASES = 2;
const SEQ = 3;
const HEADER = 4;

// Row of one instance.
const ALIVE = 0;
const ASLEEP = 1;
/** 0: no lock; else the lock's ticket (unique per lock taken, so a late acknowledgement of an older lock in the row never counts). */
const TICKET = 2;
const LBA_HI = 3;
const LBA_LO = 4;
const BLOCKS = 5;
/** ACK + e: the ticket of instance e's lock that this instance acknowledged. */
const ACK = 6;

const TWO_32 = 4294967296;

export const RANGE_LOCK_TAKEN = 0;
/** Another instance is changing the table: try again on a later loop turn. */
export const RANGE_LOCK_BUSY = 1;
/** An overlapping lock exists: try again once a lock was released (`releases` moved). */
export const RANGE_LOCK_CONFLICT = 2;

/** Upper bound of instances (reactors) per LUN: the cpumask's. */
export const RANGE_LOCK_MAX_INSTANCES = 1024;

/** What the table asks of an instance before acknowledging another's lock. */
export interface RangeLockHolder {
  /** A write of this instance overlapping [lba, lba + blocks) is at the bdev. */
  writeInFlight(lba: number, blocks: number): boolean;
}

/** Int32 words of a table for `instances` instances. */
export function rangeLockTableWords(instances: number): number {
  if (!Number.isInteger(instances) || instances < 1 || instances > RANGE_LOCK_MAX_INSTANCES) {
    throw new ScsiConfigError('SCSI_BAD_LUN_STATE', `range lock table: instances must be an integer 1..${RANGE_LOCK_MAX_INSTANCES}, got ${String(instances)}`);
  }
  return HEADER + instances * (ACK + instances);
}

/** One instance's handle on the table (join first). */
export class RangeLockTable {
  readonly instances: number;
  private readonly w: Int32Array;
  private readonly stride: number;
  /** This instance's row offset; -1 before join and after leave. */
  private row = -1;
  private self = -1;

  constructor(words: Int32Array, instances: number) {
    if (words.length !== rangeLockTableWords(instances)) {
      throw new ScsiConfigError('SCSI_BAD_LUN_STATE', `range lock table: ${words.length} words for ${instances} instances`);
    }
    this.w = words;
    this.instances = instances;
    this.stride = ACK + instances;
  }

  /** Claims a free row; false when every row is taken. */
  join(): boolean {
    if (this.self >= 0) return true;
    const w = this.w;
    for (let i = 0; i < this.instances; i++) {
      const r = HEADER + i * this.stride;
      if (Atomics.compareExchange(w, r + ALIVE, 0, 1) !== 0) continue;
      // A previous owner's acknowledgements may still match a live lock for a moment: harmless,
      // a new instance has no write in flight and checks the table before its first one.
      for (let e = 0; e < this.instances; e++) Atomics.store(w, r + ACK + e, 0);
      Atomics.store(w, r + ASLEEP, 0);
      this.self = i;
      this.row = r;
      return true;
    }
    return false;
  }

  /** The instance is gone (LUN closed): its lock goes, and nobody waits for its acknowledgement. */
  leave(): void {
    if (this.self < 0) return;
    this.unlock();
    Atomics.store(this.w, this.row + ASLEEP, 0);
    Atomics.store(this.w, this.row + ALIVE, 0);
    this.self = -1;
    this.row = -1;
  }

  /** Some lock exists on the LUN (the write path's one load). */
  get active(): boolean {
    return Atomics.load(this.w, ACTIVE) !== 0;
  }

  /** Moves on every unlock. */
  get releases(): number {
    return Atomics.load(this.w, RELEASES);
  }

  /** This instance holds a lock (granted or not). */
  get held(): boolean {
    return this.row >= 0 && Atomics.load(this.w, this.row + TICKET) !== 0;
  }

  /** A write to [lba, lba + blocks) must wait: a lock overlaps it. */
  blocked(lba: number, blocks: number): boolean {
    const w = this.w;
    for (let r = HEADER, i = 0; i < this.instances; i++, r += this.stride) {
      if (Atomics.load(w, r + TICKET) !== 0 && this.overlaps(r, lba, blocks)) return true;
    }
    return false;
  }

  /** Takes a lock on [lba, lba + blocks) (not granted yet: see granted()). Joined, and one at a time per instance. */
  tryLock(lba: number, blocks: number): number {
    const w = this.w;
    const own = this.row;
    if (own < 0) return RANGE_LOCK_CONFLICT; // left the table: nothing may start
    if (Atomics.compareExchange(w, MUTEX, 0, 1) !== 0) return RANGE_LOCK_BUSY;
    for (let r = HEADER, i = 0; i < this.instances; i++, r += this.stride) {
      if (r !== own && Atomics.load(w, r + TICKET) !== 0 && this.overlaps(r, lba, blocks)) {
        Atomics.store(w, MUTEX, 0);
        return RANGE_LOCK_CONFLICT;
      }
    }
    Atomics.store(w, own + LBA_HI, Math.floor(lba / TWO_32));
    Atomics.store(w, own + LBA_LO, lba % TWO_32 | 0);
    Atomics.store(w, own + BLOCKS, blocks);
    Atomics.add(w, ACTIVE, 1);
    const ticket = (Atomics.add(w, SEQ, 1) + 1) & 0x7fffffff;
    Atomics.store(w, own + TICKET, ticket === 0 ? 1 : ticket);
    Atomics.store(w, MUTEX, 0);
    return RANGE_LOCK_TAKEN;
  }

  /** Every other live instance acknowledged this instance's lock or sleeps: no overlapping write can be in flight. */
  granted(): boolean {
    const w = this.w;
    const ticket = Atomics.load(w, this.row + TICKET);
    const ack = ACK + this.self;
    for (let r = HEADER, i = 0; i < this.instances; i++, r += this.stride) {
      if (r === this.row || Atomics.load(w, r + ALIVE) === 0) continue;
      if (Atomics.load(w, r + ack) !== ticket && Atomics.load(w, r + ASLEEP) === 0) return false;
    }
    return true;
  }

  /** Releases this instance's lock (nothing when it holds none). */
  unlock(): void {
    if (!this.held) return;
    const w = this.w;
    Atomics.store(w, this.row + TICKET, 0);
    Atomics.sub(w, ACTIVE, 1);
    Atomics.add(w, RELEASES, 1);
  }

  /** Acknowledges the other instances' locks that no write of `holder` in flight overlaps (once per loop turn while `active`). */
  acknowledge(holder: RangeLockHolder): void {
    const w = this.w;
    const acks = this.row + ACK;
    for (let r = HEADER, e = 0; e < this.instances; e++, r += this.stride) {
      if (r === this.row) continue;
      const ticket = Atomics.load(w, r + TICKET);
      if (ticket === 0 || Atomics.load(w, acks + e) === ticket) continue;
      const lba = this.lbaOf(r);
      const blocks = Atomics.load(w, r + BLOCKS);
      if (Atomics.load(w, r + TICKET) !== ticket) continue; // re-taken meanwhile: the range read may be torn
      if (!holder.writeInFlight(lba, blocks)) Atomics.store(w, acks + e, ticket);
    }
  }

  /** The instance's reactor goes to sleep with nothing in flight (true), or woke and may start I/O (false). */
  setAsleep(asleep: boolean): void {
    if (this.row >= 0) Atomics.store(this.w, this.row + ASLEEP, asleep ? 1 : 0);
  }

  private lbaOf(r: number): number {
    return Atomics.load(this.w, r + LBA_HI) * TWO_32 + (Atomics.load(this.w, r + LBA_LO) >>> 0);
  }

  private overlaps(r: number, lba: number, blocks: number): boolean {
    const start = this.lbaOf(r);
    return start < lba + blocks && lba < start + Atomics.load(this.w, r + BLOCKS);
  }
}
