// READ and WRITE (6/10/12/16) (SBC-3 5.8-5.11, 5.32-5.35). The bdev reads and writes the task's
// SgList in place (zero copy); FUA (or WCE=0 on a cached bdev) adds a flush after the write.
import type { ScsiTask } from './scsi-task.ts';
import type { ScsiLun } from './scsi-lun.ts';
import type { ScsiIoContext } from './scsi-io-context.ts';
import { IO_OP_READ, IO_OP_WRITE } from './scsi-io-context.ts';
import { be16, be32, be64 } from './cdb.ts';
import { dataInWindow, dataOutWindow } from './data-transfer.ts';
import {
  SCSI_OP_READ_10,
  SCSI_OP_READ_12,
  SCSI_OP_READ_16,
  SCSI_OP_READ_6,
  SCSI_OP_WRITE_10,
  SCSI_OP_WRITE_12,
  SCSI_OP_WRITE_16,
  SCSI_OP_WRITE_6,
  SCSI_STATUS_GOOD,
} from './scsi-constants.ts';

const FUA = 0x08;
const PROTECT_MASK = 0xe0;

const PHASE_DATA = 0;
const PHASE_FLUSH = 1;
const PHASE_DONE = 2;

/** Returns true when the task completed synchronously (the caller completes it). */
export function executeReadWrite(lun: ScsiLun, task: ScsiTask): boolean {
  const cdb = task.cdb;
  const op = cdb[0];
  let lba: number;
  let blocks: number;
  let flags = 0;
  let lenByte: number;
  switch (op) {
    case SCSI_OP_READ_6:
    case SCSI_OP_WRITE_6:
      lba = ((cdb[1] & 0x1f) << 16) | be16(cdb, 2);
      blocks = cdb[4] === 0 ? 256 : cdb[4];
      lenByte = 4;
      break;
    case SCSI_OP_READ_10:
    case SCSI_OP_WRITE_10:
      flags = cdb[1];
      lba = be32(cdb, 2);
      blocks = be16(cdb, 7);
      lenByte = 7;
      break;
    case SCSI_OP_READ_12:
    case SCSI_OP_WRITE_12:
      flags = cdb[1];
      lba = be32(cdb, 2);
      blocks = be32(cdb, 6);
      lenByte = 6;
      break;
    default: // READ(16), WRITE(16)
      flags = cdb[1];
      lba = be64(cdb, 2);
      blocks = be32(cdb, 10);
      lenByte = 10;
      break;
  }
  const write = op === SCSI_OP_WRITE_6 || op === SCSI_OP_WRITE_10 || op === SCSI_OP_WRITE_12 || op === SCSI_OP_WRITE_16;
  // RDPROTECT / WRPROTECT: this LUN has no protection information.
  if (flags & PROTECT_MASK) {
    lun.invalidCdb(task, 1, 7);
    return true;
  }
  if (write && lun.info.readOnly) {
    lun.writeProtected(task);
    return true;
  }
  if (lun.outOfRange(lba, blocks)) {
    lun.lbaOutOfRange(task);
    return true;
  }
  const max = lun.info.maxTransferBlocks ?? 0;
  if (max > 0 && blocks > max) {
    lun.invalidCdb(task, lenByte, -1);
    return true;
  }
  const bs = lun.blockSize;
  if (write) {
    // A data-out buffer shorter than the transfer length: refuse, never read past it.
    if (dataOutWindow(task) < blocks * bs) {
      lun.invalidCdb(task, lenByte, -1);
      return true;
    }
  } else {
    // A data-in buffer shorter than the transfer length: transfer the whole blocks that fit.
    const fit = Math.floor(dataInWindow(task) / bs);
    if (fit < blocks) blocks = fit;
  }
  if (blocks === 0) {
    task.status = SCSI_STATUS_GOOD;
    return true;
  }
  const ctx = lun.newIo(task, write ? IO_OP_WRITE : IO_OP_READ);
  if (ctx === null) return true;
  ctx.lba = lba;
  ctx.blocks = blocks;
  ctx.fua = write && ((flags & FUA) !== 0 || lun.writeThrough);
  lun.startIo(ctx);
  return false;
}

/** Submits the next bdev call; false when the command is finished (result set). */
export function issueReadWrite(lun: ScsiLun, ctx: ScsiIoContext): boolean {
  const task = ctx.task!;
  switch (ctx.phase) {
    case PHASE_DATA:
      if (ctx.op === IO_OP_READ) lun.channel.read(ctx.lba, ctx.blocks, task.dataIn!, task.dataInOffset, ctx);
      else lun.channel.write(ctx.lba, ctx.blocks, task.dataOut!, task.dataOutOffset, ctx);
      return true;
    case PHASE_FLUSH:
      lun.channel.flush(ctx.lba, ctx.blocks, ctx);
      return true;
    default:
      task.status = SCSI_STATUS_GOOD;
      task.transferred = ctx.blocks * lun.blockSize;
      return false;
  }
}

/** Processes one bdev completion; false when the command is finished (result set). */
export function handleReadWrite(lun: ScsiLun, ctx: ScsiIoContext, status: number): boolean {
  if (status !== 0) {
    lun.ioError(ctx.task!, status, ctx.op === IO_OP_READ);
    return false;
  }
  ctx.phase = ctx.phase === PHASE_DATA && ctx.fua ? PHASE_FLUSH : PHASE_DONE;
  return true;
}
