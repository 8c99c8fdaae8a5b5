// SYNCHRONIZE CACHE(10)/(16) (SBC-3 5.22/5.23): flushes the bdev over the range (0 blocks = to
// the end). IMMED is accepted; status is returned after the flush, which is always allowed.
import type { ScsiTask } from './scsi-task.ts';
import type { ScsiLun } from './scsi-lun.ts';
import type { ScsiIoContext } from './scsi-io-context.ts';
import { IO_OP_FLUSH } from './scsi-io-context.ts';
import { be16, be32, be64 } from './cdb.ts';
import { SCSI_OP_SYNCHRONIZE_CACHE_10, SCSI_STATUS_GOOD } from './scsi-constants.ts';

/** Returns true when the task completed synchronously. */
export function executeSynchronizeCache(lun: ScsiLun, task: ScsiTask): boolean {
  const cdb = task.cdb;
  const ten = cdb[0] === SCSI_OP_SYNCHRONIZE_CACHE_10;
  const lba = ten ? be32(cdb, 2) : be64(cdb, 2);
  let blocks = ten ? be16(cdb, 7) : be32(cdb, 10);
  if (lun.outOfRange(lba, blocks)) {
    lun.lbaOutOfRange(task);
    return true;
  }
  if (blocks === 0) blocks = lun.numBlocks - lba;
  const ctx = lun.newIo(task, IO_OP_FLUSH);
  if (ctx === null) return true;
  ctx.lba = lba;
  ctx.blocks = blocks;
  lun.startIo(ctx);
  return false;
}

export function issueFlush(lun: ScsiLun, ctx: ScsiIoContext): boolean {
  if (ctx.phase === 0) {
    lun.channel.flush(ctx.lba, ctx.blocks, ctx);
    return true;
  }
  ctx.task!.status = SCSI_STATUS_GOOD;
  return false;
}

export function handleFlush(lun: ScsiLun, ctx: ScsiIoContext, status: number): boolean {
  if (status !== 0) {
    lun.ioError(ctx.task!, status, false);
    return false;
  }
  ctx.phase = 1;
  return true;
}
