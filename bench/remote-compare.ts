// The loop both remote-backend benchmarks (bench:nbd, bench:rbd) run: for each workload, each
// target is started, measured with vhostd-bench over vhost-user-blk and stopped; a line per row.
// Also their argument parsing and the cells their BENCHMARKS.md tables share.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stopper } from './targets.ts';
import { runBench, type BenchResult } from '../src/bench/bench-runner.ts';
import { validateJob, type RwMode } from '../src/bench/bench-job.ts';

export interface Workload {
  name: string;
  rw: RwMode;
  bs: number;
  iodepth: number;
}

export interface RunningRemoteTarget {
  socket: string;
  pid: number;
  /** vhostd's RPC socket: its reactors' allocation over the window. */
  rpc?: string;
  /** The generator's guest memory on 2 MiB huge pages (SPDK's vhost target needs it). */
  hugepages?: boolean;
  stop: () => Promise<void>;
}

export interface RemoteTarget {
  name: string;
  start: () => Promise<RunningRemoteTarget>;
}

export interface Row {
  target: string;
  workload: string;
  r: BenchResult;
}

export interface RemoteArgs {
  runtime: number;
  ramp: number;
  pollMode: string;
  targetCpu: number;
  generatorCpu: number;
  sizeMiB: number;
  write: boolean;
  wait: 'spin' | 'interrupt';
}

/** Parses the options both benchmarks take (see their usage texts); exits on -h or a bad option. */
export function parseRemoteArgs(script: string, usage: string, defaults: { runtime: string; pollMode: string; wait?: string }): RemoteArgs {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        runtime: { type: 'string', default: defaults.runtime },
        ramp: { type: 'string', default: '1' },
        'poll-mode': { type: 'string', default: defaults.pollMode },
        'target-cpu': { type: 'string', default: '0' },
        'generator-cpu': { type: 'string', default: '1' },
        'size-mib': { type: 'string', default: '1024' },
        write: { type: 'boolean', default: false },
        wait: { type: 'string', default: defaults.wait ?? 'spin' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (e) {
    process.stderr.write(`${script}: ${(e as Error).message}\n\n${usage}\n`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  return {
    runtime: Number(values.runtime),
    ramp: Number(values.ramp),
    pollMode: String(values['poll-mode']),
    targetCpu: Number(values['target-cpu']),
    generatorCpu: Number(values['generator-cpu']),
    sizeMiB: Number(values['size-mib']),
    write: values.write === true,
    wait: values.wait === 'interrupt' ? 'interrupt' : 'spin',
  };
}

/** vhostd's reactors: bytes allocated per I/O over the measured window ('' for other targets). */
export function allocPerIo(r: BenchResult): string {
  const t = r.gc.target;
  if (!t || r.ios === 0) return '';
  return (t.reduce((a, x) => a + x.allocatedBytes, 0) / r.ios).toFixed(2);
}

/** Target CPU time per I/O in microseconds (all its threads). */
export function cpuPerIo(r: BenchResult): number {
  return r.iops > 0 ? (r.cpu.targetPct * 10_000) / r.iops : 0;
}

/** Runs every workload on every target; `afterWorkload` runs once a workload's targets are done. */
export async function runComparison(targets: RemoteTarget[], workloads: Workload[], a: RemoteArgs, afterWorkload?: (w: Workload) => void): Promise<Row[]> {
  const rows: Row[] = [];
  for (const w of workloads) {
    for (const t of targets) {
      const running = await t.start();
      try {
        const job = validateJob({
          socket: running.socket, device: 'blk', rw: w.rw, rwmixread: 50, bs: w.bs, iodepth: w.iodepth, queues: 1,
          queueSize: 256, runtime: a.runtime, ramp: a.ramp, size: 0, verify: false,
          cpu: a.generatorCpu, target: 0, packed: false, seed: 1, targetPid: running.pid, hugepages: running.hugepages ?? false, targetRpc: running.rpc, wait: a.wait,
        });
        const r = await runBench(job);
        rows.push({ target: t.name, workload: w.name, r });
        const alloc = allocPerIo(r);
        process.stdout.write(
          `${t.name.padEnd(36)} ${w.name.padEnd(18)} ${Math.round(r.iops).toString().padStart(8)} IOPS avg ${r.latencyUs.avg.toFixed(1)}us p99 ${r.latencyUs.p99.toFixed(1)}us ` +
            `target ${r.cpu.targetPct.toFixed(0)}% (${cpuPerIo(r).toFixed(1)} us CPU/IO)${alloc ? ` reactor alloc ${alloc} B/IO` : ''} errors ${r.errors}\n`,
        );
      } finally {
        await running.stop();
      }
    }
    afterWorkload?.(w);
  }
  return rows;
}

/** The vhostd row and the peer's row of a workload (vhostd's target name starts with "vhostd"). */
export function pair(rows: Row[], w: Workload): { v: BenchResult; q: BenchResult } | null {
  const v = rows.find((r) => r.workload === w.name && r.target.startsWith('vhostd'))?.r;
  const q = rows.find((r) => r.workload === w.name && !r.target.startsWith('vhostd'))?.r;
  return v && q ? { v, q } : null;
}

/** "IOPS | IOPS | ratio" and "avg / p99" cells of a vhostd/peer pair. */
export function pairCells(v: BenchResult, q: BenchResult): { iops: string; latency: string; cpu: string } {
  return {
    iops: `${Math.round(v.iops)} | ${Math.round(q.iops)} | ${(v.iops / q.iops).toFixed(2)}`,
    latency: `${v.latencyUs.avg.toFixed(0)} / ${v.latencyUs.p99.toFixed(0)} | ${q.latencyUs.avg.toFixed(0)} / ${q.latencyUs.p99.toFixed(0)}`,
    cpu: `${cpuPerIo(v).toFixed(1)} | ${cpuPerIo(q).toFixed(1)}`,
  };
}

/** qemu-storage-daemon pinned to `cpu`, exporting `blockdev` (a --blockdev value with node-name=d0) over vhost-user-blk. */
export async function startQsdBlk(cpu: number, blockdev: string): Promise<RunningRemoteTarget> {
  const qdir = mkdtempSync(join(tmpdir(), 'bench-qsd-'));
  const qsock = join(qdir, 'blk.sock');
  const q = spawn(
    'taskset',
    ['-c', String(cpu), 'qemu-storage-daemon', '--blockdev', blockdev, '--export', `type=vhost-user-blk,id=e0,node-name=d0,addr.type=unix,addr.path=${qsock},writable=on`],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const deadline = Date.now() + 30_000;
  while (!existsSync(qsock)) {
    if (q.exitCode !== null || Date.now() > deadline) throw new Error(`qemu-storage-daemon did not start (${blockdev})`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { socket: qsock, pid: q.pid as number, stop: stopper(q, qdir) };
}
