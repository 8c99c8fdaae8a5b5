// virtio-scsi wire structs (virtio spec, device-types/scsi), little-endian, encoded in place
// with byte stores so the request path allocates nothing.

export const VIRTIO_SCSI_CDB_DEFAULT_SIZE = 32;
export const VIRTIO_SCSI_SENSE_DEFAULT_SIZE = 96;
/** lun[8], id u64, task_attr, prio, crn: the header before the CDB. */
export const VIRTIO_SCSI_CMD_REQ_FIXED_SIZE = 19;
/** sense_len u32, residual u32, status_qualifier u16, status u8, response u8: before the sense. */
export const VIRTIO_SCSI_CMD_RESP_FIXED_SIZE = 12;
export const VIRTIO_SCSI_CTRL_TMF_REQ_SIZE = 24;
export const VIRTIO_SCSI_CTRL_TMF_RESP_SIZE = 1;
export const VIRTIO_SCSI_CTRL_AN_REQ_SIZE = 16;
export const VIRTIO_SCSI_CTRL_AN_RESP_SIZE = 5;
export const VIRTIO_SCSI_EVENT_SIZE = 16;

// Feature bits.
export const VIRTIO_SCSI_F_INOUT = 0;
export const VIRTIO_SCSI_F_HOTPLUG = 1;
export const VIRTIO_SCSI_F_CHANGE = 2;
export const VIRTIO_SCSI_F_T10_PI = 3;

// Response codes.
export const VIRTIO_SCSI_S_OK = 0;
export const VIRTIO_SCSI_S_OVERRUN = 1;
export const VIRTIO_SCSI_S_ABORTED = 2;
export const VIRTIO_SCSI_S_BAD_TARGET = 3;
export const VIRTIO_SCSI_S_RESET = 4;
export const VIRTIO_SCSI_S_BUSY = 5;
export const VIRTIO_SCSI_S_TRANSPORT_FAILURE = 6;
export const VIRTIO_SCSI_S_TARGET_FAILURE = 7;
export const VIRTIO_SCSI_S_NEXUS_FAILURE = 8;
export const VIRTIO_SCSI_S_FAILURE = 9;
export const VIRTIO_SCSI_S_FUNCTION_COMPLETE = 0;
export const VIRTIO_SCSI_S_FUNCTION_SUCCEEDED = 10;
export const VIRTIO_SCSI_S_FUNCTION_REJECTED = 11;
export const VIRTIO_SCSI_S_INCORRECT_LUN = 12;

// Task attributes.
export const VIRTIO_SCSI_S_SIMPLE = 0;
export const VIRTIO_SCSI_S_ORDERED = 1;
export const VIRTIO_SCSI_S_HEAD = 2;
export const VIRTIO_SCSI_S_ACA = 3;

// Control queue request types and TMF subtypes.
export const VIRTIO_SCSI_T_TMF = 0;
export const VIRTIO_SCSI_T_AN_QUERY = 1;
export const VIRTIO_SCSI_T_AN_SUBSCRIBE = 2;
export const VIRTIO_SCSI_T_TMF_ABORT_TASK = 0;
export const VIRTIO_SCSI_T_TMF_ABORT_TASK_SET = 1;
export const VIRTIO_SCSI_T_TMF_CLEAR_ACA = 2;
export const VIRTIO_SCSI_T_TMF_CLEAR_TASK_SET = 3;
export const VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET = 4;
export const VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET = 5;
export const VIRTIO_SCSI_T_TMF_QUERY_TASK = 6;
export const VIRTIO_SCSI_T_TMF_QUERY_TASK_SET = 7;

// Asynchronous notification event bits.
export const VIRTIO_SCSI_EVT_ASYNC_OPERATIONAL_CHANGE = 2;
export const VIRTIO_SCSI_EVT_ASYNC_POWER_MGMT = 4;
export const VIRTIO_SCSI_EVT_ASYNC_EXTERNAL_REQUEST = 8;
export const VIRTIO_SCSI_EVT_ASYNC_MEDIA_CHANGE = 16;
export const VIRTIO_SCSI_EVT_ASYNC_MULTI_HOST = 32;
export const VIRTIO_SCSI_EVT_ASYNC_DEVICE_BUSY = 64;

// Event queue.
export const VIRTIO_SCSI_T_NO_EVENT = 0;
export const VIRTIO_SCSI_T_TRANSPORT_RESET = 1;
export const VIRTIO_SCSI_T_ASYNC_NOTIFY = 2;
export const VIRTIO_SCSI_T_PARAM_CHANGE = 3;
export const VIRTIO_SCSI_T_EVENTS_MISSED = 0x80000000;
export const VIRTIO_SCSI_EVT_RESET_HARD = 0;
export const VIRTIO_SCSI_EVT_RESET_RESCAN = 1;
export const VIRTIO_SCSI_EVT_RESET_REMOVED = 2;

export function cmdReqSize(cdbSize = VIRTIO_SCSI_CDB_DEFAULT_SIZE): number {
  return VIRTIO_SCSI_CMD_REQ_FIXED_SIZE + cdbSize;
}

export function cmdRespSize(senseSize = VIRTIO_SCSI_SENSE_DEFAULT_SIZE): number {
  return VIRTIO_SCSI_CMD_RESP_FIXED_SIZE + senseSize;
}

export function putU16(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
}

export function putU32(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = (v >>> 16) & 0xff;
  b[off + 3] = (v >>> 24) & 0xff;
}

/** v is a non-negative safe integer. */
export function putU64(b: Uint8Array, off: number, v: number): void {
  putU32(b, off, v % 4294967296);
  putU32(b, off + 4, Math.floor(v / 4294967296));
}

export function getU16(b: Uint8Array, off: number): number {
  return b[off] | (b[off + 1] << 8);
}

export function getU32(b: Uint8Array, off: number): number {
  return (b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24)) >>> 0;
}

/** Single-level LUN structure: `{1, target, 0x40 | (lun >> 8), lun & 0xff, 0, 0, 0, 0}`. */
export function putLun(b: Uint8Array, off: number, target: number, lun: number): void {
  b[off] = 1;
  b[off + 1] = target & 0xff;
  b[off + 2] = 0x40 | ((lun >>> 8) & 0x3f);
  b[off + 3] = lun & 0xff;
  b[off + 4] = 0;
  b[off + 5] = 0;
  b[off + 6] = 0;
  b[off + 7] = 0;
}

/** The REPORT LUNS well-known logical unit on target: `{1, target, 0xC1, 0x01, 0, 0, 0, 0}`. */
export function putReportLunsWellKnownLun(b: Uint8Array, off: number, target: number): void {
  putLun(b, off, target, 0);
  b[off + 2] = 0xc1;
  b[off + 3] = 0x01;
}

/**
 * virtio_scsi_cmd_req: lun[8] (already written at off), id, task_attr, prio, crn, cdb[cdbSize]
 * (cdb[0, cdbLen) copied, the rest zeroed).
 */
export function putCmdReqAfterLun(
  b: Uint8Array, off: number, id: number, taskAttr: number, prio: number, crn: number,
  cdb: Uint8Array, cdbLen: number, cdbSize: number,
): void {
  putU64(b, off + 8, id);
  b[off + 16] = taskAttr;
  b[off + 17] = prio;
  b[off + 18] = crn;
  const c = off + VIRTIO_SCSI_CMD_REQ_FIXED_SIZE;
  const n = cdbLen < cdbSize ? cdbLen : cdbSize;
  for (let i = 0; i < n; i++) b[c + i] = cdb[i];
  for (let i = n; i < cdbSize; i++) b[c + i] = 0;
}

/** Decoded virtio_scsi_cmd_resp fixed part; one object reused per slot. */
export class CmdResp {
  senseLen = 0;
  residual = 0;
  statusQualifier = 0;
  status = 0;
  response = 0;

  decode(b: Uint8Array, off: number): this {
    this.senseLen = getU32(b, off);
    this.residual = getU32(b, off + 4);
    this.statusQualifier = getU16(b, off + 8);
    this.status = b[off + 10];
    this.response = b[off + 11];
    return this;
  }
}

/** virtio_scsi_ctrl_tmf_req: u32 type (0), u32 subtype, lun[8] (written at off + 8 by the caller), u64 id. */
export function putTmfReq(b: Uint8Array, off: number, subtype: number, id: number): void {
  putU32(b, off, VIRTIO_SCSI_T_TMF);
  putU32(b, off + 4, subtype);
  putU64(b, off + 16, id);
}

/** virtio_scsi_ctrl_an_req: u32 type, lun[8] (at off + 4), u32 event_requested. */
export function putAnReq(b: Uint8Array, off: number, type: number, eventRequested: number): void {
  putU32(b, off, type);
  putU32(b, off + 12, eventRequested);
}

export interface ScsiEvent {
  /** Event type without the EVENTS_MISSED flag. */
  event: number;
  eventsMissed: boolean;
  lun: Uint8Array;
  /** Target and LUN decoded from the single-level LUN structure. */
  target: number;
  lunId: number;
  reason: number;
}

/** virtio_scsi_event: u32 event, lun[8], u32 reason. */
export function decodeEvent(b: Uint8Array, off: number): ScsiEvent {
  const raw = getU32(b, off);
  const lun = b.slice(off + 4, off + 12);
  return {
    event: (raw & ~VIRTIO_SCSI_T_EVENTS_MISSED) >>> 0,
    eventsMissed: (raw & VIRTIO_SCSI_T_EVENTS_MISSED) !== 0,
    lun,
    target: lun[1],
    lunId: ((lun[2] & 0x3f) << 8) | lun[3],
    reason: getU32(b, off + 12),
  };
}
