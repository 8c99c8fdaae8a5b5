// Human-readable report of a load-generator run.
import type { BenchResult } from './bench-runner.ts';

function n(x: number, digits = 1): string {
  return x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function signed(x: number): string {
  return `${x >= 0 ? '+' : ''}${x}`;
}

export function formatResult(r: BenchResult): string {
  const j = r.job;
  const l = r.latencyUs;
  const lines = [
    `${j.device} ${j.socket}: ${j.rw} bs=${j.bs} iodepth=${j.iodepth} queues=${j.queues}${j.packed ? ' packed' : ''} runtime=${n(r.seconds, 2)}s`,
    `  device: ${r.device.capacityBytes} bytes, block ${r.device.blockSize}, target pid ${r.device.targetPid}`,
    `  IOPS ${n(r.iops, 0)}  ${n(r.mbps, 1)} MB/s  (${r.reads} reads, ${r.writes} writes, ${r.errors} errors)`,
    `  latency us: min ${n(l.min, 2)} avg ${n(l.avg, 2)} p50 ${n(l.p50, 2)} p99 ${n(l.p99, 2)} p99.9 ${n(l.p999, 2)} max ${n(l.max, 2)}`,
    `  cpu: generator ${n(r.cpu.generatorPct)}%  target ${Number.isNaN(r.cpu.targetPct) ? 'n/a' : n(r.cpu.targetPct) + '%'}`,
    `  gc (generator): ${r.gc.generatorCount} collections, heap ${signed(r.gc.generatorHeapGrowthBytes)} bytes, ${r.gc.generatorAllocatedBytes} bytes allocated`,
  ];
  for (const g of r.gc.target ?? []) {
    lines.push(
      `  gc (target reactor ${g.reactor}, cpu ${g.cpu}): ${g.collections} collections (${n(g.pauseMs, 2)} ms), heap ${signed(g.heapGrowthBytes)} bytes, ` +
        `${g.allocatedBytes} bytes allocated (${n(r.ios > 0 ? g.allocatedBytes / r.ios : 0, 2)} per I/O) in ${n(g.seconds, 2)} s`,
    );
  }
  if (r.verify) lines.push(`  verify: ${r.verify.blocks} blocks read back, ${r.verify.mismatches} mismatches`);
  return lines.join('\n');
}
