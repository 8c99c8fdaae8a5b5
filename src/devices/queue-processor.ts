// What a device does with one of its virtqueues inside a reactor.
import type { SplitVirtqueue } from '../virtio/split-virtqueue.ts';

export interface QueueProcessor {
  /** The queue started (or was rebound to a new memory table). */
  attach(vq: SplitVirtqueue): void;
  /** Pops and handles available requests; returns how many. Completions go through the device's used-ring flush. */
  process(): number;
  /** Requests popped and not completed yet. */
  inflight(): number;
  /** The queue stopped (inflight() is 0 by then). */
  detach(): void;
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
  reset(): void;
  close(): void;
}
