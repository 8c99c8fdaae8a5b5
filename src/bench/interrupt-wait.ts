// The load generator's interrupt mode over a front-end's request queues: calls enabled on every
// queue (EVENT_IDX used_event kept current by reap, or no NO_INTERRUPT flag), and a wait that
// sleeps in poll(2) on their call eventfds, then drains them.
import type { DriverQueue } from '../frontend/driver-queue.ts';
import { eventfdDrain } from '../sys/eventfd.ts';
import { PollSet } from '../sys/poll-set.ts';

export class InterruptWait {
  readonly #queues: readonly DriverQueue[];
  readonly #set: PollSet;

  constructor(queues: readonly DriverQueue[]) {
    this.#queues = queues;
    this.#set = new PollSet(queues.map((q) => q.callFd));
  }

  enable(): void {
    for (const q of this.#queues) q.enableCalls();
  }

  wait(timeoutMs: number): void {
    // enableCalls re-arms and says whether completions arrived meanwhile (then no sleep).
    let pending = false;
    for (const q of this.#queues) if (q.enableCalls()) pending = true;
    if (!pending) this.#set.wait(timeoutMs);
    for (const q of this.#queues) eventfdDrain(q.callFd);
  }
}
