// The load generator's loop: keeps iodepth requests in flight per queue, busy-polls used rings,
// records latencies in a histogram. Nothing in the loop allocates.
import { performance } from 'node:perf_hooks';
import type { BenchJob } from './bench-job.ts';
import type { IoSlot, IoTarget } from './io-target.ts';
import { LatencyHistogram } from './latency-histogram.ts';
import { processCpuSeconds } from './process-cpu.ts';
import { ScsiIoTarget } from './scsi-io-target.ts';
import { BlkIoTarget } from './blk-io-target.ts';
import { pinCurrentThread } from '../sys/affinity.ts';
import { fillPattern, checkPattern } from './data-pattern.ts';
import { GcWindow, type GcWindowReport } from '../reactor/gc-window.ts';
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

class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  /** Uniform integer in [0, n). */
  below(n: number): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return n <= 4294967296 ? Math.floor((this.s / 4294967296) * n) : Math.floor(Math.random() * n);
  }
}

export async function connectTarget(job: BenchJob): Promise<IoTarget> {
  return job.device === 'scsi' ? ScsiIoTarget.connect(job) : BlkIoTarget.connect(job);
}

export async function runBench(job: BenchJob, onProgress?: (done: number, total: number) => void): Promise<BenchResult> {
  const targetGc = job.targetRpc ? await TargetGc.connect(job.targetRpc) : null;
  try {
    const t = await connectTarget(job);
    try {
      return await drive(t, job, targetGc, onProgress);
    } finally {
      await t.close();
    }
  } finally {
    targetGc?.close();
  }
}

async function drive(t: IoTarget, job: BenchJob, targetGc: TargetGc | null, onProgress?: (done: number, total: number) => void): Promise<BenchResult> {
  if (job.bs % t.blockSize !== 0) throw new Error(`--bs ${job.bs} is not a multiple of the device block size ${t.blockSize}`);
  const range = job.size > 0 ? Math.min(job.size, t.capacityBytes) : t.capacityBytes;
  const units = Math.floor(range / job.bs);
  if (units < 1) throw new Error(`the device (${t.capacityBytes} bytes) is smaller than one ${job.bs}-byte I/O`);
  if (job.cpu >= 0) pinCurrentThread(job.cpu);
  const pid = job.targetPid > 0 ? job.targetPid : t.targetPid();

  const rng = new Rng(job.seed);
  const hist = new LatencyHistogram();
  const nSlots = t.slots.length;
  const startAt = new Float64Array(nSlots);
  const unitOf = new Float64Array(nSlots);
  const isWrite = new Uint8Array(nSlots);
  /** Generation last written to each unit (verify): 0 = never written. */
  const written = job.verify ? new Uint32Array(units) : null;
  let generation = 0;
  let seqCursor = 0;
  const random = job.rw.startsWith('rand');
  const mixRead = job.rw === 'read' || job.rw === 'randread' ? 100 : job.rw === 'write' || job.rw === 'randwrite' ? 0 : job.rwmixread;

  let measuring = false;
  // GCProfiler, not a PerformanceObserver: the loop below never yields, observers would see nothing.
  const gcWindow = new GcWindow();
  let gen: GcWindowReport | null = null;

  const issue = (slot: IoSlot): void => {
    const i = slot.benchIndex;
    const unit = random ? rng.below(units) : seqCursor++ % units;
    const write = mixRead === 100 ? false : mixRead === 0 ? true : rng.below(100) >= mixRead;
    unitOf[i] = unit;
    isWrite[i] = write ? 1 : 0;
    if (write && written) {
      generation = (generation + 1) >>> 0 || 1;
      written[unit] = generation;
      fillPattern(slot.data, job.bs, unit, generation);
    }
    startAt[i] = performance.now();
    if (!t.submit(slot, write, unit * job.bs, job.bs)) throw new Error('the ring had no room for a request within iodepth');
  };

  let reads = 0;
  let writes = 0;
  let errors = 0;
  const queues = t.queues;
  for (let q = 0; q < queues; q++) {
    for (let k = 0; k < job.iodepth; k++) {
      const s = t.acquire(q);
      if (!s) break;
      issue(s);
    }
    t.kick(q);
  }
  const begin = performance.now();
  const measureFrom = begin + job.ramp * 1000;
  const end = measureFrom + job.runtime * 1000;
  let cpuSelf0 = process.cpuUsage();
  let cpuTarget0 = processCpuSeconds(pid);
  let measureStart = measureFrom;
  let now = begin;
  let stopping = false;
  let inFlight = queues * job.iodepth;
  let lastProgress = begin;
  while (inFlight > 0) {
    for (let q = 0; q < queues; q++) {
      const n = t.reap(q);
      if (n === 0) continue;
      now = performance.now();
      for (let k = 0; k < n; k++) {
        const slot = t.completed[k];
        const i = slot.benchIndex;
        // Only I/Os submitted in the window: the target's GC window starts with an RPC, during
        // which the requests in flight complete but are not reaped.
        if (measuring && startAt[i] >= measureStart) {
          hist.record((now - startAt[i]) * 1e6);
          if (isWrite[i]) writes++;
          else reads++;
        }
        if (!t.ok(slot)) errors++;
        if (stopping) {
          t.release(slot);
          inFlight--;
        } else issue(slot);
      }
      if (!stopping) t.kick(q);
    }
    now = performance.now();
    if (!measuring && !stopping && now >= measureFrom) {
      if (targetGc) {
        await targetGc.start();
        now = performance.now();
      }
      measuring = true;
      measureStart = now;
      cpuSelf0 = process.cpuUsage();
      cpuTarget0 = processCpuSeconds(pid);
      gcWindow.start();
    }
    if (!stopping && now >= end) {
      stopping = true;
      measuring = false;
      gen = gcWindow.stop();
    }
    if (onProgress && now - lastProgress > 250) {
      lastProgress = now;
      onProgress(Math.min(now - begin, end - begin), end - begin);
    }
  }
  const seconds = (now - measureStart) / 1000;
  const cpuSelf = process.cpuUsage(cpuSelf0);
  const cpuTarget = processCpuSeconds(pid) - cpuTarget0;
  const target = targetGc ? await targetGc.stop() : null;

  let verify: BenchResult['verify'] = null;
  if (written) verify = await verifyWritten(t, job, written);

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
