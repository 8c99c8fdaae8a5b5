// The responder for a LUN id that does not exist on an existing target (SPC-4 6.6.2, SAM-5 5.9):
// INQUIRY says "no logical unit" (peripheral qualifier 3, type 0x1F), REPORT LUNS lists the
// target's LUNs, REQUEST SENSE returns LOGICAL UNIT NOT SUPPORTED as data, everything else
// gets CHECK CONDITION with that sense.
import type { ScsiTask } from './scsi-task.ts';
import { be16 } from './cdb.ts';
import { sendDataIn } from './data-transfer.ts';
import { writeStandardInquiry } from './inquiry.ts';
import { executeReportLuns } from './report-luns.ts';
import { executeRequestSense } from './request-sense.ts';
import { asciiField } from './identification.ts';
import { fieldPointer, SENSE_NONE, setCheckCondition } from './sense.ts';
import {
  SCSI_ASC_INVALID_FIELD_IN_CDB,
  SCSI_ASC_LOGICAL_UNIT_NOT_SUPPORTED,
  SCSI_OP_INQUIRY,
  SCSI_OP_REPORT_LUNS,
  SCSI_OP_REQUEST_SENSE,
  SCSI_PERIPHERAL_NO_LUN,
  SCSI_SENSE_ILLEGAL_REQUEST,
  SCSI_VPD_SUPPORTED_PAGES,
} from './scsi-constants.ts';

const BLANK_PRODUCT = asciiField('', 16);

export class ScsiNullLun {
  /** The target's REPORT LUNS data (replaced when its LUN set changes). */
  reportLunsData: Uint8Array;
  private readonly resp = new Uint8Array(256);

  constructor(reportLunsData: Uint8Array) {
    this.reportLunsData = reportLunsData;
  }

  /** Completes synchronously (the waiter is called before this returns). */
  execute(task: ScsiTask): void {
    task.resetResult();
    const cdb = task.cdb;
    switch (cdb[0]) {
      case SCSI_OP_INQUIRY: {
        const alloc = be16(cdb, 3);
        if (cdb[1] & 0x02) {
          setCheckCondition(task, false, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB, SENSE_NONE, fieldPointer(true, 1, 1));
        } else if ((cdb[1] & 0x01) === 0) {
          if (cdb[2] !== 0) {
            setCheckCondition(task, false, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB, SENSE_NONE, fieldPointer(true, 2, -1));
          } else {
            const n = writeStandardInquiry(this.resp, SCSI_PERIPHERAL_NO_LUN, BLANK_PRODUCT);
            sendDataIn(task, this.resp, n, alloc);
          }
        } else if (cdb[2] === SCSI_VPD_SUPPORTED_PAGES) {
          // Only the supported-pages page, listing itself.
          const r = this.resp;
          r[0] = SCSI_PERIPHERAL_NO_LUN;
          r[1] = SCSI_VPD_SUPPORTED_PAGES;
          r[2] = 0;
          r[3] = 1;
          r[4] = SCSI_VPD_SUPPORTED_PAGES;
          sendDataIn(task, r, 5, alloc);
        } else {
          setCheckCondition(task, false, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB, SENSE_NONE, fieldPointer(true, 2, -1));
        }
        break;
      }
      case SCSI_OP_REPORT_LUNS:
        executeReportLuns(task, this.reportLunsData, false);
        break;
      case SCSI_OP_REQUEST_SENSE:
        executeRequestSense(task, this.resp, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LOGICAL_UNIT_NOT_SUPPORTED);
        break;
      default:
        setCheckCondition(task, false, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LOGICAL_UNIT_NOT_SUPPORTED, SENSE_NONE, SENSE_NONE);
        break;
    }
    const waiter = task.waiter;
    if (waiter !== null) waiter.scsiTaskDone(task);
  }
}
