// Adaptive polling figures: reactor CPU after 1 s of idle, and the latency of the first I/O after
// the reactor went to sleep (it must wake on the guest's kick).
import { performance } from 'node:perf_hooks';
import { BlkIoTarget } from '../src/bench/blk-io-target.ts';
import { validateJob } from '../src/bench/bench-job.ts';
import { pinCurrentThread } from '../src/sys/affinity.ts';
import { threadsCpuSeconds } from '../src/bench/process-cpu.ts';
import type { RunningTarget } from './targets.ts';

export interface AdaptiveFigures {
  idleReactorCpuPct: number;
  firstIoAfterIdleUs: number[];
  busyIoUs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function measureAdaptive(t: RunningTarget, socket: string, generatorCpu: number): Promise<AdaptiveFigures> {
  pinCurrentThread(generatorCpu);
  const job = validateJob({
    socket, device: 'blk', rw: 'randread', rwmixread: 100, bs: 4096, iodepth: 1, queues: 1, queueSize: 256, runtime: 1, ramp: 0,
    size: 0, verify: false, cpu: -1, target: 0, packed: false, seed: 1, targetPid: t.pid,
  });
  const target = await BlkIoTarget.connect(job);
  // The generator polls with interrupts off; the reactor must notice kicks to wake up.
  const one = (): number => {
    const s = target.acquire(0)!;
    const t0 = performance.now();
    target.submit(s, false, 0, 4096);
    target.kick(0);
    while (target.reap(0) === 0);
    const us = (performance.now() - t0) * 1000;
    target.release(s);
    return us;
  };
  try {
    for (let i = 0; i < 2000; i++) one();
    let busy = 0;
    for (let i = 0; i < 1000; i++) busy += one();
    const first: number[] = [];
    let idleCpu = 0;
    for (let round = 0; round < 3; round++) {
      await sleep(1000);
      const c0 = threadsCpuSeconds(t.pid, 'reactor');
      await sleep(1000);
      idleCpu = Math.max(idleCpu, threadsCpuSeconds(t.pid, 'reactor') - c0);
      first.push(one());
    }
    return { idleReactorCpuPct: idleCpu * 100, firstIoAfterIdleUs: first, busyIoUs: busy / 1000 };
  } finally {
    await target.close();
  }
}
