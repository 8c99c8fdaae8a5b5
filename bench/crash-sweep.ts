// `npm run crash-sweep`: the blobstore crash-consistency sweep over many random workloads, every
// crash point of each (npm test runs a small fixed workload). Options: --seeds N --steps N --first S.
import { parseArgs } from 'node:util';
import { runCrashSweep } from '../src/blob/crash-harness.ts';

const { values } = parseArgs({ options: { seeds: { type: 'string', default: '50' }, steps: { type: 'string', default: '60' }, first: { type: 'string', default: '1' } } });
const seeds = Number(values.seeds);
const first = Number(values.first);
let points = 0;
const t0 = Date.now();
for (let seed = first; seed < first + seeds; seed++) {
  const r = await runCrashSweep({ seed, steps: Number(values.steps) });
  points += r.crashPointsChecked;
  process.stdout.write(`seed ${seed}: ${r.steps} steps, ${r.crashPointsChecked} crash points, invariants held\n`);
}
process.stdout.write(`${seeds} seeds, ${points} crash points in ${((Date.now() - t0) / 1000).toFixed(1)} s: no violation\n`);
