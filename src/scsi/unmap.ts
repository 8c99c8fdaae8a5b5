// UNMAP (SBC-3 5.28): the parameter list is validated whole (header, descriptor count, every
// range) before the first descriptor is unmapped, then the descriptors run one bdev call each.
// Descriptors are read from the data-out buffer when needed (no copy of the list is kept), and
// re-checked then, since the guest may have changed them meanwhile.
import type { ScsiTask } from './scsi-task.ts';
import type { ScsiLun } from './scsi-lun.ts';
import type { ScsiIoContext } from './scsi-io-context.ts';
import { IO_OP_UNMAP } from './scsi-io-context.ts';
import { be16, be32, be64 } from './cdb.ts';
import { dataOutWindow } from './data-transfer.ts';
import { SENSE_NONE } from './sense.ts';
import {
  SCSI_ASC_INVALID_COMMAND_OPERATION_CODE,
  SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR,
  SCSI_MAX_UNMAP_DESCRIPTORS,
  SCSI_MAX_UNMAP_LBA_COUNT,
  SCSI_SENSE_ILLEGAL_REQUEST,
  SCSI_STATUS_GOOD,
} from './scsi-constants.ts';

const HEADER_LENGTH = 8;
const DESCRIPTOR_LENGTH = 16;

/** Reads descriptor i into lun.param[0..16). */
function readDescriptor(task: ScsiTask, lun: ScsiLun, i: number): void {
  task.dataOut!.copyOut(task.dataOutOffset + HEADER_LENGTH + i * DESCRIPTOR_LENGTH, lun.param, 0, DESCRIPTOR_LENGTH);
}

/** Returns true when the task completed synchronously. */
export function executeUnmap(lun: ScsiLun, task: ScsiTask): boolean {
  const cdb = task.cdb;
  if (!lun.info.unmapSupported) {
    lun.checkCondition(task, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_COMMAND_OPERATION_CODE, SENSE_NONE);
    return true;
  }
  if (cdb[1] & 0x01) {
    lun.invalidCdb(task, 1, 0); // ANCHOR: anchored state is not supported
    return true;
  }
  if (lun.info.readOnly) {
    lun.writeProtected(task);
    return true;
  }
  const paramLength = be16(cdb, 7);
  if (paramLength === 0) {
    task.status = SCSI_STATUS_GOOD;
    return true;
  }
  if (dataOutWindow(task) < paramLength) {
    lun.invalidCdb(task, 7, -1);
    return true;
  }
  if (paramLength < HEADER_LENGTH) {
    lun.checkCondition(task, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR, SENSE_NONE);
    return true;
  }
  const p = lun.param;
  task.dataOut!.copyOut(task.dataOutOffset, p, 0, HEADER_LENGTH);
  const descriptorBytes = be16(p, 2);
  if (HEADER_LENGTH + descriptorBytes > paramLength || be16(p, 0) + 2 < HEADER_LENGTH + descriptorBytes) {
    lun.checkCondition(task, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR, SENSE_NONE);
    return true;
  }
  // A trailing partial descriptor is ignored (SBC-3).
  const count = Math.floor(descriptorBytes / DESCRIPTOR_LENGTH);
  if (count > SCSI_MAX_UNMAP_DESCRIPTORS) {
    lun.invalidParam(task, 2, -1);
    return true;
  }
  let total = 0;
  for (let i = 0; i < count; i++) {
    readDescriptor(task, lun, i);
    const lba = be64(p, 0);
    const blocks = be32(p, 8);
    if (blocks === 0) continue;
    if (lun.outOfRange(lba, blocks)) {
      lun.lbaOutOfRange(task);
      return true;
    }
    total += blocks;
    if (total > SCSI_MAX_UNMAP_LBA_COUNT) {
      lun.invalidParam(task, HEADER_LENGTH + i * DESCRIPTOR_LENGTH + 8, -1);
      return true;
    }
  }
  if (total === 0) {
    task.status = SCSI_STATUS_GOOD;
    task.transferred = paramLength;
    return true;
  }
  const ctx = lun.newIo(task, IO_OP_UNMAP);
  if (ctx === null) return true;
  // For COMPARE AND WRITE conflicts an UNMAP counts as writing anywhere.
  ctx.lba = 0;
  ctx.blocks = lun.numBlocks;
  ctx.pos = 0;
  ctx.count = count;
  ctx.mode = paramLength;
  lun.startIo(ctx);
  return false;
}

export function issueUnmap(lun: ScsiLun, ctx: ScsiIoContext): boolean {
  const task = ctx.task!;
  const p = lun.param;
  while (ctx.pos < ctx.count) {
    readDescriptor(task, lun, ctx.pos++);
    const lba = be64(p, 0);
    const blocks = be32(p, 8);
    if (blocks === 0) continue;
    if (lun.outOfRange(lba, blocks)) {
      lun.lbaOutOfRange(task);
      return false;
    }
    lun.channel.unmap(lba, blocks, ctx);
    return true;
  }
  task.status = SCSI_STATUS_GOOD;
  task.transferred = ctx.mode;
  return false;
}

export function handleUnmap(lun: ScsiLun, ctx: ScsiIoContext, status: number): boolean {
  if (status !== 0) {
    lun.ioError(ctx.task!, status, false);
    return false;
  }
  return true;
}
