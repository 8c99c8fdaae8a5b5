// One SCSI command as the transport (virtio-scsi, later others) hands it to the SCSI layer.
// Tasks are preallocated by the transport and reused; the SCSI layer fills the result fields
// and calls waiter.scsiTaskDone(task) exactly once (possibly synchronously inside execute()).
import type { SgList } from '../iovec/sg-list.ts';

export const SCSI_SENSE_BUFFER_SIZE = 252;

export interface ScsiTaskWaiter {
  scsiTaskDone(task: ScsiTask): void;
}

export class ScsiTask {
  // --- set by the transport before execute() ---
  /** CDB bytes, zero-padded; cdbLength is how many the transport received (16 or 32 for virtio). */
  readonly cdb = new Uint8Array(32);
  cdbLength = 0;
  /** Task tag as two 32-bit halves (virtio-scsi id), for ABORT TASK / QUERY TASK. */
  tagLo = 0;
  tagHi = 0;
  /** SAM task attribute (0 SIMPLE, 1 ORDERED, 2 HEAD OF QUEUE, 3 ACA). */
  taskAttr = 0;
  /** Device-readable data (data-out) window: bytes [dataOutOffset, dataOutOffset + dataOutLength) of dataOut. */
  dataOut: SgList | null = null;
  dataOutOffset = 0;
  dataOutLength = 0;
  /** Device-writable data (data-in) window. */
  dataIn: SgList | null = null;
  dataInOffset = 0;
  dataInLength = 0;
  waiter: ScsiTaskWaiter | null = null;
  /** Opaque slot for the transport (its request object). */
  transportContext: unknown = null;

  // --- set by the SCSI layer ---
  status = 0;
  readonly sense = new Uint8Array(SCSI_SENSE_BUFFER_SIZE);
  senseLength = 0;
  /** Bytes written into the data-in window (or consumed from data-out). Residual = window - this. */
  transferred = 0;
  /** True once aborted by a TMF; the transport reports ABORTED instead of the status. */
  aborted = false;

  /** Clears results before reuse. */
  resetResult(): void {
    this.status = 0;
    this.senseLength = 0;
    this.transferred = 0;
    this.aborted = false;
  }
}
