// Guest memory for a load-generator job: rings plus one data buffer per slot.
import type { RegionSpec } from '../frontend/guest-memory-arena.ts';
import type { BenchJob } from './bench-job.ts';

const MIB = 1024 * 1024;

export function arenaSpecsFor(job: BenchJob): RegionSpec[] {
  const perSlot = Math.max(job.bs, 4096) + 8192;
  const rings = (job.queues + 2) * (job.queueSize * 32 + 16384);
  const bytes = job.queues * job.iodepth * perSlot + rings + 4 * MIB;
  const size = Math.ceil(bytes / (2 * MIB)) * 2 * MIB;
  return [{ size, guestPhysAddr: 0, hugepages: job.hugepages }];
}
