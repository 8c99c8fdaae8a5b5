// The virtio-scsi event queue (virtqueue 1): keeps event buffers posted, parses what the device
// returns (transport resets, param changes) and reposts each buffer.
import type { GuestMemoryArena } from './guest-memory-arena.ts';
import { BufferList, type DriverQueue } from './driver-queue.ts';
import { VirtioScsiError } from './virtio-scsi-error.ts';
import * as W from './virtio-scsi-wire.ts';

export class ScsiEventQueue {
  readonly queue: DriverQueue;
  /** Every event received, in order. */
  readonly events: W.ScsiEvent[] = [];
  onEvent: ((e: W.ScsiEvent) => void) | null = null;
  private readonly arena: GuestMemoryArena;
  private readonly gpas: number[] = [];
  private readonly out = new BufferList(1);
  private readonly in = new BufferList(1);
  private waiters: ((e: W.ScsiEvent) => void)[] = [];
  private read = 0;

  constructor(arena: GuestMemoryArena, queue: DriverQueue, buffers: number, regionIndex: number) {
    this.arena = arena;
    this.queue = queue;
    const n = Math.min(buffers, queue.size);
    for (let i = 0; i < n; i++) this.gpas.push(arena.alloc(W.VIRTIO_SCSI_EVENT_SIZE, 16, regionIndex));
  }

  /** Posts every buffer and kicks. */
  start(): void {
    for (let i = 0; i < this.gpas.length; i++) this.post(i);
    this.queue.kick();
  }

  private post(i: number): void {
    const gpa = this.gpas[i];
    this.arena.bytesAt(gpa, W.VIRTIO_SCSI_EVENT_SIZE).fill(0);
    this.out.clear();
    this.in.clear().push(gpa, W.VIRTIO_SCSI_EVENT_SIZE);
    this.queue.add(this.out, this.in, i, false);
  }

  /** Reaps, records and reposts (throws DriverQueueError on a device bug). */
  reap(): void {
    const n = this.queue.pollUsed();
    for (let k = 0; k < n; k++) {
      const i = this.queue.completedTokens[k];
      const ev = W.decodeEvent(this.arena.bytesAt(this.gpas[i], W.VIRTIO_SCSI_EVENT_SIZE), 0);
      this.post(i);
      this.events.push(ev);
      this.onEvent?.(ev);
      const w = this.waiters.shift();
      if (w) {
        this.read++;
        w(ev);
      }
    }
    if (n > 0) this.queue.kick();
  }

  /** The next event not yet returned by nextEvent(), waiting up to timeoutMs. */
  next(timeoutMs: number): Promise<W.ScsiEvent> {
    if (this.read < this.events.length) return Promise.resolve(this.events[this.read++]);
    return new Promise((resolve, reject) => {
      const waiter = (e: W.ScsiEvent): void => {
        clearTimeout(timer);
        resolve(e);
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new VirtioScsiError('TIMEOUT', `no event within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }
}
