// VERIFY(10/12/16) (SBC-3 5.29-5.31). BYTCHK 0: the medium is always readable, so only the range
// is checked. BYTCHK 1: compare the range with the data-out buffer; BYTCHK 3: compare every block
// of the range with the single data-out block. Reads go chunk by chunk through the LUN's scratch
// buffer (uses serialized per LUN).
import type { ScsiTask } from './scsi-task.ts';
import type { ScsiLun } from './scsi-lun.ts';
import type { ScsiIoContext } from './scsi-io-context.ts';
import { IO_OP_VERIFY } from './scsi-io-context.ts';
import { be16, be32, be64 } from './cdb.ts';
import { dataOutWindow } from './data-transfer.ts';
import { sgCompare } from './sg-compare.ts';
import { SENSE_NONE } from './sense.ts';
import {
  SCSI_ASC_MISCOMPARE_DURING_VERIFY,
  SCSI_OP_VERIFY_10,
  SCSI_OP_VERIFY_12,
  SCSI_SENSE_MISCOMPARE,
  SCSI_STATUS_GOOD,
} from './scsi-constants.ts';

const VRPROTECT_MASK = 0xe0;
const BYTCHK_RANGE = 1;
const BYTCHK_ONE_BLOCK = 3;

/** Returns true when the task completed synchronously. */
export function executeVerify(lun: ScsiLun, task: ScsiTask): boolean {
  const cdb = task.cdb;
  const op = cdb[0];
  let lba: number;
  let blocks: number;
  let lenByte: number;
  if (op === SCSI_OP_VERIFY_10) {
    lba = be32(cdb, 2);
    blocks = be16(cdb, 7);
    lenByte = 7;
  } else if (op === SCSI_OP_VERIFY_12) {
    lba = be32(cdb, 2);
    blocks = be32(cdb, 6);
    lenByte = 6;
  } else {
    lba = be64(cdb, 2);
    blocks = be32(cdb, 10);
    lenByte = 10;
  }
  if (cdb[1] & VRPROTECT_MASK) {
    lun.invalidCdb(task, 1, 7);
    return true;
  }
  const bytchk = (cdb[1] >> 1) & 3;
  if (bytchk === 2) {
    lun.invalidCdb(task, 1, 2);
    return true;
  }
  if (lun.outOfRange(lba, blocks)) {
    lun.lbaOutOfRange(task);
    return true;
  }
  if (blocks === 0 || bytchk === 0) {
    task.status = SCSI_STATUS_GOOD;
    return true;
  }
  const bs = lun.blockSize;
  const need = bytchk === BYTCHK_RANGE ? blocks * bs : bs;
  if (dataOutWindow(task) < need) {
    lun.invalidCdb(task, lenByte, -1);
    return true;
  }
  const ctx = lun.newIo(task, IO_OP_VERIFY);
  if (ctx === null) return true;
  ctx.lba = lba;
  ctx.blocks = blocks;
  ctx.pos = 0;
  ctx.mode = bytchk;
  lun.startIo(ctx);
  return false;
}

export function issueVerify(lun: ScsiLun, ctx: ScsiIoContext): boolean {
  const left = ctx.blocks - ctx.pos;
  if (left > 0) {
    ctx.count = left < lun.scratchBlocks ? left : lun.scratchBlocks;
    lun.channel.read(ctx.lba + ctx.pos, ctx.count, lun.scratchSg, 0, ctx);
    return true;
  }
  const task = ctx.task!;
  task.status = SCSI_STATUS_GOOD;
  task.transferred = ctx.mode === BYTCHK_RANGE ? ctx.blocks * lun.blockSize : lun.blockSize;
  return false;
}

export function handleVerify(lun: ScsiLun, ctx: ScsiIoContext, status: number): boolean {
  const task = ctx.task!;
  if (status !== 0) {
    lun.ioError(task, status, true);
    return false;
  }
  const bs = lun.blockSize;
  const sg = task.dataOut!;
  if (ctx.mode === BYTCHK_RANGE) {
    const at = sgCompare(sg, task.dataOutOffset + ctx.pos * bs, lun.scratch, 0, ctx.count * bs);
    if (at >= 0) {
      lun.checkConditionInfo(task, SCSI_SENSE_MISCOMPARE, SCSI_ASC_MISCOMPARE_DURING_VERIFY, ctx.pos * bs + at, SENSE_NONE);
      return false;
    }
  } else if (ctx.mode === BYTCHK_ONE_BLOCK) {
    for (let i = 0; i < ctx.count; i++) {
      const at = sgCompare(sg, task.dataOutOffset, lun.scratch, i * bs, bs);
      if (at >= 0) {
        lun.checkConditionInfo(task, SCSI_SENSE_MISCOMPARE, SCSI_ASC_MISCOMPARE_DURING_VERIFY, (ctx.pos + i) * bs + at, SENSE_NONE);
        return false;
      }
    }
  }
  ctx.pos += ctx.count;
  return true;
}
