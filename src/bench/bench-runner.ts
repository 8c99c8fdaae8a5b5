// A load-generator run: connect, ramp, measured window (with the target's GC window when its RPC
// socket is given), drain, verify. The hot loop is LoadLoop (load-loop.ts).
import { performance } from 'node:perf_hooks';
import type { BenchJob } from './bench-job.ts';
import type { IoSlot, IoTarget } from './io-target.ts';
import { processCpuSeconds } from './process-cpu.ts';
import { ScsiIoTarget } from './scsi-io-target.ts';
import { BlkIoTarget } from './blk-io-target.ts';
import { pinCurrentThread } from '../sys/affinity.ts';
import { checkPattern } from './data-pattern.ts';
import { GcWindow } from '../reactor/gc-window.ts';
import { LoadLoop } from './load-loop.ts';
import { TargetGc, type TargetReactorGc } from './target-gc.ts';

export interface BenchResult {
  job: BenchJob;
  device: { blockSize: number; capacityBytes: number; targetPid: number };
  seconds: number;
  ios: number;
  reads: number;
  writes: number;
  errors: number;
  iops: number;
  mbps: number;
  latencyUs: { min: number; avg: number; p50: number; p99: number; p999: number; max: number };
  cpu: { generatorPct: number; targetPct: number };
  gc: {
    generatorCount: number;
    generatorHeapGrowthBytes: number;
    generatorAllocatedBytes: number;
    /** The target's reactors over the measured window (vhostd with --target-rpc), else null. */
    target: TargetReactorGc[] | null;
  };
  verify: { blocks: number; mismatches: number } | null;
}

export async function connectTarget(job: BenchJob): Promise<IoTarget> {
  return job.device === 'scsi' ? ScsiIoTarget.connect(job) : BlkIoTarget.connect(job);
}

export async function runBench(job: BenchJob): Promise<BenchResult> {
  const targetGc = job.targetRpc ? await TargetGc.connect(job.targetRpc) : null;
  try {
    const t = await connectTarget(job);
    try {
      return await drive(t, job, targetGc);
    } finally {
      await t.close();
    }
  } finally {
    targetGc?.close();
  }
}

async function drive(t: IoTarget, job: BenchJob, targetGc: TargetGc | null): Promise<BenchResult> {
  if (job.bs % t.blockSize !== 0) throw new Error(`--bs ${job.bs} is not a multiple of the device block size ${t.blockSize}`);
  const range = job.size > 0 ? Math.min(job.size, t.capacityBytes) : t.capacityBytes;
  const units = Math.floor(range / job.bs);
  if (units < 1) throw new Error(`the device (${t.capacityBytes} bytes) is smaller than one ${job.bs}-byte I/O`);
  if (job.cpu >= 0) pinCurrentThread(job.cpu);
  const pid = job.targetPid > 0 ? job.targetPid : t.targetPid();
  const loop = new LoadLoop(t, job, units);
  // GCProfiler, not a PerformanceObserver: the loop never yields, observers would see nothing.
  const gcWindow = new GcWindow();

  loop.fill(job.iodepth);
  loop.run(performance.now() + job.ramp * 1000, true);
  // The target's window starts with an RPC: the requests in flight complete meanwhile, and only
  // I/Os submitted from measureStart on are counted.
  if (targetGc) await targetGc.start();
  const measureStart = performance.now();
  const cpuSelf0 = process.cpuUsage();
  const cpuTarget0 = processCpuSeconds(pid);
  gcWindow.start();
  loop.record(measureStart);
  const measureEnd = loop.run(measureStart + job.runtime * 1000, true);
  const gen = gcWindow.stop();
  const cpuSelf = process.cpuUsage(cpuSelf0);
  const cpuTarget = processCpuSeconds(pid) - cpuTarget0;
  loop.record(Infinity);
  loop.run(0, false);
  const target = targetGc ? await targetGc.stop() : null;
  const seconds = (measureEnd - measureStart) / 1000;

  let verify: BenchResult['verify'] = null;
  if (loop.written) verify = await verifyWritten(t, job, loop.written);

  const { hist, reads, writes, errors } = loop;
  const ios = reads + writes;
  return {
    job,
    device: { blockSize: t.blockSize, capacityBytes: t.capacityBytes, targetPid: pid },
    seconds,
    ios,
    reads,
    writes,
    errors,
    iops: ios / seconds,
    mbps: (ios * job.bs) / seconds / 1e6,
    latencyUs: {
      min: hist.minNs / 1000,
      avg: hist.mean() / 1000,
      p50: hist.quantile(0.5) / 1000,
      p99: hist.quantile(0.99) / 1000,
      p999: hist.quantile(0.999) / 1000,
      max: hist.maxNs / 1000,
    },
    cpu: { generatorPct: ((cpuSelf.user + cpuSelf.system) / 1e6 / seconds) * 100, targetPct: (cpuTarget / seconds) * 100 },
    gc: {
      generatorCount: gen?.collections ?? 0,
      generatorHeapGrowthBytes: gen?.heapGrowthBytes ?? 0,
      generatorAllocatedBytes: gen?.allocatedBytes ?? 0,
      target,
    },
    verify,
  };
}

/** Reads back every unit that was written and checks its pattern (queue 0, one at a time per slot). */
async function verifyWritten(t: IoTarget, job: BenchJob, written: Uint32Array): Promise<{ blocks: number; mismatches: number }> {
  let next = 0;
  let checked = 0;
  let mismatches = 0;
  let inFlight = 0;
  const unitOf = new Float64Array(t.slots.length);
  const advance = (): number => {
    while (next < written.length && written[next] === 0) next++;
    return next < written.length ? next++ : -1;
  };
  for (;;) {
    let s: IoSlot | null;
    while ((s = t.acquire(0)) !== null) {
      const unit = advance();
      if (unit < 0) {
        t.release(s);
        break;
      }
      unitOf[s.benchIndex] = unit;
      t.submit(s, false, unit * job.bs, job.bs);
      inFlight++;
    }
    t.kick(0);
    if (inFlight === 0) break;
    const n = t.reap(0);
    for (let k = 0; k < n; k++) {
      const slot = t.completed[k];
      const unit = unitOf[slot.benchIndex];
      if (!t.ok(slot) || !checkPattern(slot.data, job.bs, unit, written[unit])) mismatches++;
      checked++;
      t.release(slot);
      inFlight--;
    }
    if (n === 0) await new Promise((r) => setImmediate(r));
  }
  return { blocks: checked, mismatches };
}
