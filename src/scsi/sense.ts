// Sense data (SPC-4 4.5): fixed format (0x70) or descriptor format (0x72), written in place into a
// preallocated buffer (the task's sense buffer or a REQUEST SENSE response).
import type { ScsiTask } from './scsi-task.ts';
import { put16, put32, put64 } from './cdb.ts';
import {
  SCSI_FIXED_SENSE_LENGTH,
  SCSI_SENSE_RESPONSE_DESCRIPTOR_CURRENT,
  SCSI_SENSE_RESPONSE_FIXED_CURRENT,
  SCSI_STATUS_CHECK_CONDITION,
} from './scsi-constants.ts';

/** No INFORMATION field / no sense-key specific field. */
export const SENSE_NONE = -1;

const SKSV = 0x80;
const SKS_C_D = 0x40;
const SKS_BPV = 0x08;

/**
 * Sense-key specific field pointer (SPC-4 4.5.2.4.2) packed in 24 bits: which byte (and
 * optionally which bit, -1 for none) of the CDB (inCdb) or of the parameter list was wrong.
 */
export function fieldPointer(inCdb: boolean, byte: number, bit: number): number {
  let b0 = SKSV | (inCdb ? SKS_C_D : 0);
  if (bit >= 0) b0 |= SKS_BPV | (bit & 7);
  return (b0 << 16) | (byte & 0xffff);
}

/**
 * Writes sense data into dst and returns its length. ascAscq is (ASC << 8) | ASCQ; info is the
 * INFORMATION field (SENSE_NONE for none); sks a fieldPointer() value (SENSE_NONE for none).
 */
export function writeSense(dst: Uint8Array, descriptor: boolean, key: number, ascAscq: number, info: number, sks: number): number {
  if (descriptor) {
    dst.fill(0, 0, 8);
    dst[0] = SCSI_SENSE_RESPONSE_DESCRIPTOR_CURRENT;
    dst[1] = key & 0x0f;
    dst[2] = ascAscq >>> 8;
    dst[3] = ascAscq & 0xff;
    let len = 8;
    if (info >= 0) {
      // Information descriptor (SPC-4 4.5.2.2)
      dst.fill(0, len, len + 12);
      dst[len] = 0x00;
      dst[len + 1] = 0x0a;
      dst[len + 2] = 0x80; // VALID
      put64(dst, len + 4, info);
      len += 12;
    }
    if (sks >= 0) {
      // Sense key specific descriptor (SPC-4 4.5.2.4)
      dst.fill(0, len, len + 8);
      dst[len] = 0x02;
      dst[len + 1] = 0x06;
      dst[len + 4] = sks >>> 16;
      put16(dst, len + 5, sks & 0xffff);
      len += 8;
    }
    dst[7] = len - 8;
    return len;
  }
  dst.fill(0, 0, SCSI_FIXED_SENSE_LENGTH);
  dst[0] = SCSI_SENSE_RESPONSE_FIXED_CURRENT;
  dst[2] = key & 0x0f;
  if (info >= 0 && info <= 0xffffffff) {
    dst[0] |= 0x80; // VALID: the INFORMATION field is meaningful
    put32(dst, 3, info);
  }
  dst[7] = SCSI_FIXED_SENSE_LENGTH - 8;
  dst[12] = ascAscq >>> 8;
  dst[13] = ascAscq & 0xff;
  if (sks >= 0) {
    dst[15] = sks >>> 16;
    put16(dst, 16, sks & 0xffff);
  }
  return SCSI_FIXED_SENSE_LENGTH;
}

/** Completes the task's result as CHECK CONDITION with the given sense. */
export function setCheckCondition(task: ScsiTask, descriptor: boolean, key: number, ascAscq: number, info: number, sks: number): void {
  task.status = SCSI_STATUS_CHECK_CONDITION;
  task.senseLength = writeSense(task.sense, descriptor, key, ascAscq, info, sks);
  task.transferred = 0;
}
