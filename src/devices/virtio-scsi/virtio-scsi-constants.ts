// virtio-scsi constants (OASIS virtio spec, device type 8).
export const VIRTIO_SCSI_F_INOUT = 0n;
export const VIRTIO_SCSI_F_HOTPLUG = 1n;
export const VIRTIO_SCSI_F_CHANGE = 2n;
export const VIRTIO_SCSI_F_T10_PI = 3n;

export const VIRTIO_SCSI_CDB_SIZE = 32;
export const VIRTIO_SCSI_SENSE_SIZE = 96;
/** lun[8] id(8) task_attr prio crn cdb[32] */
export const VIRTIO_SCSI_REQ_HEADER_SIZE = 19 + VIRTIO_SCSI_CDB_SIZE;
/** With T10_PI: pi_bytesout(4) pi_bytesin(4) after crn. */
export const VIRTIO_SCSI_REQ_PI_HEADER_SIZE = VIRTIO_SCSI_REQ_HEADER_SIZE + 8;
/** sense_len(4) residual(4) status_qualifier(2) status(1) response(1) sense[96] */
export const VIRTIO_SCSI_RESP_SIZE = 12 + VIRTIO_SCSI_SENSE_SIZE;

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
export const VIRTIO_SCSI_S_FUNCTION_SUCCEEDED = 10;
export const VIRTIO_SCSI_S_FUNCTION_REJECTED = 11;
export const VIRTIO_SCSI_S_INCORRECT_LUN = 12;
export const VIRTIO_SCSI_S_FUNCTION_COMPLETE = 0;

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

/** TMF request: type(4) subtype(4) lun[8] id(8); response: u8. */
export const VIRTIO_SCSI_TMF_REQ_SIZE = 24;
/** AN request: type(4) lun[8] event_requested(4); response: event_actual(4) response(1). */
export const VIRTIO_SCSI_AN_REQ_SIZE = 16;
export const VIRTIO_SCSI_AN_RESP_SIZE = 5;

export const VIRTIO_SCSI_T_NO_EVENT = 0;
export const VIRTIO_SCSI_T_TRANSPORT_RESET = 1;
export const VIRTIO_SCSI_T_ASYNC_NOTIFY = 2;
export const VIRTIO_SCSI_T_PARAM_CHANGE = 3;
export const VIRTIO_SCSI_T_EVENTS_MISSED = 0x80000000;
export const VIRTIO_SCSI_EVT_RESET_HARD = 0;
export const VIRTIO_SCSI_EVT_RESET_RESCAN = 1;
export const VIRTIO_SCSI_EVT_RESET_REMOVED = 2;
/** event(4) lun[8] reason(4) */
export const VIRTIO_SCSI_EVENT_SIZE = 16;

export const VIRTIO_SCSI_CONTROLQ = 0;
export const VIRTIO_SCSI_EVENTQ = 1;
export const VIRTIO_SCSI_REQUESTQ_BASE = 2;
/** Targets addressable through lun[1]; SPDK allows 8, one byte allows 256. */
export const VIRTIO_SCSI_MAX_TARGETS = 256;
