// Worker for unix-socket.test.ts: each round, waits for the socket file to appear and connects at
// once, counting connections refused (a file that exists before its socket listens).
import { workerData } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { connectUnix } from '../../../src/sys/unix-socket.ts';
import { closeFd } from '../../../src/sys/fd.ts';

const { path, shared, rounds } = workerData as { path: string; shared: SharedArrayBuffer; rounds: number };
// [0] round the main thread is in, [1] rounds the worker finished, [2] refused, [3] connected
const w = new Int32Array(shared);
for (let r = 0; r < rounds; r++) {
  while (Atomics.load(w, 0) < r) Atomics.wait(w, 0, Atomics.load(w, 0), 100);
  while (!existsSync(path));
  try {
    closeFd(connectUnix(path, false));
    Atomics.add(w, 3, 1);
  } catch (e) {
    if ((e as { code?: string }).code !== 'ECONNREFUSED') throw e;
    Atomics.add(w, 2, 1);
  }
  Atomics.store(w, 1, r + 1);
  Atomics.notify(w, 1);
}
