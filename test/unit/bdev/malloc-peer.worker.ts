// Worker for malloc.test.ts: opens a channel from a spec in another thread, reads what the main
// thread wrote, then writes its own pattern for the main thread to read.
import { parentPort, workerData } from 'node:worker_threads';
import { openBdevChannel } from '../../../src/bdev/channel-open.ts';
import { SgList } from '../../../src/iovec/sg-list.ts';
import type { BdevChannelSpec, BdevIoWaiter } from '../../../src/bdev/bdev.ts';

const { spec } = workerData as { spec: BdevChannelSpec };
const ch = openBdevChannel(spec);
const statuses: number[] = [];
const waiter: BdevIoWaiter = { bdevIoDone: (s) => void statuses.push(s) };

const buf = new Uint8Array(2 * spec.blockSize);
const sg = new SgList(4);
sg.push(buf, 0, buf.length);
ch.read(3, 2, sg, 0, waiter);
const seen = Array.from(buf.subarray(0, 8));

buf.fill(0xa5);
ch.write(10, 2, sg, 0, waiter);
ch.close();
parentPort!.postMessage({ seen, statuses });
