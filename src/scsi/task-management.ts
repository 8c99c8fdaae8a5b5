// Task management functions (SAM-5 7): the waiter a transport passes in, and the bookkeeping of a
// TMF that must wait until the tasks it aborted have really finished (their bdev I/O may still be
// writing into the data buffers, so the function completes only after it). Control path.
import type { ScsiIoContext } from './scsi-io-context.ts';
import { SCSI_TMF_FUNCTION_COMPLETE } from './scsi-constants.ts';

/** Receives the service response of a TMF (SCSI_TMF_*), possibly synchronously inside the call. */
export interface ScsiTmfWaiter {
  scsiTmfDone(response: number): void;
}

/** A TMF waiting for aborted tasks; each entry is (context, generation at abort time). */
export class PendingTmf {
  readonly waiter: ScsiTmfWaiter;
  readonly response: number;
  private readonly ctxs: ScsiIoContext[] = [];
  private readonly generations: number[] = [];

  constructor(waiter: ScsiTmfWaiter, response: number) {
    this.waiter = waiter;
    this.response = response;
  }

  waitFor(ctx: ScsiIoContext): void {
    this.ctxs.push(ctx);
    this.generations.push(ctx.generation);
  }

  /** True once every awaited context was released (its generation moved on). */
  get finished(): boolean {
    for (let i = 0; i < this.ctxs.length; i++) {
      if (this.ctxs[i].generation === this.generations[i]) return false;
    }
    return true;
  }
}

/** Completes one waiter after `count` TMFs (one per LUN) completed: target reset, I_T nexus reset. */
export class TmfJoin implements ScsiTmfWaiter {
  private remaining: number;
  private readonly waiter: ScsiTmfWaiter;

  constructor(count: number, waiter: ScsiTmfWaiter) {
    this.remaining = count;
    this.waiter = waiter;
    if (count === 0) waiter.scsiTmfDone(SCSI_TMF_FUNCTION_COMPLETE);
  }

  scsiTmfDone(_response: number): void {
    if (--this.remaining === 0) this.waiter.scsiTmfDone(SCSI_TMF_FUNCTION_COMPLETE);
  }
}
