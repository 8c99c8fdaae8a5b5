// Mode pages (SPC-4 7.5, SBC-3 6.4) and MODE SENSE(6)/(10): caching (0x08), control (0x0A),
// informational exceptions (0x1C), all pages (0x3F), with page control current / changeable /
// default (saved -> SAVING PARAMETERS NOT SUPPORTED).
import type { ScsiTask } from './scsi-task.ts';
import type { ScsiLun } from './scsi-lun.ts';
import { be16, put16, put24, put32, put64 } from './cdb.ts';
import { sendDataIn } from './data-transfer.ts';
import { fieldPointer } from './sense.ts';
import {
  SCSI_ASC_SAVING_PARAMETERS_NOT_SUPPORTED,
  SCSI_MODE_PAGE_ALL,
  SCSI_MODE_PAGE_CACHING,
  SCSI_MODE_PAGE_CONTROL,
  SCSI_MODE_PAGE_INFORMATIONAL_EXCEPTIONS,
  SCSI_MODE_PC_CHANGEABLE,
  SCSI_MODE_PC_CURRENT,
  SCSI_MODE_PC_SAVED,
  SCSI_MODE_SUBPAGE_ALL,
  SCSI_OP_MODE_SENSE_10,
  SCSI_SENSE_ILLEGAL_REQUEST,
} from './scsi-constants.ts';

/** The mode parameters a LUN can change (its current values). */
export interface ModeState {
  wce: boolean;
  dSense: boolean;
}

export const CACHING_PAGE_LENGTH = 0x12;
export const CONTROL_PAGE_LENGTH = 0x0a;
export const INFORMATIONAL_EXCEPTIONS_PAGE_LENGTH = 0x0a;

/** Caching page byte 2. */
export const MODE_WCE = 0x04;
/** Control page byte 2. */
export const MODE_D_SENSE = 0x04;
/** Control page byte 3: QUEUE ALGORITHM MODIFIER 1 (unrestricted reordering). */
const MODE_QAM_UNRESTRICTED = 0x10;
/** Informational exceptions byte 2: exception reporting disabled. */
const MODE_DEXCPT = 0x08;
/** Mode parameter header device-specific parameter (SBC-3 6.4.1). */
const DEVICE_SPECIFIC_WP = 0x80;
const DEVICE_SPECIFIC_DPOFUA = 0x10;

/** Page length (bytes after the 2-byte header) of a supported page, or -1. */
export function modePageLength(page: number): number {
  switch (page) {
    case SCSI_MODE_PAGE_CACHING:
      return CACHING_PAGE_LENGTH;
    case SCSI_MODE_PAGE_CONTROL:
      return CONTROL_PAGE_LENGTH;
    case SCSI_MODE_PAGE_INFORMATIONAL_EXCEPTIONS:
      return INFORMATIONAL_EXCEPTIONS_PAGE_LENGTH;
    default:
      return -1;
  }
}

/**
 * Writes one page at buf[o..] for page control pc (current, changeable mask, default); returns
 * its length including the header. PS stays 0: nothing is saveable.
 */
export function writeModePage(lun: ScsiLun, page: number, pc: number, buf: Uint8Array, o: number): number {
  const plen = modePageLength(page);
  buf.fill(0, o, o + 2 + plen);
  buf[o] = page;
  buf[o + 1] = plen;
  const changeable = pc === SCSI_MODE_PC_CHANGEABLE;
  const current = pc === SCSI_MODE_PC_CURRENT;
  switch (page) {
    case SCSI_MODE_PAGE_CACHING: {
      const wce = changeable ? lun.info.writeCache : current ? lun.wce : lun.info.writeCache;
      if (wce) buf[o + 2] = MODE_WCE;
      break;
    }
    case SCSI_MODE_PAGE_CONTROL:
      if (changeable) {
        buf[o + 2] = MODE_D_SENSE;
      } else {
        if (current && lun.dSense) buf[o + 2] = MODE_D_SENSE;
        buf[o + 3] = MODE_QAM_UNRESTRICTED;
      }
      break;
    case SCSI_MODE_PAGE_INFORMATIONAL_EXCEPTIONS:
      if (!changeable) buf[o + 2] = MODE_DEXCPT;
      break;
  }
  return 2 + plen;
}

const ALL_PAGES: readonly number[] = [SCSI_MODE_PAGE_CACHING, SCSI_MODE_PAGE_CONTROL, SCSI_MODE_PAGE_INFORMATIONAL_EXCEPTIONS];

/** MODE SENSE(6) and (10); always completes synchronously. */
export function executeModeSense(lun: ScsiLun, task: ScsiTask): void {
  const cdb = task.cdb;
  const ten = cdb[0] === SCSI_OP_MODE_SENSE_10;
  const dbd = (cdb[1] & 0x08) !== 0;
  const llbaa = ten && (cdb[1] & 0x10) !== 0;
  const pc = cdb[2] >> 6;
  const page = cdb[2] & 0x3f;
  const subpage = cdb[3];
  const alloc = ten ? be16(cdb, 7) : cdb[4];
  if (pc === SCSI_MODE_PC_SAVED) {
    return lun.checkCondition(task, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_SAVING_PARAMETERS_NOT_SUPPORTED, fieldPointer(true, 2, 7));
  }
  if (page !== SCSI_MODE_PAGE_ALL && modePageLength(page) < 0) return lun.invalidCdb(task, 2, 5);
  if (subpage !== 0 && subpage !== SCSI_MODE_SUBPAGE_ALL) return lun.invalidCdb(task, 3, -1);

  const buf = lun.resp;
  const hdr = ten ? 8 : 4;
  buf.fill(0, 0, hdr);
  let o = hdr;
  if (!dbd) {
    const bdl = llbaa ? 16 : 8;
    buf.fill(0, o, o + bdl);
    // Changeable values: nothing in the block descriptor can change (all-zero mask).
    if (pc !== SCSI_MODE_PC_CHANGEABLE) {
      if (llbaa) {
        put64(buf, o, lun.numBlocks);
        put32(buf, o + 12, lun.blockSize);
      } else {
        put32(buf, o, lun.numBlocks > 0xffffffff ? 0xffffffff : lun.numBlocks);
        put24(buf, o + 5, lun.blockSize);
      }
    }
    if (ten) {
      if (llbaa) buf[4] = 0x01; // LONGLBA
      put16(buf, 6, bdl);
    } else {
      buf[3] = bdl;
    }
    o += bdl;
  }
  if (page === SCSI_MODE_PAGE_ALL) {
    for (let i = 0; i < ALL_PAGES.length; i++) o += writeModePage(lun, ALL_PAGES[i], pc, buf, o);
  } else {
    o += writeModePage(lun, page, pc, buf, o);
  }
  const deviceSpecific = (lun.info.readOnly ? DEVICE_SPECIFIC_WP : 0) | DEVICE_SPECIFIC_DPOFUA;
  if (ten) {
    put16(buf, 0, o - 2);
    buf[3] = deviceSpecific;
  } else {
    buf[0] = o - 1;
    buf[2] = deviceSpecific;
  }
  sendDataIn(task, buf, o, alloc);
}
