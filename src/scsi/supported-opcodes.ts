// REPORT SUPPORTED OPERATION CODES (SPC-4 6.35, MAINTENANCE IN service action 0x0C): the command
// table with CDB usage data (which CDB bits this implementation looks at). Linux sd asks for
// WRITE SAME(16)/(10) this way (reporting options 1) before using them.
import type { ScsiTask } from './scsi-task.ts';
import type { ScsiLun } from './scsi-lun.ts';
import { be16, be32, put16, put32 } from './cdb.ts';
import { sendDataIn } from './data-transfer.ts';
import * as C from './scsi-constants.ts';

interface OpcodeEntry {
  opcode: number;
  /** -1 when the opcode has no service actions. */
  serviceAction: number;
  /** CDB usage data: the opcode, then a mask of the bits used in each CDB byte. */
  usage: readonly number[];
  /** Present only when the LUN supports unmap. */
  unmapOnly?: boolean;
}

const F4 = [0xff, 0xff, 0xff, 0xff];
const F8 = [...F4, ...F4];

/** Sorted by opcode, then service action. */
const OPCODES: readonly OpcodeEntry[] = [
  { opcode: C.SCSI_OP_TEST_UNIT_READY, serviceAction: -1, usage: [0x00, 0, 0, 0, 0, 0] },
  { opcode: C.SCSI_OP_REQUEST_SENSE, serviceAction: -1, usage: [0x03, 0x01, 0, 0, 0xff, 0] },
  { opcode: C.SCSI_OP_READ_6, serviceAction: -1, usage: [0x08, 0x1f, 0xff, 0xff, 0xff, 0] },
  { opcode: C.SCSI_OP_WRITE_6, serviceAction: -1, usage: [0x0a, 0x1f, 0xff, 0xff, 0xff, 0] },
  { opcode: C.SCSI_OP_INQUIRY, serviceAction: -1, usage: [0x12, 0x03, 0xff, 0xff, 0xff, 0] },
  { opcode: C.SCSI_OP_MODE_SELECT_6, serviceAction: -1, usage: [0x15, 0x01, 0, 0, 0xff, 0] },
  { opcode: C.SCSI_OP_MODE_SENSE_6, serviceAction: -1, usage: [0x1a, 0x08, 0xff, 0xff, 0xff, 0] },
  { opcode: C.SCSI_OP_START_STOP_UNIT, serviceAction: -1, usage: [0x1b, 0, 0, 0, 0, 0] },
  { opcode: C.SCSI_OP_PREVENT_ALLOW_MEDIUM_REMOVAL, serviceAction: -1, usage: [0x1e, 0, 0, 0, 0, 0] },
  { opcode: C.SCSI_OP_READ_CAPACITY_10, serviceAction: -1, usage: [0x25, 0, ...F4, 0, 0, 0x01, 0] },
  { opcode: C.SCSI_OP_READ_10, serviceAction: -1, usage: [0x28, 0xe8, ...F4, 0, 0xff, 0xff, 0] },
  { opcode: C.SCSI_OP_WRITE_10, serviceAction: -1, usage: [0x2a, 0xe8, ...F4, 0, 0xff, 0xff, 0] },
  { opcode: C.SCSI_OP_VERIFY_10, serviceAction: -1, usage: [0x2f, 0xe6, ...F4, 0, 0xff, 0xff, 0] },
  { opcode: C.SCSI_OP_SYNCHRONIZE_CACHE_10, serviceAction: -1, usage: [0x35, 0, ...F4, 0, 0xff, 0xff, 0] },
  { opcode: C.SCSI_OP_WRITE_SAME_10, serviceAction: -1, usage: [0x41, 0xf9, ...F4, 0, 0xff, 0xff, 0] },
  { opcode: C.SCSI_OP_UNMAP, serviceAction: -1, usage: [0x42, 0x01, 0, 0, 0, 0, 0, 0xff, 0xff, 0], unmapOnly: true },
  { opcode: C.SCSI_OP_MODE_SELECT_10, serviceAction: -1, usage: [0x55, 0x01, 0, 0, 0, 0, 0, 0xff, 0xff, 0] },
  { opcode: C.SCSI_OP_MODE_SENSE_10, serviceAction: -1, usage: [0x5a, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, 0] },
  { opcode: C.SCSI_OP_READ_16, serviceAction: -1, usage: [0x88, 0xe8, ...F8, ...F4, 0, 0] },
  { opcode: C.SCSI_OP_COMPARE_AND_WRITE, serviceAction: -1, usage: [0x89, 0xe8, ...F8, 0, 0, 0, 0xff, 0, 0] },
  { opcode: C.SCSI_OP_WRITE_16, serviceAction: -1, usage: [0x8a, 0xe8, ...F8, ...F4, 0, 0] },
  { opcode: C.SCSI_OP_VERIFY_16, serviceAction: -1, usage: [0x8f, 0xe6, ...F8, ...F4, 0, 0] },
  { opcode: C.SCSI_OP_SYNCHRONIZE_CACHE_16, serviceAction: -1, usage: [0x91, 0, ...F8, ...F4, 0, 0] },
  { opcode: C.SCSI_OP_WRITE_SAME_16, serviceAction: -1, usage: [0x93, 0xf9, ...F8, ...F4, 0, 0] },
  {
    opcode: C.SCSI_OP_SERVICE_ACTION_IN_16,
    serviceAction: C.SCSI_SAI_READ_CAPACITY_16,
    usage: [0x9e, 0x1f, ...F8, ...F4, 0x01, 0],
  },
  { opcode: C.SCSI_OP_REPORT_LUNS, serviceAction: -1, usage: [0xa0, 0, 0xff, 0, 0, 0, ...F4, 0, 0] },
  {
    opcode: C.SCSI_OP_MAINTENANCE_IN,
    serviceAction: C.SCSI_MI_REPORT_SUPPORTED_OPERATION_CODES,
    usage: [0xa3, 0x1f, 0x87, 0xff, 0xff, 0xff, ...F4, 0, 0],
  },
  { opcode: C.SCSI_OP_READ_12, serviceAction: -1, usage: [0xa8, 0xe8, ...F4, ...F4, 0, 0] },
  { opcode: C.SCSI_OP_WRITE_12, serviceAction: -1, usage: [0xaa, 0xe8, ...F4, ...F4, 0, 0] },
  { opcode: C.SCSI_OP_VERIFY_12, serviceAction: -1, usage: [0xaf, 0xe6, ...F4, ...F4, 0, 0] },
];

const SUPPORT_NOT_SUPPORTED = 1;
const SUPPORT_STANDARD = 3;
const CTDP_ALL = 0x02;
const SERVACTV = 0x01;
const CTDP_ONE = 0x80;
const TIMEOUTS_DESCRIPTOR_LENGTH = 12;

function hasServiceActions(opcode: number): boolean {
  for (const e of OPCODES) if (e.opcode === opcode && e.serviceAction >= 0) return true;
  return false;
}

function writeTimeoutsDescriptor(buf: Uint8Array, o: number): number {
  buf.fill(0, o, o + TIMEOUTS_DESCRIPTOR_LENGTH);
  put16(buf, o, TIMEOUTS_DESCRIPTOR_LENGTH - 2); // no timeouts reported (0 = unspecified)
  return TIMEOUTS_DESCRIPTOR_LENGTH;
}

/** Always completes synchronously. */
export function executeReportSupportedOpcodes(lun: ScsiLun, task: ScsiTask): void {
  const cdb = task.cdb;
  const rctd = (cdb[2] & 0x80) !== 0;
  const options = cdb[2] & 0x07;
  const reqOpcode = cdb[3];
  const reqSa = be16(cdb, 4);
  const alloc = be32(cdb, 6);
  const unmap = lun.info.unmapSupported;
  const buf = lun.resp;

  if (options === 0) {
    let o = 4;
    for (const e of OPCODES) {
      if (e.unmapOnly && !unmap) continue;
      buf[o] = e.opcode;
      buf[o + 1] = 0;
      put16(buf, o + 2, e.serviceAction >= 0 ? e.serviceAction : 0);
      buf[o + 4] = 0;
      buf[o + 5] = (rctd ? CTDP_ALL : 0) | (e.serviceAction >= 0 ? SERVACTV : 0);
      put16(buf, o + 6, e.usage.length);
      o += 8;
      if (rctd) o += writeTimeoutsDescriptor(buf, o);
    }
    put32(buf, 0, o - 4);
    return sendDataIn(task, buf, o, alloc);
  }

  if (options > 3) return lun.invalidCdb(task, 2, 2);
  const withSa = hasServiceActions(reqOpcode);
  if (options === 1 && withSa) return lun.invalidCdb(task, 3, -1);
  if (options === 2 && !withSa) return lun.invalidCdb(task, 3, -1);
  let found: OpcodeEntry | null = null;
  for (const e of OPCODES) {
    if (e.opcode !== reqOpcode || (e.unmapOnly && !unmap)) continue;
    if (withSa && e.serviceAction !== reqSa) continue;
    found = e;
    break;
  }
  buf[0] = 0;
  buf[1] = (rctd ? CTDP_ONE : 0) | (found ? SUPPORT_STANDARD : SUPPORT_NOT_SUPPORTED);
  let o = 4;
  if (found) {
    put16(buf, 2, found.usage.length);
    for (let i = 0; i < found.usage.length; i++) buf[o + i] = found.usage[i];
    o += found.usage.length;
  } else {
    put16(buf, 2, 0);
  }
  if (rctd) o += writeTimeoutsDescriptor(buf, o);
  sendDataIn(task, buf, o, alloc);
}
