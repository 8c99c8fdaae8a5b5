// NVMe facts the NVMe-oF initiator needs (NVMe Base 2.0, NVM Command Set 1.0, NVMe-oF 1.1):
// the submission/completion entry layout, opcodes, controller properties, Identify fields, and
// status codes with their names and the bdev status each maps to.
import { BDEV_EINVAL, BDEV_EIO, BDEV_ENOSPC, BDEV_ENOTSUP, BDEV_EROFS } from '../bdev.ts';

export const SQE_SIZE = 64;
export const CQE_SIZE = 16;

// Submission queue entry offsets.
export const SQE_OPC = 0;
export const SQE_FLAGS = 1; // PSDT in bits 7:6
export const SQE_CID = 2;
export const SQE_NSID = 4;
export const SQE_FCTYPE = 4; // fabrics commands
export const SQE_SGL_ADDR = 24;
export const SQE_SGL_LEN = 32;
export const SQE_SGL_TYPE = 39;
export const SQE_CDW10 = 40;
export const SQE_CDW11 = 44;
export const SQE_CDW12 = 48;
export const SQE_CDW13 = 52;
export const SQE_CDW14 = 56;
export const SQE_CDW15 = 60;

/** PSDT = 01b: the data pointer is an SGL (NVMe-oF always). */
export const SQE_FLAGS_SGL = 0x40;
/** SGL Data Block descriptor, subtype Offset: data in the capsule. */
export const SGL_DATA_BLOCK_OFFSET = 0x01;
/** SGL Transport Data Block descriptor (NVMe/TCP): data by C2HData / R2T + H2CData PDUs. */
export const SGL_TRANSPORT_DATA_BLOCK = 0x5a;

// Completion queue entry offsets.
export const CQE_DW0 = 0;
export const CQE_DW1 = 4;
export const CQE_SQHD = 8;
export const CQE_CID = 12;
export const CQE_STATUS = 14; // phase bit 0, SC 8:1, SCT 11:9, CRD 13:12, More 14, DNR 15

// Admin opcodes.
export const ADMIN_GET_LOG_PAGE = 0x02;
export const ADMIN_IDENTIFY = 0x06;
export const ADMIN_SET_FEATURES = 0x09;
export const ADMIN_GET_FEATURES = 0x0a;
export const ADMIN_KEEP_ALIVE = 0x18;
export const FABRICS_OPC = 0x7f;
export const FCTYPE_PROPERTY_SET = 0x00;
export const FCTYPE_CONNECT = 0x01;
export const FCTYPE_PROPERTY_GET = 0x04;

export const CNS_NAMESPACE = 0x00;
export const CNS_CONTROLLER = 0x01;
export const CNS_ACTIVE_NS_LIST = 0x02;
export const FEAT_NUMBER_OF_QUEUES = 0x07;
export const FEAT_KEEP_ALIVE_TIMER = 0x0f;

// NVM command set opcodes.
export const NVM_FLUSH = 0x00;
export const NVM_WRITE = 0x01;
export const NVM_READ = 0x02;
export const NVM_WRITE_ZEROES = 0x08;
export const NVM_DSM = 0x09;
/** DSM cdw11: Attribute - Deallocate. */
export const DSM_AD = 1 << 2;
/** Write Zeroes cdw12: Deallocate (the target may unmap the range). */
export const WZ_DEAC = 1 << 25;
export const DSM_RANGE_SIZE = 16;
/** DSM takes at most 256 ranges; NLB of a range is 32 bits. */
export const DSM_MAX_RANGES = 256;

// Controller properties (offsets into the register space, read with Property Get).
export const PROP_CAP = 0x00;
export const PROP_VS = 0x08;
export const PROP_CC = 0x14;
export const PROP_CSTS = 0x1c;
export const CC_EN = 1;
/** IOSQES = 6 (64-byte entries), IOCQES = 4 (16-byte entries). */
export const CC_IO_ENTRY_SIZES = (6 << 16) | (4 << 20);
export const CC_SHN_NORMAL = 1 << 14;
export const CSTS_RDY = 1;
export const CSTS_CFS = 2;
export const CSTS_SHST_MASK = 3 << 2;
export const CSTS_SHST_COMPLETE = 2 << 2;

// Status code types.
export const SCT_GENERIC = 0;
export const SCT_COMMAND_SPECIFIC = 1;
export const SCT_MEDIA = 2;
export const SCT_PATH = 3;

const GENERIC_NAMES: Record<number, string> = {
  0x00: 'SUCCESS',
  0x01: 'INVALID_OPCODE',
  0x02: 'INVALID_FIELD',
  0x03: 'COMMAND_ID_CONFLICT',
  0x04: 'DATA_TRANSFER_ERROR',
  0x05: 'ABORTED_POWER_LOSS',
  0x06: 'INTERNAL_DEVICE_ERROR',
  0x07: 'ABORTED_BY_REQUEST',
  0x08: 'ABORTED_SQ_DELETION',
  0x0b: 'INVALID_NAMESPACE_OR_FORMAT',
  0x0c: 'COMMAND_SEQUENCE_ERROR',
  0x0d: 'INVALID_SGL_SEG_DESCRIPTOR',
  0x0f: 'DATA_SGL_LENGTH_INVALID',
  0x11: 'INVALID_SGL_DESCRIPTOR_TYPE',
  0x15: 'INVALID_SGL_OFFSET',
  0x1a: 'NAMESPACE_NOT_READY',
  0x20: 'NAMESPACE_IS_WRITE_PROTECTED',
  0x80: 'LBA_OUT_OF_RANGE',
  0x81: 'CAPACITY_EXCEEDED',
  0x82: 'NAMESPACE_NOT_READY',
  0x83: 'RESERVATION_CONFLICT',
};
const FABRICS_NAMES: Record<number, string> = { 0x80: 'INCOMPATIBLE_FORMAT', 0x81: 'CONTROLLER_BUSY', 0x82: 'CONNECT_INVALID_PARAMETERS', 0x83: 'CONNECT_RESTART_DISCOVERY', 0x84: 'CONNECT_INVALID_HOST' };
const MEDIA_NAMES: Record<number, string> = { 0x80: 'WRITE_FAULTS', 0x81: 'UNRECOVERED_READ_ERROR', 0x85: 'COMPARE_FAILURE', 0x86: 'ACCESS_DENIED', 0x87: 'DEALLOCATED_OR_UNWRITTEN_BLOCK' };

/** "SCT/SC name (0xTT/0xCC)", for logs and errors. */
export function nvmeStatusName(status: number): string {
  const sc = (status >> 1) & 0xff;
  const sct = (status >> 9) & 7;
  const names = sct === SCT_GENERIC ? GENERIC_NAMES : sct === SCT_COMMAND_SPECIFIC ? FABRICS_NAMES : sct === SCT_MEDIA ? MEDIA_NAMES : {};
  const n = names[sc] ?? (sct === SCT_PATH ? 'PATH_ERROR' : 'STATUS');
  return `${n} (sct 0x${sct.toString(16)}, sc 0x${sc.toString(16).padStart(2, '0')})`;
}

/** The bdev status a non-zero NVMe completion status (CQE dword 3 bits 31:16) completes an I/O with. */
export function nvmeStatusToBdev(status: number): number {
  const sc = (status >> 1) & 0xff;
  const sct = (status >> 9) & 7;
  if (sct === SCT_GENERIC) {
    if (sc === 0x01 || sc === 0x02) return BDEV_ENOTSUP;
    if (sc === 0x80) return BDEV_EINVAL;
    if (sc === 0x81) return BDEV_ENOSPC;
    if (sc === 0x20) return BDEV_EROFS;
  }
  return BDEV_EIO;
}

/** Status with DNR clear that a host may retry (path errors, aborted for SQ deletion, namespace not ready). */
export function nvmeStatusRetryable(status: number): boolean {
  if ((status & 0x8000) !== 0) return false;
  const sc = (status >> 1) & 0xff;
  const sct = (status >> 9) & 7;
  return sct === SCT_PATH || (sct === SCT_GENERIC && (sc === 0x08 || sc === 0x82 || sc === 0x1a));
}

function ascii(b: Uint8Array, off: number, len: number): string {
  let s = '';
  for (let i = off; i < off + len && b[i] !== 0; i++) s += String.fromCharCode(b[i]);
  return s.trim();
}

export interface IdentifyController {
  vid: number;
  serialNumber: string;
  modelNumber: string;
  firmwareRevision: string;
  /** Max data transfer as a power of two of the minimum page size (0 = no limit). */
  mdts: number;
  cntlid: number;
  version: number;
  /** Keep Alive Support granularity in 100 ms units (0 = no keep alive). */
  kas: number;
  oncs: number;
  /** Volatile write cache present. */
  vwc: boolean;
  nn: number;
  /** Max in-capsule data of an I/O command, bytes (IOCCSZ x 16 - 64). */
  inCapsuleBytes: number;
  subnqn: string;
  multiController: boolean;
}

export const ONCS_DSM = 1 << 2;
export const ONCS_WRITE_ZEROES = 1 << 3;

export function parseIdentifyController(b: Uint8Array): IdentifyController {
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  const ioccsz = dv.getUint32(1792, true);
  return {
    vid: dv.getUint16(0, true),
    serialNumber: ascii(b, 4, 20),
    modelNumber: ascii(b, 24, 40),
    firmwareRevision: ascii(b, 64, 8),
    mdts: b[77],
    cntlid: dv.getUint16(78, true),
    version: dv.getUint32(80, true),
    kas: dv.getUint16(320, true),
    oncs: dv.getUint16(520, true),
    vwc: (b[525] & 1) !== 0,
    nn: dv.getUint32(516, true),
    inCapsuleBytes: ioccsz >= 4 ? ioccsz * 16 - SQE_SIZE : 0,
    subnqn: ascii(b, 768, 256),
    multiController: (b[76] & 2) !== 0,
  };
}

export interface IdentifyNamespace {
  /** Size in logical blocks (NSZE). */
  nsze: number;
  lbaBytes: number;
  /** Metadata bytes per block of the format in use (vhostd needs 0). */
  metadataBytes: number;
  nguid: string;
  eui64: string;
  /** Reads of deallocated blocks return zeroes (DLFEAT read behaviour 001b). */
  deallocReadsZero: boolean;
  canShare: boolean;
}

const hex = (b: Uint8Array, off: number, len: number): string => Buffer.from(b.subarray(off, off + len)).toString('hex');

export function parseIdentifyNamespace(b: Uint8Array): IdentifyNamespace {
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  const nsze = Number(dv.getBigUint64(0, true));
  const fmt = b[26] & 0x0f;
  const lbaf = 128 + fmt * 4;
  return {
    nsze,
    lbaBytes: 2 ** b[lbaf + 2],
    metadataBytes: dv.getUint16(lbaf, true),
    nguid: hex(b, 104, 16),
    eui64: hex(b, 120, 8),
    deallocReadsZero: (b[33] & 7) === 1,
    canShare: (b[30] & 1) !== 0,
  };
}

/** NQN as NVMe Base 4.5 allows: up to 223 bytes of UTF-8, "nqn." prefix (or the discovery NQN). */
export function checkNqn(nqn: string): string | null {
  const n = Buffer.byteLength(nqn);
  if (n === 0 || n > 223) return `${n} bytes (1..223)`;
  if (!nqn.startsWith('nqn.')) return 'does not start with "nqn."';
  return null;
}
