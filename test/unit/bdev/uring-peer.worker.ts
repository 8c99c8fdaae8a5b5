// Worker for uring.test.ts: opens a uring channel from the bdev's spec in another thread (its own
// fd and ring), reads what the main thread wrote, then writes its own pattern for the main thread.
import { parentPort, workerData } from 'node:worker_threads';
import { openBdevChannel } from '../../../src/bdev/channel-open.ts';
import type { BdevChannelSpec, BdevIoWaiter } from '../../../src/bdev/bdev.ts';
import type { UringChannel } from '../../../src/bdev/modules/uring-channel.ts';
import { MappedMemory } from '../sys/mapped-memory.ts';

const { spec } = workerData as { spec: BdevChannelSpec };
const ch = openBdevChannel(spec) as UringChannel;
const statuses: number[] = [];
const waiter: BdevIoWaiter = { bdevIoDone: (s) => void statuses.push(s) };
const mem = new MappedMemory(1 << 16);
const sg = mem.sg([[0, 2 * spec.blockSize]]);
ch.read(3, 2, sg, 0, waiter);
const drainedRead = ch.drain(10_000);
const seen = Array.from(mem.bytes.subarray(0, 8));
mem.bytes.fill(0xa5, 0, 2 * spec.blockSize);
ch.write(10, 2, sg, 0, waiter);
const drainedWrite = ch.drain(10_000);
const engine = ch.engineKind;
const mapped = ch.mappedCompletions;
ch.close();
mem.close();
parentPort!.postMessage({ seen, statuses, drained: drainedRead && drainedWrite, engine, mapped });
