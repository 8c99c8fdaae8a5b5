// What a device does with one of its virtqueues inside a reactor.
import type { Virtqueue } from '../virtio/virtqueue.ts';
import type { DeviceControl } from '../reactor/mailbox-messages.ts';

export interface QueueProcessor {
  /** The queue started (or was rebound to a new memory table). */
  attach(vq: Virtqueue): void;
  /** Pops and handles available requests; returns how many. Completions go through the device's used-ring flush. */
  process(): number;
  /** Requests popped and not completed yet. */
  inflight(): number;
  /** The queue stopped (inflight() is 0 by then). */
  detach(): void;
  /**
   * Whether new avail entries are work for this processor now. The event queue keeps the guest's
   * buffers until an event needs one: their presence must not keep the reactor awake.
   */
  wantsAvail(): boolean;
}

/** Per-kind part of a virtio device running in a reactor. */
export interface VirtioDeviceModel {
  readonly kind: string;
  /** Processor for queue `index`, or null when the device has no such queue. */
  processorFor(index: number): QueueProcessor | null;
  setFeatures(features: bigint): void;
  /** Reaps backend completions (bdev channels); returns how many. */
  pollBackends(): number;
  /** Called every loop turn after the queues ran; for deferred work (events). */
  afterPoll(): void;
  /**
   * The reactor goes to sleep with nothing in flight (true), or woke and is about to poll (false).
   * State shared with other reactors may rely on it: a sleeping reactor starts no I/O.
   */
  setAsleep(asleep: boolean): void;
  /** Kind-specific control-plane commands (targets, bdev, resize); throws on ones it does not know. */
  control(cmd: DeviceControl): void;
  reset(): void;
  close(): void;
}
