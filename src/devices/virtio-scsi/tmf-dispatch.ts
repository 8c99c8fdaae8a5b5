// Runs one virtio-scsi task management function against a target's LUN state. Shared by the
// control queue (a device in one reactor) and the scsi.tmf command (a TMF relayed to every
// reactor of a device whose request queues are spread over several).
import type { ScsiTarget } from '../../scsi/scsi-target.ts';
import type { ScsiTmfWaiter } from '../../scsi/task-management.ts';
import { SCSI_TMF_FUNCTION_REJECTED } from '../../scsi/scsi-constants.ts';
import { DeviceError } from '../device-error.ts';
import {
  VIRTIO_SCSI_T_TMF_ABORT_TASK,
  VIRTIO_SCSI_T_TMF_ABORT_TASK_SET,
  VIRTIO_SCSI_T_TMF_CLEAR_TASK_SET,
  VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET,
  VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET,
  VIRTIO_SCSI_T_TMF_QUERY_TASK,
  VIRTIO_SCSI_T_TMF_QUERY_TASK_SET,
} from './virtio-scsi-constants.ts';

/** Sends a TMF of a spread device to the control plane, which answers through relayDone(token). */
export interface ScsiTmfRelay {
  relayTmf(token: number, subtype: number, target: number, lun: number, tagLo: number, tagHi: number): void;
}

/** Functions that act on in-flight tasks (CLEAR ACA and unknown ones are rejected where they arrive). */
export function isTaskTmf(subtype: number): boolean {
  switch (subtype) {
    case VIRTIO_SCSI_T_TMF_ABORT_TASK:
    case VIRTIO_SCSI_T_TMF_ABORT_TASK_SET:
    case VIRTIO_SCSI_T_TMF_CLEAR_TASK_SET:
    case VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET:
    case VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET:
    case VIRTIO_SCSI_T_TMF_QUERY_TASK:
    case VIRTIO_SCSI_T_TMF_QUERY_TASK_SET:
      return true;
    default:
      return false;
  }
}

/** Answers through waiter.scsiTmfDone, now or once the affected commands completed. */
export function runTmf(target: ScsiTarget, subtype: number, lun: number, tagLo: number, tagHi: number, waiter: ScsiTmfWaiter): void {
  switch (subtype) {
    case VIRTIO_SCSI_T_TMF_ABORT_TASK:
      return target.abortTask(lun, tagLo, tagHi, waiter);
    case VIRTIO_SCSI_T_TMF_ABORT_TASK_SET:
    case VIRTIO_SCSI_T_TMF_CLEAR_TASK_SET:
      return target.abortTaskSet(lun, waiter);
    case VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET:
      return target.lunReset(lun, waiter);
    case VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET:
      return target.nexusReset(waiter);
    case VIRTIO_SCSI_T_TMF_QUERY_TASK:
      return target.queryTask(lun, tagLo, tagHi, waiter);
    case VIRTIO_SCSI_T_TMF_QUERY_TASK_SET:
      return target.queryTaskSet(lun, waiter);
    default:
      // CLEAR ACA (no ACA support) and unknown functions.
      return waiter.scsiTmfDone(SCSI_TMF_FUNCTION_REJECTED);
  }
}

const isU32 = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;

/**
 * Checks a TMF that crossed threads (mailbox, reactor event) field by field: the numbers go into
 * LUN lookups and tag compares, and a malformed one must fail loudly, not match nothing.
 */
export function checkTmfFields(where: string, f: { subtype: unknown; target: unknown; lun: unknown; tagLo: unknown; tagHi: unknown }): void {
  if (!isU32(f.subtype) || !isTaskTmf(f.subtype as number)) throw new DeviceError('BAD_TMF', `${where}: subtype ${String(f.subtype)} is not a task management function on tasks`);
  if (!Number.isInteger(f.target) || (f.target as number) < 0 || (f.target as number) > 255) throw new DeviceError('BAD_TMF', `${where}: target ${String(f.target)} is not 0..255`);
  // -1: a LUN address form we do not serve (answers INCORRECT LUN).
  if (!Number.isInteger(f.lun) || (f.lun as number) < -1 || (f.lun as number) > 0x3fff) throw new DeviceError('BAD_TMF', `${where}: lun ${String(f.lun)} is not -1..16383`);
  if (!isU32(f.tagLo) || !isU32(f.tagHi)) throw new DeviceError('BAD_TMF', `${where}: task tag is not two 32-bit words`);
}
