// How a driver's promise API learns of completions: a watch on each queue's call eventfd
// ('interrupt'), a 1 ms poll timer ('poll'), or nothing ('manual': the caller reaps). Shared by the
// virtio-scsi and virtio-blk drivers. Control plane: one closure per queue at start, none per request.
import { watchReadable, type FdWatch } from '../sys/fd-watch.ts';
import { eventfdDrain } from '../sys/eventfd.ts';
import type { DriverQueue } from './driver-queue.ts';

export type CompletionMode = 'interrupt' | 'poll' | 'manual';

export class CompletionPump {
  private readonly queues: readonly DriverQueue[];
  private readonly onQueue: (q: DriverQueue) => void;
  private readonly onError: (e: Error) => void;
  private watches: FdWatch[] = [];
  private timer: ReturnType<typeof setInterval> | null = null;

  /** onQueue must not throw (it runs in poll callbacks); onError gets eventfd failures. */
  constructor(queues: readonly DriverQueue[], onQueue: (q: DriverQueue) => void, onError: (e: Error) => void) {
    this.queues = queues;
    this.onQueue = onQueue;
    this.onError = onError;
  }

  start(mode: CompletionMode): void {
    this.stop();
    if (mode === 'interrupt') {
      for (const q of this.queues) {
        const fd = q.callFd;
        if (fd < 0) continue;
        this.watches.push(watchReadable(fd, () => {
          // Never throw out of a poll callback (it would crash the process).
          try {
            eventfdDrain(fd);
          } catch (e) {
            this.onError(e as Error);
          }
          this.onQueue(q);
        }));
      }
    } else if (mode === 'poll') {
      this.timer = setInterval(() => {
        for (const q of this.queues) this.onQueue(q);
      }, 1);
    }
  }

  stop(): void {
    for (const w of this.watches) w.stop();
    this.watches = [];
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
