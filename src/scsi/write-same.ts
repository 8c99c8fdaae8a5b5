// WRITE SAME(10)/(16) (SBC-3 5.42/5.43). UNMAP with a zero block (or NDOB) unmaps the range; a
// zero block otherwise becomes one write-zeroes call; any other block is replicated into the
// LUN's scratch buffer and written chunk by chunk. Uses of the scratch buffer are serialized per
// LUN (the engine defers a second one).
import type { ScsiTask } from './scsi-task.ts';
import type { ScsiLun } from './scsi-lun.ts';
import type { ScsiIoContext } from './scsi-io-context.ts';
import { IO_OP_WRITE_SAME, IO_OP_WRITE_SAME_UNMAP } from './scsi-io-context.ts';
import { be16, be32, be64 } from './cdb.ts';
import { dataOutWindow } from './data-transfer.ts';
import { sgIsZero } from './sg-compare.ts';
import { BDEV_ENOTSUP } from '../bdev/bdev.ts';
import { SCSI_ASC_INVALID_FIELD_IN_CDB, SCSI_MAX_WRITE_SAME_BLOCKS, SCSI_OP_WRITE_SAME_16, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_STATUS_GOOD } from './scsi-constants.ts';
import { SENSE_NONE } from './sense.ts';

const WRPROTECT_MASK = 0xe0;
const ANCHOR = 0x10;
const UNMAP = 0x08;
const NDOB = 0x01;

const PHASE_START = 0;
const PHASE_ZEROES = 1;
const PHASE_REPLICATE = 2;
const PHASE_FLUSH = 3;
const PHASE_DONE = 4;

/** Returns true when the task completed synchronously. */
export function executeWriteSame(lun: ScsiLun, task: ScsiTask): boolean {
  const cdb = task.cdb;
  const sixteen = cdb[0] === SCSI_OP_WRITE_SAME_16;
  const flags = cdb[1];
  const lba = sixteen ? be64(cdb, 2) : be32(cdb, 2);
  const blocks = sixteen ? be32(cdb, 10) : be16(cdb, 7);
  const lenByte = sixteen ? 10 : 7;
  if (flags & WRPROTECT_MASK) {
    lun.invalidCdb(task, 1, 7);
    return true;
  }
  if (flags & ANCHOR) {
    lun.invalidCdb(task, 1, 4);
    return true;
  }
  // NDOB exists only in WRITE SAME(16); bit 0 of WRITE SAME(10) is obsolete.
  if ((flags & NDOB) !== 0 && !sixteen) {
    lun.invalidCdb(task, 1, 0);
    return true;
  }
  const unmap = (flags & UNMAP) !== 0;
  const ndob = (flags & NDOB) !== 0;
  // LBPWS/LBPWS10 are zero without unmap support: the UNMAP bit is then an invalid field.
  if (unmap && !lun.info.unmapSupported) {
    lun.invalidCdb(task, 1, 3);
    return true;
  }
  // WSNZ=1: zero blocks is not "to the end of the medium" here.
  if (blocks === 0 || blocks > SCSI_MAX_WRITE_SAME_BLOCKS) {
    lun.invalidCdb(task, lenByte, -1);
    return true;
  }
  if (lun.info.readOnly) {
    lun.writeProtected(task);
    return true;
  }
  if (lun.outOfRange(lba, blocks)) {
    lun.lbaOutOfRange(task);
    return true;
  }
  const bs = lun.blockSize;
  if (!ndob && dataOutWindow(task) < bs) {
    lun.checkCondition(task, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB, SENSE_NONE);
    return true;
  }
  const zero = ndob || sgIsZero(task.dataOut!, task.dataOutOffset, bs);
  const ctx = lun.newIo(task, unmap && zero ? IO_OP_WRITE_SAME_UNMAP : IO_OP_WRITE_SAME);
  if (ctx === null) return true;
  ctx.lba = lba;
  ctx.blocks = blocks;
  ctx.pos = 0;
  ctx.mode = zero ? 1 : 0;
  ctx.count = ndob ? 0 : bs; // data-out bytes consumed
  ctx.fua = lun.writeThrough;
  lun.startIo(ctx);
  return false;
}

/** Fills the scratch buffer with copies of the data-out block (or zeroes). */
function preparePattern(lun: ScsiLun, ctx: ScsiIoContext): void {
  const buf = lun.scratch;
  const bs = lun.blockSize;
  const total = lun.scratchBlocks * bs;
  if (ctx.mode === 1) {
    buf.fill(0, 0, total);
    return;
  }
  const task = ctx.task!;
  task.dataOut!.copyOut(task.dataOutOffset, buf, 0, bs);
  for (let filled = bs; filled < total; filled *= 2) buf.copyWithin(filled, 0, Math.min(filled, total - filled));
}

export function issueWriteSame(lun: ScsiLun, ctx: ScsiIoContext): boolean {
  const task = ctx.task!;
  if (ctx.op === IO_OP_WRITE_SAME_UNMAP) {
    if (ctx.phase === PHASE_START) {
      ctx.phase = PHASE_DONE;
      lun.channel.unmap(ctx.lba, ctx.blocks, ctx);
      return true;
    }
    task.status = SCSI_STATUS_GOOD;
    task.transferred = ctx.count;
    return false;
  }
  for (;;) {
    switch (ctx.phase) {
      case PHASE_START:
        if (ctx.mode === 1) {
          ctx.phase = PHASE_ZEROES;
          lun.channel.writeZeroes(ctx.lba, ctx.blocks, ctx);
          return true;
        }
        preparePattern(lun, ctx);
        ctx.phase = PHASE_REPLICATE;
        break;
      case PHASE_REPLICATE: {
        const left = ctx.blocks - ctx.pos;
        if (left === 0) {
          ctx.phase = ctx.fua ? PHASE_FLUSH : PHASE_DONE;
          break;
        }
        const n = left < lun.scratchBlocks ? left : lun.scratchBlocks;
        const at = ctx.lba + ctx.pos;
        ctx.pos += n;
        lun.channel.write(at, n, lun.scratchSg, 0, ctx);
        return true;
      }
      case PHASE_FLUSH:
        lun.channel.flush(ctx.lba, ctx.blocks, ctx);
        return true;
      default:
        task.status = SCSI_STATUS_GOOD;
        task.transferred = ctx.count;
        return false;
    }
  }
}

export function handleWriteSame(lun: ScsiLun, ctx: ScsiIoContext, status: number): boolean {
  if (ctx.phase === PHASE_ZEROES && status === BDEV_ENOTSUP) {
    // No write-zeroes in this bdev: write zero blocks instead.
    preparePattern(lun, ctx);
    ctx.phase = PHASE_REPLICATE;
    return true;
  }
  if (status !== 0) {
    lun.ioError(ctx.task!, status, false);
    return false;
  }
  if (ctx.phase === PHASE_ZEROES) ctx.phase = ctx.fua ? PHASE_FLUSH : PHASE_DONE;
  else if (ctx.phase === PHASE_FLUSH) ctx.phase = PHASE_DONE;
  return true;
}
