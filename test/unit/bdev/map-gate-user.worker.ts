// Worker for file-map-gate.test.ts: enters the gate in a loop and stays inside for a while each
// time (a slow copy), counting entries, and entries seen after the owner said its close() returned.
import { workerData } from 'node:worker_threads';
import { MapGateUser } from '../../../src/bdev/modules/file-map-gate.ts';

const { gate, counters } = workerData as { gate: SharedArrayBuffer; counters: SharedArrayBuffer };
const c = new Int32Array(counters);
// c[0]: entries; c[1]: entries while c[2] (owner's "close returned") was set; c[3]: stop.
const user = new MapGateUser(gate);
while (Atomics.load(c, 3) === 0) {
  if (!user.enter()) continue;
  const t0 = performance.now();
  while (performance.now() - t0 < 0.02); // inside for ~20 us
  Atomics.add(c, 0, 1);
  if (Atomics.load(c, 2) === 1) Atomics.add(c, 1, 1);
  user.leave();
}
user.release();
