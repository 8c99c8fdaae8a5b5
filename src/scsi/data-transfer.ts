// Moving command data between the task's data windows and preallocated buffers, with the
// allocation-length and buffer-size rules of SPC-4 4.2.5.6 (return min(available, allocation
// length, buffer); the transport computes the residual from task.transferred).
import type { ScsiTask } from './scsi-task.ts';
import { SCSI_STATUS_GOOD } from './scsi-constants.ts';

/** Usable bytes of the data-in window (never beyond the SgList's end). */
export function dataInWindow(task: ScsiTask): number {
  const sg = task.dataIn;
  if (sg === null) return 0;
  const n = Math.min(task.dataInLength, sg.length - task.dataInOffset);
  return n > 0 ? n : 0;
}

/** Usable bytes of the data-out window (never beyond the SgList's end). */
export function dataOutWindow(task: ScsiTask): number {
  const sg = task.dataOut;
  if (sg === null) return 0;
  const n = Math.min(task.dataOutLength, sg.length - task.dataOutOffset);
  return n > 0 ? n : 0;
}

/** Returns buf[0, min(available, allocLength, window)) as the command's data-in, status GOOD. */
export function sendDataIn(task: ScsiTask, buf: Uint8Array, available: number, allocLength: number): void {
  let n = available < allocLength ? available : allocLength;
  const w = dataInWindow(task);
  if (n > w) n = w;
  if (n > 0) n = task.dataIn!.copyIn(task.dataInOffset, buf, 0, n);
  task.transferred = n;
  task.status = SCSI_STATUS_GOOD;
  task.senseLength = 0;
}

/** Copies the first len bytes of the data-out window into dst; the caller checked the window. */
export function receiveDataOut(task: ScsiTask, dst: Uint8Array, len: number): number {
  if (len <= 0) return 0;
  return task.dataOut!.copyOut(task.dataOutOffset, dst, 0, len);
}
