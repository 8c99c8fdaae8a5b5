// vhostd-bench (also `vhostctl bench`): a vhost-user load generator. It connects to a
// vhost-user-scsi or vhost-user-blk socket as the front-end (no VM), runs an fio-like job and
// reports IOPS, bandwidth, latency percentiles, CPU of itself and the target, and GC.
import { Command, Option, InvalidArgumentError } from 'commander';
import { validateJob, parseSize, RW_MODES, type BenchJob, type RwMode } from '../bench/bench-job.ts';
import { runBench } from '../bench/bench-runner.ts';
import { formatResult } from '../bench/bench-report.ts';

function num(v: string): number {
  const x = Number(v);
  if (!Number.isFinite(x)) throw new InvalidArgumentError('expected a number');
  return x;
}

function size(v: string): number {
  try {
    return parseSize(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command('vhostd-bench')
    .description('Load generator for vhost-user block targets (vhostd, SPDK, qemu-storage-daemon): it is the front-end, no VM needed.')
    .requiredOption('--socket <path>', 'vhost-user socket of the target controller')
    .addOption(new Option('--device <kind>', 'device type behind the socket').choices(['scsi', 'blk']).default('blk'))
    .addOption(new Option('--rw <mode>', 'I/O pattern').choices(RW_MODES).default('randread'))
    .option('--rwmixread <pct>', 'percentage of reads for rw/randrw', num, 50)
    .option('--bs <size>', 'block size (e.g. 4k, 128k)', size, 4096)
    .option('--iodepth <n>', 'requests in flight per queue', num, 32)
    .option('--queues <n>', 'request queues', num, 1)
    .option('--queue-size <n>', 'virtqueue size', num, 256)
    .option('--runtime <s>', 'measured seconds', num, 5)
    .option('--ramp <s>', 'seconds of load before measuring', num, 1)
    .option('--size <size>', 'part of the device to use (0 = all)', size, 0)
    .option('--verify', 'write a pattern and read every written block back afterwards', false)
    .option('--cpu <n>', 'pin the generator to this CPU (-1 = no pinning)', num, -1)
    .option('--target <n>', 'SCSI target number (scsi)', num, 0)
    .option('--packed', 'use packed virtqueues', false)
    .option('--seed <n>', 'random seed', num, 1)
    .option('--target-pid <pid>', 'pid whose CPU to report (default: the socket peer)', num, 0)
    .option('--target-rpc <path>', "vhostd's RPC socket: also report its reactors' GC count and heap growth over the measured window")
    .addOption(new Option('--wait <mode>', 'between completions: spin on the used rings, or sleep until the target signals (interrupt, as a guest driver)').choices(['spin', 'interrupt']).default('spin'))
    .option('--hugepages', 'guest memory on 2 MiB huge pages (reserve them first; SPDK targets need this)', false)
    .option('--json', 'print the result as JSON', false)
    .addHelpText('after', '\nExample:\n  vhostd-bench --socket /var/tmp/vhost.0 --device scsi --rw randread --bs 4k --iodepth 32 --runtime 10 --cpu 1\n');
  program.exitOverride();
  let o: Record<string, unknown>;
  try {
    program.parse(argv, { from: 'user' });
    o = program.opts();
  } catch (e) {
    const code = (e as { exitCode?: number }).exitCode;
    return code ?? 2;
  }
  let job: BenchJob;
  try {
    job = validateJob({
      socket: o.socket as string,
      device: o.device as 'scsi' | 'blk',
      rw: o.rw as RwMode,
      rwmixread: o.rwmixread as number,
      bs: o.bs as number,
      iodepth: o.iodepth as number,
      queues: o.queues as number,
      queueSize: o.queueSize as number,
      runtime: o.runtime as number,
      ramp: o.ramp as number,
      size: o.size as number,
      verify: o.verify as boolean,
      cpu: o.cpu as number,
      target: o.target as number,
      packed: o.packed as boolean,
      seed: o.seed as number,
      targetPid: o.targetPid as number,
      hugepages: o.hugepages as boolean,
      wait: o.wait as 'spin' | 'interrupt',
      targetRpc: o.targetRpc as string | undefined,
    });
  } catch (e) {
    process.stderr.write(`vhostd-bench: ${(e as Error).message}\n`);
    return 2;
  }
  try {
    const r = await runBench(job);
    process.stdout.write(o.json ? JSON.stringify(r, null, 2) + '\n' : formatResult(r) + '\n');
    return r.errors > 0 || (r.verify && r.verify.mismatches > 0) ? 1 : 0;
  } catch (e) {
    const err = e as { code?: string; message?: string };
    process.stderr.write(`vhostd-bench: ${err.message ?? String(e)}${err.code ? ` (${err.code})` : ''}\n`);
    return 1;
  }
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
