// A disk logical unit over one BdevChannel: decodes CDBs (SPC-4/SBC-3), answers the synchronous
// ones from preallocated buffers, and runs bdev I/O through per-task contexts. It tracks every task
// holding a context (the task set) for ABORT TASK, ABORT TASK SET, QUERY TASK and LOGICAL UNIT
// RESET, and keeps the unit attention conditions. Lives on one reactor thread; nothing here is
// allocated per READ/WRITE. COMPARE AND WRITE is atomic against writes of the LUN's instances in
// other reactors through the shared range lock table (range-lock-table.ts): writes overlapping a
// lock are parked and retried from poll(), which also acknowledges the other instances' locks.
import type { BdevChannel } from '../bdev/bdev.ts';
import { BDEV_EINVAL, BDEV_ENOMEM, BDEV_ENOSPC, BDEV_ENOTSUP, BDEV_EROFS } from '../bdev/bdev.ts';
import { SgList } from '../iovec/sg-list.ts';
import type { ScsiTask } from './scsi-task.ts';
import type { ScsiLunInfo } from './scsi-lun-info.ts';
import { validateScsiLunInfo } from './scsi-lun-info.ts';
import { ScsiConfigError } from './scsi-errors.ts';
import * as C from './scsi-constants.ts';
import { fieldPointer, SENSE_NONE, setCheckCondition } from './sense.ts';
import { UnitAttentionQueue } from './unit-attention.ts';
import { LunSharedState } from './lun-shared-state.ts';
import { RANGE_LOCK_BUSY, RANGE_LOCK_TAKEN, type RangeLockHolder, type RangeLockTable } from './range-lock-table.ts';
import { asciiField, naaFromUuid, serialFromUuid, t10VendorIdFromUuid } from './identification.ts';
import {
  IO_OP_COMPARE_AND_WRITE,
  IO_OP_FLUSH,
  IO_OP_READ,
  IO_OP_UNMAP,
  IO_OP_VERIFY,
  IO_OP_WRITE,
  IO_OP_WRITE_SAME,
  IO_OP_WRITE_SAME_UNMAP,
  IO_STATE_DEFERRED,
  IO_STATE_LOCKING,
  IO_STATE_RUNNING,
  ScsiIoContext,
  ScsiIoPool,
  ScsiTaskSet,
} from './scsi-io-context.ts';
import type { ScsiIoOwner } from './scsi-io-context.ts';
import { PendingTmf } from './task-management.ts';
import type { ScsiTmfWaiter } from './task-management.ts';
import { handleReadWrite, issueReadWrite } from './read-write.ts';
import { handleFlush, issueFlush } from './sync-cache.ts';
import { handleUnmap, issueUnmap } from './unmap.ts';
import { handleWriteSame, issueWriteSame } from './write-same.ts';
import { handleCompareAndWrite, issueCompareAndWrite } from './compare-and-write.ts';
import { handleVerify, issueVerify } from './verify.ts';
import { buildReportLunsData } from './report-luns.ts';
import { dispatchCommand } from './command-dispatch.ts';

/** Response scratch: the largest synchronous answer (REPORT SUPPORTED OPERATION CODES with timeouts) fits. */
const RESPONSE_BYTES = 1024;
const INITIAL_CONTEXTS = 32;
const MAX_CONTEXTS = 4096;
const MAX_COMPARE_AND_WRITE_BLOCKS = 255;

function isWriteOp(op: number): boolean {
  return op === IO_OP_WRITE || op === IO_OP_UNMAP || op === IO_OP_WRITE_SAME || op === IO_OP_WRITE_SAME_UNMAP || op === IO_OP_COMPARE_AND_WRITE;
}

function overlaps(a: ScsiIoContext, b: ScsiIoContext): boolean {
  return a.lba < b.lba + b.blocks && b.lba < a.lba + a.blocks;
}

export class ScsiLun implements ScsiIoOwner, RangeLockHolder {
  readonly id: number;
  readonly info: ScsiLunInfo;
  readonly channel: BdevChannel;
  readonly blockSize: number;
  numBlocks: number;
  readonly peripheral = C.SCSI_PERIPHERAL_DEVICE_TYPE_DISK;

  /** Unit attentions and mode parameters, shared with this LUN's instances in other reactors. */
  readonly shared: LunSharedState;
  readonly unitAttention: UnitAttentionQueue;

  /** REPORT LUNS parameter data; the target replaces it when its LUN set changes. */
  reportLunsData: Uint8Array;

  // Preallocated buffers. resp and param are used only synchronously inside one call.
  readonly resp = new Uint8Array(RESPONSE_BYTES);
  readonly param = new Uint8Array(C.SCSI_MAX_MODE_SELECT_LENGTH);
  /** Shared by WRITE SAME, VERIFY and COMPARE AND WRITE; one user at a time (exclusiveOwner). */
  readonly scratch: Uint8Array;
  readonly scratchSg: SgList;
  readonly scratchBlocks: number;
  readonly cawMaxBlocks: number;

  // Identification, fixed per bdev UUID.
  readonly product: Uint8Array;
  readonly serial: Uint8Array;
  readonly naa: Uint8Array;
  readonly t10VendorId: Uint8Array;

  private readonly pool: ScsiIoPool;
  private readonly tasks = new ScsiTaskSet();
  private exclusiveOwner: ScsiIoContext | null = null;
  private deferredCount = 0;
  /** This instance's handle on the LUN's range locks (shared with the other reactors). */
  private readonly locks: RangeLockTable;
  /** locks.releases when the deferred tasks were last retried from poll(). */
  private seenReleases = 0;
  /** A COMPARE AND WRITE found the lock table busy: retry at the next poll(). */
  private lockRetry = false;
  private draining = false;
  private drainAgain = false;
  private readonly pendingTmfs: PendingTmf[] = [];

  /** `sharedState`: see LunSharedState; omitted, the state is this instance's own. */
  constructor(id: number, info: ScsiLunInfo, channel: BdevChannel, sharedState?: SharedArrayBuffer) {
    if (!Number.isInteger(id) || id < 0 || id > C.SCSI_MAX_LUN_ID) {
      throw new ScsiConfigError('SCSI_BAD_LUN_ID', `LUN id must be an integer 0..${C.SCSI_MAX_LUN_ID}, got ${String(id)}`);
    }
    validateScsiLunInfo(info);
    const bs = channel.blockSize;
    if (!Number.isInteger(bs) || bs < 512 || bs > 65536 || (bs & (bs - 1)) !== 0) {
      throw new ScsiConfigError('SCSI_BAD_BLOCK_SIZE', `bdev ${info.bdevName}: block size ${bs} is not a power of two in 512..65536`);
    }
    if (!Number.isSafeInteger(channel.numBlocks) || channel.numBlocks < 0) {
      throw new ScsiConfigError('SCSI_BAD_NUM_BLOCKS', `bdev ${info.bdevName}: block count ${channel.numBlocks} is not a non-negative integer`);
    }
    this.id = id;
    this.info = info;
    this.channel = channel;
    this.blockSize = bs;
    this.numBlocks = channel.numBlocks;
    this.shared = new LunSharedState(sharedState);
    this.unitAttention = new UnitAttentionQueue(this.shared.words);
    this.reportLunsData = buildReportLunsData([id]);

    this.scratchBlocks = Math.floor(Math.max(C.SCSI_SCRATCH_BYTES, bs) / bs);
    this.scratch = new Uint8Array(this.scratchBlocks * bs);
    this.scratchSg = new SgList(1);
    this.scratchSg.push(this.scratch, 0, this.scratch.length);
    this.cawMaxBlocks = Math.min(MAX_COMPARE_AND_WRITE_BLOCKS, this.scratchBlocks);

    this.product = asciiField(info.productName, 16);
    this.serial = serialFromUuid(info.uuid);
    this.naa = naaFromUuid(info.uuid);
    this.t10VendorId = t10VendorIdFromUuid(info.uuid);

    this.pool = new ScsiIoPool(this, INITIAL_CONTEXTS, MAX_CONTEXTS);
    this.locks = this.shared.rangeLocks;
    if (!this.locks.join()) {
      throw new ScsiConfigError('SCSI_LUN_INSTANCES', `LUN ${id} of bdev ${info.bdevName}: its shared state has room for ${this.locks.instances} instances, all taken`);
    }
    // Power on, once per LUN: a later instance in another reactor must not report it again.
    if (this.shared.claimInit()) {
      this.shared.wce = info.writeCache;
      this.unitAttention.reset();
    }
  }

  /** The LUN leaves this reactor: its range lock (if any) goes and the other instances stop waiting for it; the channel closes. */
  close(): void {
    this.locks.leave();
    this.channel.close();
  }

  /** The reactor sleeps with nothing in flight (true) or woke (false): see RangeLockTable.setAsleep. */
  setAsleep(asleep: boolean): void {
    this.locks.setAsleep(asleep);
  }

  // Mode parameters (current values), in the shared state.
  get wce(): boolean {
    return this.shared.wce;
  }

  set wce(v: boolean) {
    this.shared.wce = v;
  }

  get dSense(): boolean {
    return this.shared.dSense;
  }

  set dSense(v: boolean) {
    this.shared.dSense = v;
  }

  /** WCE cleared on a bdev with a volatile cache: every write is followed by a flush. */
  get writeThrough(): boolean {
    return this.info.writeCache && !this.wce;
  }

  /** Tasks holding a context (in flight or deferred). */
  get activeTasks(): number {
    return this.tasks.size;
  }

  /**
   * Reaps the channel's asynchronous completions; returns how many completed. While some instance
   * holds a range lock, also acknowledges the others' locks, moves this one's COMPARE AND WRITE on
   * once its lock is granted, and retries tasks parked behind a lock that went.
   */
  poll(): number {
    const n = this.channel.poll();
    if (this.locks.active) {
      this.locks.acknowledge(this);
      const owner = this.exclusiveOwner;
      if (owner !== null && owner.state === IO_STATE_LOCKING) this.awaitGrant(owner);
    }
    if (this.deferredCount > 0) this.retryParked();
    return n;
  }

  /** A write of this instance overlapping the range is at the bdev (a COMPARE AND WRITE's own lock excludes the others'). */
  writeInFlight(lba: number, blocks: number): boolean {
    for (let c = this.tasks.head; c !== null; c = c.next) {
      if (c.state === IO_STATE_RUNNING && c.op !== IO_OP_COMPARE_AND_WRITE && isWriteOp(c.op) && c.lba < lba + blocks && lba < c.lba + c.blocks) return true;
    }
    return false;
  }

  /** The bdev's capacity changed: apply it and report CAPACITY DATA HAS CHANGED once. */
  resized(numBlocks: number): void {
    if (!Number.isSafeInteger(numBlocks) || numBlocks < 0) {
      throw new ScsiConfigError('SCSI_BAD_NUM_BLOCKS', `LUN ${this.id}: new block count ${numBlocks} is not a non-negative integer`);
    }
    if (this.channel.numBlocks !== numBlocks) this.channel.resize(numBlocks);
    if (numBlocks === this.numBlocks) return;
    this.numBlocks = numBlocks;
    this.unitAttention.push(C.SCSI_ASC_CAPACITY_DATA_HAS_CHANGED);
  }

  /** Runs one command; task.waiter.scsiTaskDone(task) is called exactly once, possibly before this returns. */
  execute(task: ScsiTask): void {
    task.resetResult();
    if (dispatchCommand(this, task)) this.complete(task);
  }

  // ---- results used by the command modules ----

  checkCondition(task: ScsiTask, key: number, ascAscq: number, sks: number): void {
    setCheckCondition(task, this.dSense, key, ascAscq, SENSE_NONE, sks);
  }

  checkConditionInfo(task: ScsiTask, key: number, ascAscq: number, info: number, sks: number): void {
    setCheckCondition(task, this.dSense, key, ascAscq, info, sks);
  }

  /** ILLEGAL REQUEST, INVALID FIELD IN CDB pointing at byte (and bit, -1 for none). */
  invalidCdb(task: ScsiTask, byte: number, bit: number): void {
    setCheckCondition(task, this.dSense, C.SCSI_SENSE_ILLEGAL_REQUEST, C.SCSI_ASC_INVALID_FIELD_IN_CDB, SENSE_NONE, fieldPointer(true, byte, bit));
  }

  /** ILLEGAL REQUEST, INVALID FIELD IN PARAMETER LIST pointing at a byte of the list. */
  invalidParam(task: ScsiTask, byte: number, bit: number): void {
    setCheckCondition(task, this.dSense, C.SCSI_SENSE_ILLEGAL_REQUEST, C.SCSI_ASC_INVALID_FIELD_IN_PARAMETER_LIST, SENSE_NONE, fieldPointer(false, byte, bit));
  }

  writeProtected(task: ScsiTask): void {
    setCheckCondition(task, this.dSense, C.SCSI_SENSE_DATA_PROTECT, C.SCSI_ASC_WRITE_PROTECTED, SENSE_NONE, SENSE_NONE);
  }

  lbaOutOfRange(task: ScsiTask): void {
    setCheckCondition(task, this.dSense, C.SCSI_SENSE_ILLEGAL_REQUEST, C.SCSI_ASC_LBA_OUT_OF_RANGE, SENSE_NONE, SENSE_NONE);
  }

  /** True when [lba, lba + blocks) is not inside the medium (an LBA past the end even for 0 blocks). */
  outOfRange(lba: number, blocks: number): boolean {
    return lba >= this.numBlocks || blocks > this.numBlocks - lba;
  }

  /** Maps a failed bdev I/O (negative errno) to status and sense. */
  ioError(task: ScsiTask, status: number, reading: boolean): void {
    switch (status) {
      case BDEV_EINVAL:
        return this.lbaOutOfRange(task);
      case BDEV_EROFS:
        return this.writeProtected(task);
      case BDEV_ENOSPC:
        return this.checkCondition(task, C.SCSI_SENSE_DATA_PROTECT, C.SCSI_ASC_SPACE_ALLOCATION_FAILED_WRITE_PROTECT, SENSE_NONE);
      case BDEV_ENOMEM:
        task.status = C.SCSI_STATUS_BUSY; // transient: the initiator retries
        task.senseLength = 0;
        task.transferred = 0;
        return;
      case BDEV_ENOTSUP:
        return this.checkCondition(task, C.SCSI_SENSE_ILLEGAL_REQUEST, C.SCSI_ASC_INVALID_COMMAND_OPERATION_CODE, SENSE_NONE);
      default:
        return this.checkCondition(
          task,
          C.SCSI_SENSE_MEDIUM_ERROR,
          reading ? C.SCSI_ASC_UNRECOVERED_READ_ERROR : C.SCSI_ASC_WRITE_ERROR,
          SENSE_NONE,
        );
    }
  }

  // ---- the I/O engine ----

  /** A context for a task that will run bdev I/O, or null (status TASK SET FULL set). */
  newIo(task: ScsiTask, op: number): ScsiIoContext | null {
    const ctx = this.pool.acquire();
    if (ctx === null) {
      task.status = C.SCSI_STATUS_TASK_SET_FULL;
      return null;
    }
    ctx.task = task;
    ctx.op = op;
    ctx.phase = 0;
    ctx.lba = 0;
    ctx.blocks = 0;
    ctx.pos = 0;
    ctx.count = 0;
    ctx.mode = 0;
    ctx.fua = false;
    return ctx;
  }

  /** Enters the task set and runs now, or waits for a conflicting command to finish. */
  startIo(ctx: ScsiIoContext): void {
    this.tasks.append(ctx);
    if (this.canStart(ctx)) {
      this.start(ctx);
    } else {
      ctx.state = IO_STATE_DEFERRED;
      this.deferredCount++;
    }
  }

  /** Completion arriving after the submitting call returned (bdev poll or another thread's doorbell). */
  ioDone(ctx: ScsiIoContext, status: number): void {
    if (ctx.state !== IO_STATE_RUNNING) return; // stray completion of a finished context
    if (this.step(ctx, status)) this.run(ctx);
  }

  /** True when ctx may start now; for COMPARE AND WRITE that takes its range lock. */
  private canStart(ctx: ScsiIoContext): boolean {
    const op = ctx.op;
    if (op === IO_OP_READ || op === IO_OP_FLUSH) return true;
    const owner = this.exclusiveOwner;
    if (op === IO_OP_VERIFY) return owner === null;
    if (op === IO_OP_WRITE_SAME) return owner === null && this.unlocked(ctx);
    if (op === IO_OP_COMPARE_AND_WRITE) {
      if (owner !== null) return false;
      for (let c = this.tasks.head; c !== null; c = c.next) {
        if (c.state === IO_STATE_RUNNING && isWriteOp(c.op) && overlaps(c, ctx)) return false;
      }
      const r = this.locks.tryLock(ctx.lba, ctx.blocks);
      if (r === RANGE_LOCK_BUSY) this.lockRetry = true;
      return r === RANGE_LOCK_TAKEN;
    }
    // Other writes wait only for an overlapping COMPARE AND WRITE, here or in another reactor.
    if (owner !== null && owner.op === IO_OP_COMPARE_AND_WRITE && overlaps(owner, ctx)) return false;
    return this.unlocked(ctx);
  }

  /** No range lock of any instance covers the write (one Atomics.load while there is none). */
  private unlocked(ctx: ScsiIoContext): boolean {
    return !this.locks.active || !this.locks.blocked(ctx.lba, ctx.blocks);
  }

  private start(ctx: ScsiIoContext): void {
    const op = ctx.op;
    if (op === IO_OP_WRITE_SAME || op === IO_OP_VERIFY || op === IO_OP_COMPARE_AND_WRITE) this.exclusiveOwner = ctx;
    // A COMPARE AND WRITE holds its lock from here; it reads once the other reactors let it go.
    if (op === IO_OP_COMPARE_AND_WRITE && !this.locks.granted()) {
      ctx.state = IO_STATE_LOCKING;
      return;
    }
    ctx.state = IO_STATE_RUNNING;
    this.run(ctx);
  }

  private awaitGrant(ctx: ScsiIoContext): void {
    if (ctx.task!.aborted) return this.finish(ctx);
    if (!this.locks.granted()) return;
    ctx.state = IO_STATE_RUNNING;
    this.run(ctx);
  }

  /**
   * Issues steps until one completes asynchronously or the command finishes. Completions that
   * arrive inside the submitting call are handled by this loop, so a long chain of synchronous
   * steps (WRITE SAME chunks on a RAM bdev) does not recurse.
   */
  private run(ctx: ScsiIoContext): void {
    for (;;) {
      if (ctx.task!.aborted) return this.finish(ctx);
      ctx.submitting = true;
      ctx.inlineDone = false;
      const submitted = this.issue(ctx);
      ctx.submitting = false;
      if (!submitted) return this.finish(ctx);
      if (!ctx.inlineDone) return;
      if (!this.step(ctx, ctx.inlineStatus)) return;
    }
  }

  /** Handles one completion; true when the next step should be issued. */
  private step(ctx: ScsiIoContext, status: number): boolean {
    if (ctx.task!.aborted || !this.handle(ctx, status)) {
      this.finish(ctx);
      return false;
    }
    return true;
  }

  private issue(ctx: ScsiIoContext): boolean {
    switch (ctx.op) {
      case IO_OP_READ:
      case IO_OP_WRITE:
        return issueReadWrite(this, ctx);
      case IO_OP_FLUSH:
        return issueFlush(this, ctx);
      case IO_OP_UNMAP:
        return issueUnmap(this, ctx);
      case IO_OP_WRITE_SAME:
      case IO_OP_WRITE_SAME_UNMAP:
        return issueWriteSame(this, ctx);
      case IO_OP_COMPARE_AND_WRITE:
        return issueCompareAndWrite(this, ctx);
      default:
        return issueVerify(this, ctx);
    }
  }

  private handle(ctx: ScsiIoContext, status: number): boolean {
    switch (ctx.op) {
      case IO_OP_READ:
      case IO_OP_WRITE:
        return handleReadWrite(this, ctx, status);
      case IO_OP_FLUSH:
        return handleFlush(this, ctx, status);
      case IO_OP_UNMAP:
        return handleUnmap(this, ctx, status);
      case IO_OP_WRITE_SAME:
      case IO_OP_WRITE_SAME_UNMAP:
        return handleWriteSame(this, ctx, status);
      case IO_OP_COMPARE_AND_WRITE:
        return handleCompareAndWrite(this, ctx, status);
      default:
        return handleVerify(this, ctx, status);
    }
  }

  /** Leaves the task set, frees the context, completes the task, then lets waiters move on. */
  private finish(ctx: ScsiIoContext): void {
    const task = ctx.task!;
    if (ctx.state === IO_STATE_DEFERRED) this.deferredCount--;
    if (this.exclusiveOwner === ctx) {
      this.exclusiveOwner = null;
      if (ctx.op === IO_OP_COMPARE_AND_WRITE) this.locks.unlock();
    }
    this.tasks.remove(ctx);
    this.pool.release(ctx);
    this.complete(task);
    if (this.pendingTmfs.length > 0) this.settlePendingTmfs();
    if (this.deferredCount > 0) this.drainDeferred();
  }

  private drainDeferred(): void {
    if (this.draining) {
      this.drainAgain = true;
      return;
    }
    this.draining = true;
    do {
      this.drainAgain = false;
      for (let c = this.tasks.head; c !== null; c = c.next) {
        if (c.state === IO_STATE_DEFERRED && this.canStart(c)) {
          this.deferredCount--;
          this.start(c); // may finish tasks and change the list: rescan from the head
          this.drainAgain = true;
          break;
        }
      }
    } while (this.drainAgain && this.deferredCount > 0);
    this.draining = false;
  }

  /** Deferred tasks that may wait for another reactor's lock: retried when a lock went (or the table was busy). */
  private retryParked(): void {
    const releases = this.locks.releases;
    if (releases === this.seenReleases && !this.lockRetry) return;
    this.seenReleases = releases;
    this.lockRetry = false;
    this.drainDeferred();
  }

  private complete(task: ScsiTask): void {
    const waiter = task.waiter;
    if (waiter !== null) waiter.scsiTaskDone(task);
  }

  // ---- task management ----

  /** ABORT TASK: every task with this tag completes with task.aborted = true, then the TMF. */
  abortTask(tagLo: number, tagHi: number, waiter: ScsiTmfWaiter): void {
    this.abort(true, tagLo, tagHi, new PendingTmf(waiter, C.SCSI_TMF_FUNCTION_COMPLETE));
  }

  /** ABORT TASK SET / CLEAR TASK SET: aborts every task of the LUN. */
  abortTaskSet(waiter: ScsiTmfWaiter): void {
    this.abort(false, 0, 0, new PendingTmf(waiter, C.SCSI_TMF_FUNCTION_COMPLETE));
  }

  /**
   * LOGICAL UNIT RESET: aborts every task, restores the default mode parameters and raises the
   * POWER ON/RESET unit attention; completes once in-flight bdev I/O has finished.
   */
  lunReset(waiter: ScsiTmfWaiter): void {
    this.unitAttention.reset();
    this.wce = this.info.writeCache;
    this.dSense = false;
    this.abort(false, 0, 0, new PendingTmf(waiter, C.SCSI_TMF_FUNCTION_COMPLETE));
  }

  /** I_T NEXUS RESET (the initiator's nexus is gone): aborts every task, queues I_T NEXUS LOSS OCCURRED. */
  nexusLoss(waiter: ScsiTmfWaiter): void {
    this.unitAttention.push(C.SCSI_ASC_I_T_NEXUS_LOSS_OCCURRED);
    this.abort(false, 0, 0, new PendingTmf(waiter, C.SCSI_TMF_FUNCTION_COMPLETE));
  }

  /** QUERY TASK: FUNCTION SUCCEEDED when a task with this tag is in the task set (synchronous). */
  queryTask(tagLo: number, tagHi: number, waiter: ScsiTmfWaiter): void {
    for (let c = this.tasks.head; c !== null; c = c.next) {
      const t = c.task!;
      if (t.tagLo === tagLo && t.tagHi === tagHi && !t.aborted) return waiter.scsiTmfDone(C.SCSI_TMF_FUNCTION_SUCCEEDED);
    }
    waiter.scsiTmfDone(C.SCSI_TMF_FUNCTION_COMPLETE);
  }

  /** QUERY TASK SET: FUNCTION SUCCEEDED when any task is in the task set (synchronous). */
  queryTaskSet(waiter: ScsiTmfWaiter): void {
    for (let c = this.tasks.head; c !== null; c = c.next) {
      if (!c.task!.aborted) return waiter.scsiTmfDone(C.SCSI_TMF_FUNCTION_SUCCEEDED);
    }
    waiter.scsiTmfDone(C.SCSI_TMF_FUNCTION_COMPLETE);
  }

  private abort(byTag: boolean, tagLo: number, tagHi: number, tmf: PendingTmf): void {
    // First mark, with no callbacks, so list changes made by completion callbacks cannot hide a task.
    for (let c = this.tasks.head; c !== null; c = c.next) {
      const t = c.task!;
      if (byTag && (t.tagLo !== tagLo || t.tagHi !== tagHi)) continue;
      t.aborted = true;
      tmf.waitFor(c);
    }
    // Deferred tasks and a COMPARE AND WRITE waiting for its lock never reached the bdev: finish
    // them now. Running ones finish when their bdev call completes (the engine stops at the next step).
    for (;;) {
      let c = this.tasks.head;
      while (c !== null && !((c.state === IO_STATE_DEFERRED || c.state === IO_STATE_LOCKING) && c.task!.aborted)) c = c.next;
      if (c === null) break;
      this.finish(c);
    }
    if (tmf.finished) tmf.waiter.scsiTmfDone(tmf.response);
    else this.pendingTmfs.push(tmf);
  }

  private settlePendingTmfs(): void {
    for (let i = 0; i < this.pendingTmfs.length; ) {
      const tmf = this.pendingTmfs[i];
      if (tmf.finished) {
        this.pendingTmfs.splice(i, 1);
        tmf.waiter.scsiTmfDone(tmf.response);
      } else {
        i++;
      }
    }
  }
}
