// Shared by the uring bdev tests: a waiter that records statuses, a run-and-drain helper, and the
// exchange with a channel opened from the same spec in a worker thread (uring-peer.worker.ts).
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { BDEV_OK, type BdevChannelSpec, type BdevIoWaiter } from '../../../src/bdev/bdev.ts';
import type { UringChannel } from '../../../src/bdev/modules/uring-channel.ts';
import type { MappedMemory } from '../sys/mapped-memory.ts';

export class Waiter implements BdevIoWaiter {
  statuses: number[] = [];
  bdevIoDone(status: number): void {
    this.statuses.push(status);
  }
}

/** Issues I/O with fn, then polls until all of it completed. */
export function run(ch: UringChannel, fn: (w: Waiter) => void): number[] {
  const w = new Waiter();
  fn(w);
  assert.equal(ch.drain(10_000), true, 'I/O completed');
  return w.statuses;
}

export interface PeerReply {
  seen: number[];
  statuses: number[];
  drained: boolean;
  engine: string;
  /** Reads and writes the worker's channel did through the file mapping. */
  mapped: number;
}

/**
 * Writes bytes 1..8 at block 3 through ch; a worker's channel opened from `spec` reads them and
 * writes 0xa5 to blocks 10-11, which ch must then read back. Returns the worker's reply.
 */
export async function exchangeWithPeer(ch: UringChannel, spec: BdevChannelSpec, mem: MappedMemory): Promise<PeerReply> {
  const sg = mem.sg([[0, 1024]]);
  mem.bytes.set([1, 2, 3, 4, 5, 6, 7, 8], 0);
  assert.deepEqual(run(ch, (w) => ch.write(3, 2, sg, 0, w)), [BDEV_OK]);
  const worker = new Worker(new URL('./uring-peer.worker.ts', import.meta.url), { workerData: { spec } });
  const reply = await new Promise<PeerReply>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  assert.deepEqual(reply.seen, [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(reply.statuses, [BDEV_OK, BDEV_OK]);
  mem.bytes.fill(0, 0, 1024);
  assert.deepEqual(run(ch, (w) => ch.read(10, 2, sg, 0, w)), [BDEV_OK]);
  assert.ok(mem.bytes.subarray(0, 1024).every((x) => x === 0xa5));
  return reply;
}
