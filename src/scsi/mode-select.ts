// MODE SELECT(6)/(10) (SPC-4 6.9/6.10): validates the whole parameter list (header, block
// descriptor, pages; non-changeable fields must keep their current values) before applying any
// of it. Changeable: WCE (when the bdev has a volatile cache) and D_SENSE.
import type { ScsiTask } from './scsi-task.ts';
import type { ScsiLun } from './scsi-lun.ts';
import { be16, be24, be32 } from './cdb.ts';
import { dataOutWindow, receiveDataOut } from './data-transfer.ts';
import { MODE_D_SENSE, MODE_WCE, modePageLength, writeModePage } from './mode-pages.ts';
import {
  SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR,
  SCSI_MAX_MODE_SELECT_LENGTH,
  SCSI_MODE_PAGE_CACHING,
  SCSI_MODE_PAGE_CONTROL,
  SCSI_MODE_PC_CHANGEABLE,
  SCSI_MODE_PC_CURRENT,
  SCSI_OP_MODE_SELECT_10,
  SCSI_SENSE_ILLEGAL_REQUEST,
  SCSI_STATUS_GOOD,
} from './scsi-constants.ts';
import { SENSE_NONE } from './sense.ts';

// Offsets in lun.resp (free during MODE SELECT) for the current page and its changeable mask.
const CURRENT_AT = 0;
const MASK_AT = 64;

/** MODE SELECT(6) and (10); always completes synchronously. */
export function executeModeSelect(lun: ScsiLun, task: ScsiTask): void {
  const cdb = task.cdb;
  const ten = cdb[0] === SCSI_OP_MODE_SELECT_10;
  const lenByte = ten ? 7 : 4;
  const len = ten ? be16(cdb, 7) : cdb[4];
  if (cdb[1] & 0x01) return lun.invalidCdb(task, 1, 0); // SP: nothing is saveable
  if (len === 0) {
    task.status = SCSI_STATUS_GOOD;
    return;
  }
  if (dataOutWindow(task) < len) return lun.invalidCdb(task, lenByte, -1);
  const hdr = ten ? 8 : 4;
  if (len < hdr || len > SCSI_MAX_MODE_SELECT_LENGTH) {
    return lun.checkCondition(task, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR, SENSE_NONE);
  }
  const p = lun.param;
  receiveDataOut(task, p, len);

  const longLba = ten && (p[4] & 0x01) !== 0;
  const bdl = ten ? be16(p, 6) : p[3];
  if (bdl !== 0 && bdl !== (longLba ? 16 : 8)) return lun.invalidParam(task, ten ? 6 : 3, -1);
  if (hdr + bdl > len) return lun.checkCondition(task, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR, SENSE_NONE);
  if (bdl !== 0) {
    // The block length cannot change; the block count is ignored (no FORMAT UNIT).
    const at = hdr + (longLba ? 12 : 5);
    const blockLength = longLba ? be32(p, at) : be24(p, at);
    if (blockLength !== lun.blockSize) return lun.invalidParam(task, at, -1);
  }

  let wce = lun.wce;
  let dSense = lun.dSense;
  const scratch = lun.resp;
  let o = hdr + bdl;
  while (o < len) {
    if (o + 2 > len) return lun.checkCondition(task, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR, SENSE_NONE);
    if (p[o] & 0x40) return lun.invalidParam(task, o, 6); // SPF: no subpages here
    const page = p[o] & 0x3f;
    const plen = modePageLength(page);
    if (plen < 0) return lun.invalidParam(task, o, 5);
    if (p[o + 1] !== plen) return lun.invalidParam(task, o + 1, -1);
    if (o + 2 + plen > len) return lun.checkCondition(task, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR, SENSE_NONE);
    writeModePage(lun, page, SCSI_MODE_PC_CURRENT, scratch, CURRENT_AT);
    writeModePage(lun, page, SCSI_MODE_PC_CHANGEABLE, scratch, MASK_AT);
    for (let i = 2; i < 2 + plen; i++) {
      const diff = (p[o + i] ^ scratch[CURRENT_AT + i]) & ~scratch[MASK_AT + i] & 0xff;
      if (diff !== 0) return lun.invalidParam(task, o + i, 31 - Math.clz32(diff));
    }
    if (page === SCSI_MODE_PAGE_CACHING) wce = (p[o + 2] & MODE_WCE) !== 0;
    else if (page === SCSI_MODE_PAGE_CONTROL) dSense = (p[o + 2] & MODE_D_SENSE) !== 0;
    o += 2 + plen;
  }
  lun.wce = wce;
  lun.dSense = dSense;
  task.status = SCSI_STATUS_GOOD;
  task.transferred = len;
}
