// Interrupt coalescing (SPDK's vhost_controller_set_coalescing): a queue completing more than
// iops_threshold requests per second signals the guest at most once per delay_base_us; below the
// threshold every completion batch is signalled at once. Rates are measured over 100 ms windows.
import { performance } from 'node:perf_hooks';

const WINDOW_MS = 100;

export class InterruptCoalescer {
  private delayMs = 0;
  private iopsThreshold = 0;
  private readonly completions: Float64Array;
  private readonly nextSignalAt: Float64Array;
  /** Queues above the threshold in the last window. */
  private readonly busy: Uint8Array;
  /** A signal is owed to the guest (deferred by coalescing). */
  readonly pending: Uint8Array;
  private pendingCount = 0;
  private windowStart = 0;

  constructor(queues: number) {
    this.completions = new Float64Array(queues);
    this.nextSignalAt = new Float64Array(queues);
    this.busy = new Uint8Array(queues);
    this.pending = new Uint8Array(queues);
  }

  get enabled(): boolean {
    return this.delayMs > 0;
  }

  configure(delayBaseUs: number, iopsThreshold: number): void {
    this.delayMs = delayBaseUs / 1000;
    this.iopsThreshold = iopsThreshold;
    this.completions.fill(0);
    this.busy.fill(0);
    this.windowStart = performance.now();
  }

  completed(queue: number): void {
    this.completions[queue]++;
  }

  /** The driver wants an interrupt for `queue`: true = signal now, false = deferred (pending). */
  signalNow(queue: number, now: number): boolean {
    if (this.busy[queue] === 0 || now >= this.nextSignalAt[queue]) {
      this.nextSignalAt[queue] = now + this.delayMs;
      if (this.pending[queue]) {
        this.pending[queue] = 0;
        this.pendingCount--;
      }
      return true;
    }
    if (!this.pending[queue]) {
      this.pending[queue] = 1;
      this.pendingCount++;
    }
    return false;
  }

  hasPending(): boolean {
    return this.pendingCount > 0;
  }

  /** Updates the per-queue rates; returns true when a deferred signal is due (call `due`). */
  tick(now: number): boolean {
    if (now - this.windowStart >= WINDOW_MS) {
      const perSecond = 1000 / (now - this.windowStart);
      for (let q = 0; q < this.completions.length; q++) {
        this.busy[q] = this.completions[q] * perSecond > this.iopsThreshold ? 1 : 0;
        this.completions[q] = 0;
      }
      this.windowStart = now;
    }
    return this.pendingCount > 0;
  }

  /** Whether queue q's deferred signal is due now. */
  due(q: number, now: number): boolean {
    return this.pending[q] === 1 && now >= this.nextSignalAt[q];
  }
}
