// Vital product data pages (SPC-4 7.8, SBC-3 6.5): what sd and sg_vpd read to learn the LUN's
// names, limits and thin provisioning.
import type { ScsiLun } from './scsi-lun.ts';
import { put16, put32, put64 } from './cdb.ts';
import {
  SCSI_CODE_SET_ASCII,
  SCSI_CODE_SET_BINARY,
  SCSI_DESIGNATOR_NAA,
  SCSI_DESIGNATOR_T10_VENDOR_ID,
  SCSI_MAX_UNMAP_DESCRIPTORS,
  SCSI_MAX_UNMAP_LBA_COUNT,
  SCSI_MAX_WRITE_SAME_BLOCKS,
  SCSI_VPD_BLOCK_DEVICE_CHARACTERISTICS,
  SCSI_VPD_BLOCK_LIMITS,
  SCSI_VPD_DEVICE_IDENTIFICATION,
  SCSI_VPD_LOGICAL_BLOCK_PROVISIONING,
  SCSI_VPD_SUPPORTED_PAGES,
  SCSI_VPD_UNIT_SERIAL_NUMBER,
} from './scsi-constants.ts';

/** Pages in ascending order, as the supported-pages page lists them. */
export const SUPPORTED_VPD_PAGES: readonly number[] = [
  SCSI_VPD_SUPPORTED_PAGES,
  SCSI_VPD_UNIT_SERIAL_NUMBER,
  SCSI_VPD_DEVICE_IDENTIFICATION,
  SCSI_VPD_BLOCK_LIMITS,
  SCSI_VPD_BLOCK_DEVICE_CHARACTERISTICS,
  SCSI_VPD_LOGICAL_BLOCK_PROVISIONING,
];

/** Page length of the block limits and block device characteristics pages (SBC-3). */
const VPD_B0_B1_PAGE_LENGTH = 0x3c;
const NON_ROTATING_MEDIUM = 0x0001;
const WSNZ = 0x01;
const LBPU = 0x80;
const LBPWS = 0x40;
const LBPWS10 = 0x20;
const LBPRZ = 0x04;
const PROVISIONING_TYPE_THIN = 0x02;

function header(buf: Uint8Array, peripheral: number, page: number, length: number): void {
  buf[0] = peripheral;
  buf[1] = page;
  put16(buf, 2, length);
}

/** Writes one VPD page into buf; returns its total length, or -1 for an unsupported page. */
export function writeVpdPage(lun: ScsiLun, page: number, buf: Uint8Array): number {
  const info = lun.info;
  switch (page) {
    case SCSI_VPD_SUPPORTED_PAGES: {
      const n = SUPPORTED_VPD_PAGES.length;
      header(buf, lun.peripheral, page, n);
      for (let i = 0; i < n; i++) buf[4 + i] = SUPPORTED_VPD_PAGES[i];
      return 4 + n;
    }
    case SCSI_VPD_UNIT_SERIAL_NUMBER: {
      header(buf, lun.peripheral, page, lun.serial.length);
      buf.set(lun.serial, 4);
      return 4 + lun.serial.length;
    }
    case SCSI_VPD_DEVICE_IDENTIFICATION: {
      let o = 4;
      // NAA designator, logical unit association, binary
      buf[o] = SCSI_CODE_SET_BINARY;
      buf[o + 1] = SCSI_DESIGNATOR_NAA;
      buf[o + 2] = 0;
      buf[o + 3] = lun.naa.length;
      buf.set(lun.naa, o + 4);
      o += 4 + lun.naa.length;
      // T10 vendor id designator, logical unit association, ASCII
      buf[o] = SCSI_CODE_SET_ASCII;
      buf[o + 1] = SCSI_DESIGNATOR_T10_VENDOR_ID;
      buf[o + 2] = 0;
      buf[o + 3] = lun.t10VendorId.length;
      buf.set(lun.t10VendorId, o + 4);
      o += 4 + lun.t10VendorId.length;
      header(buf, lun.peripheral, page, o - 4);
      return o;
    }
    case SCSI_VPD_BLOCK_LIMITS: {
      const len = 4 + VPD_B0_B1_PAGE_LENGTH;
      buf.fill(0, 0, len);
      header(buf, lun.peripheral, page, VPD_B0_B1_PAGE_LENGTH);
      const granularity = 1 << (info.physicalBlockExponent ?? 0);
      buf[4] = WSNZ;
      buf[5] = lun.cawMaxBlocks;
      put16(buf, 6, granularity);
      put32(buf, 8, info.maxTransferBlocks ?? 0);
      put32(buf, 12, info.optimalIoBoundary);
      if (info.unmapSupported) {
        put32(buf, 20, SCSI_MAX_UNMAP_LBA_COUNT);
        put32(buf, 24, SCSI_MAX_UNMAP_DESCRIPTORS);
        put32(buf, 28, granularity);
      }
      put64(buf, 36, SCSI_MAX_WRITE_SAME_BLOCKS);
      return len;
    }
    case SCSI_VPD_BLOCK_DEVICE_CHARACTERISTICS: {
      const len = 4 + VPD_B0_B1_PAGE_LENGTH;
      buf.fill(0, 0, len);
      header(buf, lun.peripheral, page, VPD_B0_B1_PAGE_LENGTH);
      put16(buf, 4, NON_ROTATING_MEDIUM);
      return len;
    }
    case SCSI_VPD_LOGICAL_BLOCK_PROVISIONING: {
      buf.fill(0, 0, 8);
      header(buf, lun.peripheral, page, 4);
      if (info.unmapSupported) {
        buf[5] = LBPU | LBPWS | LBPWS10 | (info.unmapReadsZero ? LBPRZ : 0);
        buf[6] = PROVISIONING_TYPE_THIN;
      }
      return 8;
    }
    default:
      return -1;
  }
}
