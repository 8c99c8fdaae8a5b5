// REQUEST SENSE (SPC-4 6.39): returns, as parameter data, the pending unit attention (consuming
// it) or whatever the caller reports; status GOOD. DESC selects the descriptor format.
import type { ScsiTask } from './scsi-task.ts';
import { sendDataIn } from './data-transfer.ts';
import { SENSE_NONE, writeSense } from './sense.ts';

/** scratch must hold 252 bytes; completes synchronously. */
export function executeRequestSense(task: ScsiTask, scratch: Uint8Array, key: number, ascAscq: number): void {
  const descriptor = (task.cdb[1] & 0x01) !== 0;
  const alloc = task.cdb[4];
  const n = writeSense(scratch, descriptor, key, ascAscq, SENSE_NONE, SENSE_NONE);
  sendDataIn(task, scratch, n, alloc);
}
