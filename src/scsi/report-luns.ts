// REPORT LUNS (SPC-4 6.33): the target's LUN inventory, answered by any LUN, including the null
// LUN of an id that does not exist.
import type { ScsiTask } from './scsi-task.ts';
import { be32, put32 } from './cdb.ts';
import { sendDataIn } from './data-transfer.ts';
import { fieldPointer, setCheckCondition } from './sense.ts';
import {
  SCSI_ASC_INVALID_FIELD_IN_CDB,
  SCSI_SELECT_REPORT_ALL,
  SCSI_SELECT_REPORT_ALL_ADDRESSED,
  SCSI_SELECT_REPORT_WELL_KNOWN,
  SCSI_SENSE_ILLEGAL_REQUEST,
} from './scsi-constants.ts';

/** An empty LUN list (no well-known logical units exist here). */
const EMPTY_LUN_LIST = new Uint8Array(8);

/** Writes the 8-byte single level LUN for id (SAM-5 4.7): peripheral addressing below 256, flat space above. */
export function encodeLun(id: number, buf: Uint8Array, o: number): void {
  buf.fill(0, o, o + 8);
  if (id < 256) {
    buf[o + 1] = id;
  } else {
    buf[o] = 0x40 | (id >> 8);
    buf[o + 1] = id & 0xff;
  }
}

/** The REPORT LUNS parameter data for the given LUN ids (control path: rebuilt on LUN changes). */
export function buildReportLunsData(ids: readonly number[]): Uint8Array {
  const sorted = [...ids].sort((a, b) => a - b);
  const data = new Uint8Array(8 + 8 * sorted.length);
  put32(data, 0, 8 * sorted.length);
  for (let i = 0; i < sorted.length; i++) encodeLun(sorted[i], data, 8 + 8 * i);
  return data;
}

/** REPORT LUNS against prebuilt data; always completes synchronously. */
export function executeReportLuns(task: ScsiTask, data: Uint8Array, descriptorSense: boolean): void {
  const cdb = task.cdb;
  const select = cdb[2];
  const alloc = be32(cdb, 6);
  if (select !== SCSI_SELECT_REPORT_ALL_ADDRESSED && select !== SCSI_SELECT_REPORT_WELL_KNOWN && select !== SCSI_SELECT_REPORT_ALL) {
    return setCheckCondition(task, descriptorSense, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB, -1, fieldPointer(true, 2, -1));
  }
  if (alloc < 16) {
    return setCheckCondition(task, descriptorSense, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB, -1, fieldPointer(true, 6, -1));
  }
  if (select === SCSI_SELECT_REPORT_WELL_KNOWN) return sendDataIn(task, EMPTY_LUN_LIST, 8, alloc);
  sendDataIn(task, data, data.length, alloc);
}
