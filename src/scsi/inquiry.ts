// INQUIRY (SPC-4 6.6): standard data and the dispatch to VPD pages.
import type { ScsiTask } from './scsi-task.ts';
import type { ScsiLun } from './scsi-lun.ts';
import { be16, put16 } from './cdb.ts';
import { sendDataIn } from './data-transfer.ts';
import { writeVpdPage } from './vpd-pages.ts';
import { asciiField, SCSI_PRODUCT_REVISION, SCSI_VENDOR_ID } from './identification.ts';
import {
  SCSI_VERSION_DESCRIPTOR_SAM5,
  SCSI_VERSION_DESCRIPTOR_SBC3,
  SCSI_VERSION_DESCRIPTOR_SPC4,
  SCSI_VERSION_SPC4,
} from './scsi-constants.ts';

export const STANDARD_INQUIRY_LENGTH = 96;

const VENDOR = asciiField(SCSI_VENDOR_ID, 8);
const REVISION = asciiField(SCSI_PRODUCT_REVISION, 4);

const HISUP = 0x10;
const RESPONSE_DATA_FORMAT = 0x02;
const CMDQUE = 0x02;

/** Writes the 96-byte standard INQUIRY data into buf; returns its length. */
export function writeStandardInquiry(buf: Uint8Array, peripheral: number, product: Uint8Array): number {
  buf.fill(0, 0, STANDARD_INQUIRY_LENGTH);
  buf[0] = peripheral;
  buf[2] = SCSI_VERSION_SPC4;
  buf[3] = HISUP | RESPONSE_DATA_FORMAT;
  buf[4] = STANDARD_INQUIRY_LENGTH - 5;
  buf[7] = CMDQUE;
  buf.set(VENDOR, 8);
  buf.set(product, 16);
  buf.set(REVISION, 32);
  put16(buf, 58, SCSI_VERSION_DESCRIPTOR_SAM5);
  put16(buf, 60, SCSI_VERSION_DESCRIPTOR_SPC4);
  put16(buf, 62, SCSI_VERSION_DESCRIPTOR_SBC3);
  return STANDARD_INQUIRY_LENGTH;
}

/** INQUIRY on a LUN; always completes synchronously. */
export function executeInquiry(lun: ScsiLun, task: ScsiTask): void {
  const cdb = task.cdb;
  if (cdb[1] & 0x02) return lun.invalidCdb(task, 1, 1); // CMDDT: obsolete, unsupported
  const evpd = (cdb[1] & 0x01) !== 0;
  const page = cdb[2];
  const alloc = be16(cdb, 3);
  if (!evpd) {
    if (page !== 0) return lun.invalidCdb(task, 2, -1);
    const n = writeStandardInquiry(lun.resp, lun.peripheral, lun.product);
    return sendDataIn(task, lun.resp, n, alloc);
  }
  const n = writeVpdPage(lun, page, lun.resp);
  if (n < 0) return lun.invalidCdb(task, 2, -1);
  sendDataIn(task, lun.resp, n, alloc);
}
