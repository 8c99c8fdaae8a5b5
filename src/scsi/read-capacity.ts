// READ CAPACITY(10) and (16) (SBC-3 5.15/5.16).
import type { ScsiTask } from './scsi-task.ts';
import type { ScsiLun } from './scsi-lun.ts';
import { be32, be64, put32, put64 } from './cdb.ts';
import { sendDataIn } from './data-transfer.ts';

const READ_CAPACITY_10_LENGTH = 8;
const READ_CAPACITY_16_LENGTH = 32;
const LBPME = 0x80;
const LBPRZ = 0x40;

function lastLba(lun: ScsiLun): number {
  return lun.numBlocks > 0 ? lun.numBlocks - 1 : 0;
}

export function executeReadCapacity10(lun: ScsiLun, task: ScsiTask): void {
  const cdb = task.cdb;
  // Without PMI the (obsolete) LBA field must be zero.
  if ((cdb[8] & 0x01) === 0 && be32(cdb, 2) !== 0) return lun.invalidCdb(task, 2, -1);
  const buf = lun.resp;
  const last = lastLba(lun);
  put32(buf, 0, last > 0xfffffffe ? 0xffffffff : last); // all ones: use READ CAPACITY(16)
  put32(buf, 4, lun.blockSize);
  sendDataIn(task, buf, READ_CAPACITY_10_LENGTH, READ_CAPACITY_10_LENGTH);
}

export function executeReadCapacity16(lun: ScsiLun, task: ScsiTask): void {
  const cdb = task.cdb;
  if ((cdb[14] & 0x01) === 0 && be64(cdb, 2) !== 0) return lun.invalidCdb(task, 2, -1);
  const alloc = be32(cdb, 10);
  const buf = lun.resp;
  buf.fill(0, 0, READ_CAPACITY_16_LENGTH);
  put64(buf, 0, lastLba(lun));
  put32(buf, 8, lun.blockSize);
  buf[13] = (lun.info.physicalBlockExponent ?? 0) & 0x0f;
  if (lun.info.unmapSupported) buf[14] = LBPME | (lun.info.unmapReadsZero ? LBPRZ : 0);
  sendDataIn(task, buf, READ_CAPACITY_16_LENGTH, alloc);
}
