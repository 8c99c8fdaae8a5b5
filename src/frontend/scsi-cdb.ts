// SCSI CDBs the front-end sends (SPC-4 / SBC-3, big-endian fields), written into a caller's
// buffer; each builder returns the CDB length. Plus parsers for the replies tests check.

export const TEST_UNIT_READY = 0x00;
export const REQUEST_SENSE = 0x03;
export const INQUIRY = 0x12;
export const MODE_SENSE_6 = 0x1a;
export const READ_10 = 0x28;
export const WRITE_10 = 0x2a;
export const SYNCHRONIZE_CACHE_10 = 0x35;
export const UNMAP = 0x42;
export const MODE_SENSE_10 = 0x5a;
export const READ_16 = 0x88;
export const WRITE_16 = 0x8a;
export const SERVICE_ACTION_IN_16 = 0x9e;
export const SAI_READ_CAPACITY_16 = 0x10;
export const REPORT_LUNS = 0xa0;

/** SCSI status bytes. */
export const SAM_STAT_GOOD = 0x00;
export const SAM_STAT_CHECK_CONDITION = 0x02;
export const SAM_STAT_BUSY = 0x08;
export const SAM_STAT_RESERVATION_CONFLICT = 0x18;
export const SAM_STAT_TASK_SET_FULL = 0x28;

/** Bytes of one UNMAP block descriptor and of the parameter list header. */
export const UNMAP_HEADER_SIZE = 8;
export const UNMAP_DESCRIPTOR_SIZE = 16;

function be16(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 8) & 0xff;
  b[off + 1] = v & 0xff;
}

function be32(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 24) & 0xff;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}

/** v: a non-negative safe integer. */
function be64(b: Uint8Array, off: number, v: number): void {
  be32(b, off, Math.floor(v / 4294967296));
  be32(b, off + 4, v % 4294967296);
}

function readBe32(b: Uint8Array, off: number): number {
  return ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
}

function zero(cdb: Uint8Array, len: number): void {
  cdb.fill(0, 0, len);
}

export function cdbTestUnitReady(cdb: Uint8Array): number {
  zero(cdb, 6);
  cdb[0] = TEST_UNIT_READY;
  return 6;
}

export function cdbRequestSense(cdb: Uint8Array, allocLen: number, desc = false): number {
  zero(cdb, 6);
  cdb[0] = REQUEST_SENSE;
  cdb[1] = desc ? 1 : 0;
  cdb[4] = allocLen & 0xff;
  return 6;
}

export function cdbInquiry(cdb: Uint8Array, evpd: boolean, page: number, allocLen: number): number {
  zero(cdb, 6);
  cdb[0] = INQUIRY;
  cdb[1] = evpd ? 1 : 0;
  cdb[2] = page & 0xff;
  be16(cdb, 3, allocLen);
  return 6;
}

export function cdbReadCapacity16(cdb: Uint8Array, allocLen = 32): number {
  zero(cdb, 16);
  cdb[0] = SERVICE_ACTION_IN_16;
  cdb[1] = SAI_READ_CAPACITY_16;
  be32(cdb, 10, allocLen);
  return 16;
}

/** READ(10) / WRITE(10): opcode, flags (FUA 0x08), LBA u32, group, blocks u16, control. */
export function cdbRw10(cdb: Uint8Array, opcode: number, lba: number, blocks: number, fua = false): number {
  zero(cdb, 10);
  cdb[0] = opcode;
  cdb[1] = fua ? 0x08 : 0;
  be32(cdb, 2, lba);
  be16(cdb, 7, blocks);
  return 10;
}

/** READ(16) / WRITE(16): opcode, flags, LBA u64, blocks u32, group, control. */
export function cdbRw16(cdb: Uint8Array, opcode: number, lba: number, blocks: number, fua = false): number {
  zero(cdb, 16);
  cdb[0] = opcode;
  cdb[1] = fua ? 0x08 : 0;
  be64(cdb, 2, lba);
  be32(cdb, 10, blocks);
  return 16;
}

export function cdbSynchronizeCache10(cdb: Uint8Array, lba = 0, blocks = 0): number {
  zero(cdb, 10);
  cdb[0] = SYNCHRONIZE_CACHE_10;
  be32(cdb, 2, lba);
  be16(cdb, 7, blocks);
  return 10;
}

export function cdbUnmap(cdb: Uint8Array, paramListLen: number): number {
  zero(cdb, 10);
  cdb[0] = UNMAP;
  be16(cdb, 7, paramListLen);
  return 10;
}

export interface LbaRange {
  lba: number;
  blocks: number;
}

/** The UNMAP parameter list for ranges; returns its length. dst needs 8 + 16 * n bytes. */
export function unmapParameterList(dst: Uint8Array, ranges: readonly LbaRange[]): number {
  const len = UNMAP_HEADER_SIZE + UNMAP_DESCRIPTOR_SIZE * ranges.length;
  dst.fill(0, 0, len);
  be16(dst, 0, len - 2);
  be16(dst, 2, UNMAP_DESCRIPTOR_SIZE * ranges.length);
  for (let i = 0; i < ranges.length; i++) {
    const o = UNMAP_HEADER_SIZE + UNMAP_DESCRIPTOR_SIZE * i;
    be64(dst, o, ranges[i].lba);
    be32(dst, o + 8, ranges[i].blocks);
  }
  return len;
}

export function cdbReportLuns(cdb: Uint8Array, selectReport: number, allocLen: number): number {
  zero(cdb, 12);
  cdb[0] = REPORT_LUNS;
  cdb[2] = selectReport & 0xff;
  be32(cdb, 6, allocLen);
  return 12;
}

export interface ModeSenseParams {
  page: number;
  subpage?: number;
  /** Page control: 0 current, 1 changeable, 2 default, 3 saved. */
  pc?: number;
  /** Disable block descriptors. */
  dbd?: boolean;
  allocLen?: number;
  /** MODE SENSE(10) instead of (6). */
  ten?: boolean;
}

export function cdbModeSense(cdb: Uint8Array, p: ModeSenseParams): number {
  const pageByte = (((p.pc ?? 0) & 3) << 6) | (p.page & 0x3f);
  if (p.ten) {
    zero(cdb, 10);
    cdb[0] = MODE_SENSE_10;
    cdb[1] = p.dbd ? 0x08 : 0;
    cdb[2] = pageByte;
    cdb[3] = p.subpage ?? 0;
    be16(cdb, 7, p.allocLen ?? 512);
    return 10;
  }
  zero(cdb, 6);
  cdb[0] = MODE_SENSE_6;
  cdb[1] = p.dbd ? 0x08 : 0;
  cdb[2] = pageByte;
  cdb[3] = p.subpage ?? 0;
  cdb[4] = Math.min(p.allocLen ?? 255, 255);
  return 6;
}

// ---- replies ----

export interface SenseInfo {
  key: number;
  asc: number;
  ascq: number;
}

/** Sense key / ASC / ASCQ from fixed (0x70/0x71) or descriptor (0x72/0x73) sense; null otherwise. */
export function parseSense(sense: Uint8Array, len = sense.length): SenseInfo | null {
  if (len < 1) return null;
  const code = sense[0] & 0x7f;
  if ((code === 0x70 || code === 0x71) && len >= 14) return { key: sense[2] & 0x0f, asc: sense[12], ascq: sense[13] };
  if ((code === 0x72 || code === 0x73) && len >= 4) return { key: sense[1] & 0x0f, asc: sense[2], ascq: sense[3] };
  return null;
}

export interface ReadCapacity16 {
  /** Last LBA (the capacity is lastLba + 1 blocks). */
  lastLba: number;
  blockSize: number;
  logicalPerPhysicalExponent: number;
  /** Logical block provisioning management enabled (thin provisioned) and read-zeroes. */
  lbpme: boolean;
  lbprz: boolean;
}

export function parseReadCapacity16(d: Uint8Array): ReadCapacity16 {
  return {
    lastLba: readBe32(d, 0) * 4294967296 + readBe32(d, 4),
    blockSize: readBe32(d, 8),
    logicalPerPhysicalExponent: d[13] & 0x0f,
    lbpme: (d[14] & 0x80) !== 0,
    lbprz: (d[14] & 0x40) !== 0,
  };
}

/** The 8-byte LUN entries of REPORT LUNS data (list length from the header, clamped to the data). */
export function parseReportLuns(d: Uint8Array): Uint8Array[] {
  if (d.length < 8) return [];
  const listLen = readBe32(d, 0);
  const out: Uint8Array[] = [];
  for (let o = 8; o + 8 <= d.length && o < 8 + listLen; o += 8) out.push(d.slice(o, o + 8));
  return out;
}

/** LUN number from a REPORT LUNS entry (peripheral 0x00 or flat 0x40 addressing); -1 otherwise. */
export function lunNumber(entry: Uint8Array): number {
  const method = entry[0] >> 6;
  if (method === 0 || method === 1) return ((entry[0] & 0x3f) << 8) | entry[1];
  return -1;
}
