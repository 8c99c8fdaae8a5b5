// CDB dispatch of a disk LUN: the unit attention gate (SAM-5 5.14: INQUIRY, REPORT LUNS and
// REQUEST SENSE pass) and the opcode table of SPC-4/SBC-3 commands this LUN implements.
import type { ScsiTask } from './scsi-task.ts';
import type { ScsiLun } from './scsi-lun.ts';
import * as C from './scsi-constants.ts';
import { cdbLengthOf } from './cdb.ts';
import { SENSE_NONE } from './sense.ts';
import { executeReportLuns } from './report-luns.ts';
import { executeInquiry } from './inquiry.ts';
import { executeModeSense } from './mode-pages.ts';
import { executeModeSelect } from './mode-select.ts';
import { executeReadCapacity10, executeReadCapacity16 } from './read-capacity.ts';
import { executeRequestSense } from './request-sense.ts';
import { executeReportSupportedOpcodes } from './supported-opcodes.ts';
import { executeReadWrite } from './read-write.ts';
import { executeSynchronizeCache } from './sync-cache.ts';
import { executeUnmap } from './unmap.ts';
import { executeWriteSame } from './write-same.ts';
import { executeCompareAndWrite } from './compare-and-write.ts';
import { executeVerify } from './verify.ts';

/** Returns true when the task completed synchronously (the LUN then completes it). */
export function dispatchCommand(lun: ScsiLun, task: ScsiTask): boolean {
  const cdb = task.cdb;
  const op = cdb[0];
  if (cdbLengthOf(op) > task.cdbLength) {
    lun.checkCondition(task, C.SCSI_SENSE_ILLEGAL_REQUEST, C.SCSI_ASC_INVALID_FIELD_IN_CDB, SENSE_NONE);
    return true;
  }
  if (lun.unitAttention.pending && op !== C.SCSI_OP_INQUIRY && op !== C.SCSI_OP_REPORT_LUNS && op !== C.SCSI_OP_REQUEST_SENSE) {
    lun.checkCondition(task, C.SCSI_SENSE_UNIT_ATTENTION, lun.unitAttention.shift(), SENSE_NONE);
    return true;
  }
  switch (op) {
    case C.SCSI_OP_TEST_UNIT_READY:
    case C.SCSI_OP_START_STOP_UNIT:
    case C.SCSI_OP_PREVENT_ALLOW_MEDIUM_REMOVAL:
      task.status = C.SCSI_STATUS_GOOD;
      return true;
    case C.SCSI_OP_REQUEST_SENSE: {
      const ua = lun.unitAttention.shift();
      if (ua >= 0) executeRequestSense(task, lun.resp, C.SCSI_SENSE_UNIT_ATTENTION, ua);
      else executeRequestSense(task, lun.resp, C.SCSI_SENSE_NO_SENSE, C.SCSI_ASC_NO_ADDITIONAL_SENSE);
      return true;
    }
    case C.SCSI_OP_INQUIRY:
      executeInquiry(lun, task);
      return true;
    case C.SCSI_OP_MODE_SENSE_6:
    case C.SCSI_OP_MODE_SENSE_10:
      executeModeSense(lun, task);
      return true;
    case C.SCSI_OP_MODE_SELECT_6:
    case C.SCSI_OP_MODE_SELECT_10:
      executeModeSelect(lun, task);
      return true;
    case C.SCSI_OP_READ_CAPACITY_10:
      executeReadCapacity10(lun, task);
      return true;
    case C.SCSI_OP_SERVICE_ACTION_IN_16:
      if ((cdb[1] & 0x1f) === C.SCSI_SAI_READ_CAPACITY_16) executeReadCapacity16(lun, task);
      else lun.invalidCdb(task, 1, 4);
      return true;
    case C.SCSI_OP_READ_6:
    case C.SCSI_OP_READ_10:
    case C.SCSI_OP_READ_12:
    case C.SCSI_OP_READ_16:
    case C.SCSI_OP_WRITE_6:
    case C.SCSI_OP_WRITE_10:
    case C.SCSI_OP_WRITE_12:
    case C.SCSI_OP_WRITE_16:
      return executeReadWrite(lun, task);
    case C.SCSI_OP_VERIFY_10:
    case C.SCSI_OP_VERIFY_12:
    case C.SCSI_OP_VERIFY_16:
      return executeVerify(lun, task);
    case C.SCSI_OP_SYNCHRONIZE_CACHE_10:
    case C.SCSI_OP_SYNCHRONIZE_CACHE_16:
      return executeSynchronizeCache(lun, task);
    case C.SCSI_OP_WRITE_SAME_10:
    case C.SCSI_OP_WRITE_SAME_16:
      return executeWriteSame(lun, task);
    case C.SCSI_OP_UNMAP:
      return executeUnmap(lun, task);
    case C.SCSI_OP_COMPARE_AND_WRITE:
      return executeCompareAndWrite(lun, task);
    case C.SCSI_OP_REPORT_LUNS:
      executeReportLuns(task, lun.reportLunsData, lun.dSense);
      return true;
    case C.SCSI_OP_MAINTENANCE_IN:
      if ((cdb[1] & 0x1f) === C.SCSI_MI_REPORT_SUPPORTED_OPERATION_CODES) executeReportSupportedOpcodes(lun, task);
      else lun.invalidCdb(task, 1, 4);
      return true;
    default:
      // Includes PERSISTENT RESERVE IN/OUT, not implemented yet.
      lun.checkCondition(task, C.SCSI_SENSE_ILLEGAL_REQUEST, C.SCSI_ASC_INVALID_COMMAND_OPERATION_CODE, SENSE_NONE);
      return true;
  }
}
