// COMPARE AND WRITE (SBC-3 5.2): read the range into the LUN's scratch buffer, compare it with
// the first half of the data-out buffer, and on a match write the second half. Atomic per LUN
// range, across every queue: the engine takes the range lock of the LUN's shared state and runs it
// only when no overlapping write is in flight on any reactor, and holds back overlapping writes
// (on every reactor) until it finishes.
import type { ScsiTask } from './scsi-task.ts';
import type { ScsiLun } from './scsi-lun.ts';
import type { ScsiIoContext } from './scsi-io-context.ts';
import { IO_OP_COMPARE_AND_WRITE } from './scsi-io-context.ts';
import { be64 } from './cdb.ts';
import { dataOutWindow } from './data-transfer.ts';
import { sgCompare } from './sg-compare.ts';
import { SENSE_NONE } from './sense.ts';
import { SCSI_ASC_MISCOMPARE_DURING_VERIFY, SCSI_SENSE_MISCOMPARE, SCSI_STATUS_GOOD } from './scsi-constants.ts';

const WRPROTECT_MASK = 0xe0;
const FUA = 0x08;

const PHASE_READ = 0;
const PHASE_COMPARE = 1;
const PHASE_WRITE = 2;
const PHASE_FLUSH = 3;
const PHASE_DONE = 4;

/** Returns true when the task completed synchronously. */
export function executeCompareAndWrite(lun: ScsiLun, task: ScsiTask): boolean {
  const cdb = task.cdb;
  if (cdb[1] & WRPROTECT_MASK) {
    lun.invalidCdb(task, 1, 7);
    return true;
  }
  const lba = be64(cdb, 2);
  const blocks = cdb[13];
  if (lun.info.readOnly) {
    lun.writeProtected(task);
    return true;
  }
  if (blocks > lun.cawMaxBlocks) {
    lun.invalidCdb(task, 13, -1);
    return true;
  }
  if (lun.outOfRange(lba, blocks)) {
    lun.lbaOutOfRange(task);
    return true;
  }
  if (blocks === 0) {
    task.status = SCSI_STATUS_GOOD;
    return true;
  }
  if (dataOutWindow(task) < 2 * blocks * lun.blockSize) {
    lun.invalidCdb(task, 13, -1);
    return true;
  }
  const ctx = lun.newIo(task, IO_OP_COMPARE_AND_WRITE);
  if (ctx === null) return true;
  ctx.lba = lba;
  ctx.blocks = blocks;
  ctx.fua = (cdb[1] & FUA) !== 0 || lun.writeThrough;
  lun.startIo(ctx);
  return false;
}

export function issueCompareAndWrite(lun: ScsiLun, ctx: ScsiIoContext): boolean {
  const task = ctx.task!;
  const bytes = ctx.blocks * lun.blockSize;
  switch (ctx.phase) {
    case PHASE_READ:
      lun.channel.read(ctx.lba, ctx.blocks, lun.scratchSg, 0, ctx);
      return true;
    case PHASE_COMPARE: {
      const at = sgCompare(task.dataOut!, task.dataOutOffset, lun.scratch, 0, bytes);
      if (at >= 0) {
        // INFORMATION: offset of the first differing byte in the data-out buffer.
        lun.checkConditionInfo(task, SCSI_SENSE_MISCOMPARE, SCSI_ASC_MISCOMPARE_DURING_VERIFY, at, SENSE_NONE);
        return false;
      }
      ctx.phase = PHASE_WRITE;
      lun.channel.write(ctx.lba, ctx.blocks, task.dataOut!, task.dataOutOffset + bytes, ctx);
      return true;
    }
    case PHASE_FLUSH:
      lun.channel.flush(ctx.lba, ctx.blocks, ctx);
      return true;
    default:
      task.status = SCSI_STATUS_GOOD;
      task.transferred = 2 * bytes;
      return false;
  }
}

export function handleCompareAndWrite(lun: ScsiLun, ctx: ScsiIoContext, status: number): boolean {
  if (status !== 0) {
    lun.ioError(ctx.task!, status, ctx.phase === PHASE_READ);
    return false;
  }
  if (ctx.phase === PHASE_READ) ctx.phase = PHASE_COMPARE;
  else if (ctx.phase === PHASE_WRITE) ctx.phase = ctx.fua ? PHASE_FLUSH : PHASE_DONE;
  else ctx.phase = PHASE_DONE;
  return true;
}
