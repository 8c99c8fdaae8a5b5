// `npm run bench:lvol`: what the logical-volume layer costs. Thick lvols against the raw bdev
// under them (RAM and an io_uring file on tmpfs), same generator and jobs in the same run, raw and
// lvol runs alternated over several rounds (medians: this machine's noise is +-20% run to run),
// and the latency of a thin lvol's first write into a cluster (allocation: metadata write, and
// for a clone the copy of the cluster from its snapshot) against an overwrite. The generator is
// SPDK's bdevperf when built (faster than vhostd-bench, so the target is the limit), else
// vhostd-bench. Writes a section of BENCHMARKS.md between the bench-lvol markers.
import { readFileSync, writeFileSync, existsSync, truncateSync, rmSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { runBench, type BenchResult } from '../src/bench/bench-runner.ts';
import { validateJob, type RwMode } from '../src/bench/bench-job.ts';
import { GuestMemoryArena } from '../src/frontend/guest-memory-arena.ts';
import { connectLikeQemuBlk } from '../src/frontend/qemu-like-blk.ts';
import { spawnVhostd, stopper } from './targets.ts';
import { bdevperfDir, runBdevperf } from './bdevperf.ts';
import { median } from './median.ts';

const ROOT = new URL('../', import.meta.url).pathname;
const MiB = 1024 * 1024;
const { values: args } = parseArgs({
  options: {
    runtime: { type: 'string', default: '4' },
    ramp: { type: 'string', default: '1' },
    'target-cpu': { type: 'string', default: '0' },
    'generator-cpu': { type: 'string', default: '1' },
    rounds: { type: 'string', default: '3' },
    generator: { type: 'string', default: 'auto' },
    'no-write': { type: 'boolean', default: false },
  },
});
if (!['auto', 'bdevperf', 'vhostd-bench'].includes(args.generator!)) throw new Error(`--generator ${args.generator}: auto, bdevperf or vhostd-bench`);
const useBdevperf = args.generator === 'bdevperf' || (args.generator === 'auto' && bdevperfDir() !== null);
if (args.generator === 'bdevperf' && bdevperfDir() === null) throw new Error('bdevperf is not built (../shared/tools/build-spdk.sh, or set SPDK_DIR)');
const rounds = Number(args.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds ${args.rounds}: a positive integer`);
const targetCpu = Number(args['target-cpu']);
// vhostd-bench's guest memory on huge pages when some are reserved (as VMs with hugetlbfs, and as bdevperf).
const hugepages = Number(readFileSync('/proc/sys/vm/nr_hugepages', 'utf8')) >= 1024;
const generatorCpu = Number(args['generator-cpu']);
const SIZE_MIB = 1024;
const CLUSTER = 4 * MiB;
const WORKLOADS: Array<{ name: string; rw: RwMode }> = [
  { name: '4k randread QD32', rw: 'randread' },
  { name: '4k randwrite QD32', rw: 'randwrite' },
];

interface Row {
  backend: string;
  volume: string;
  workload: string;
  /** One per round. */
  iops: number[];
  avgUs: number[];
}

function stats(us: number[]): { avg: number; p50: number; p99: number } {
  const s = [...us].sort((a, b) => a - b);
  return { avg: s.reduce((a, b) => a + b, 0) / s.length, p50: s[Math.floor(s.length / 2)], p99: s[Math.min(s.length - 1, Math.floor(s.length * 0.99))] };
}

async function main(): Promise<void> {
  const started = new Date();
  // The reactor is pinned to the target CPU; the control plane (first-write allocation) may run on
  // either CPU, as in a deployment where only reactors are pinned (idle during the I/O runs).
  const { dir, proc, rpc } = await spawnVhostd([targetCpu], 'poll', [targetCpu, generatorCpu]);
  const stop = stopper(proc, dir);
  const shm = existsSync('/dev/shm') ? '/dev/shm' : '/tmp';
  const files = [join(shm, `vhostd-bench-lvol-raw-${process.pid}.img`), join(shm, `vhostd-bench-lvol-lvs-${process.pid}.img`)];
  const rows: Row[] = [];
  const alloc: string[] = [];
  try {
    const blocks = (SIZE_MIB * MiB) / 512;
    // Each lvol store gets room beside the 1 GiB lvol for its metadata and the first-write lvols.
    const poolBlocks = ((SIZE_MIB + 512) * MiB) / 512;
    await rpc.call('bdev_malloc_create', { name: 'raw-mal', num_blocks: blocks, block_size: 512 });
    await rpc.call('bdev_malloc_create', { name: 'pool-mal', num_blocks: poolBlocks, block_size: 512 });
    writeFileSync(files[0], '');
    truncateSync(files[0], SIZE_MIB * MiB);
    writeFileSync(files[1], '');
    truncateSync(files[1], (SIZE_MIB + 512) * MiB);
    await rpc.call('bdev_uring_create', { name: 'raw-ur', filename: files[0], block_size: 512 });
    await rpc.call('bdev_uring_create', { name: 'pool-ur', filename: files[1], block_size: 512 });
    for (const [pool, lvs] of [['pool-mal', 'lvs-mal'], ['pool-ur', 'lvs-ur']]) {
      await rpc.call('bdev_lvol_create_lvstore', { bdev_name: pool, lvs_name: lvs, cluster_sz: CLUSTER });
      await rpc.call('bdev_lvol_create', { lvs_name: lvs, lvol_name: 'thick', size_in_mib: SIZE_MIB, thin_provision: false });
    }
    const volumes = [
      { ctrlr: 'raw-mal', dev: 'raw-mal', backend: 'malloc (RAM)', volume: 'raw bdev' },
      { ctrlr: 'lvol-mal', dev: 'lvs-mal/thick', backend: 'malloc (RAM)', volume: 'thick lvol' },
      { ctrlr: 'raw-ur', dev: 'raw-ur', backend: 'uring, file on tmpfs', volume: 'raw bdev' },
      { ctrlr: 'lvol-ur', dev: 'lvs-ur/thick', backend: 'uring, file on tmpfs', volume: 'thick lvol' },
    ];
    for (const v of volumes) await rpc.call('vhost_create_blk_controller', { ctrlr: v.ctrlr, dev_name: v.dev });
    const jobFor = (ctrlr: string, rw: RwMode, bs: number, runtime: number, ramp: number) =>
      validateJob({
        socket: join(dir, ctrlr), device: 'blk', rw, rwmixread: 50, bs, iodepth: 32, queues: 1, queueSize: 256,
        runtime, ramp, size: 0, verify: false, cpu: generatorCpu, target: 0, packed: false, seed: 1, targetPid: proc.pid!, hugepages,
      });
    const measure = async (ctrlr: string, rw: RwMode): Promise<{ iops: number; avgUs: number }> => {
      if (useBdevperf) {
        const r = await runBdevperf({ socket: join(dir, ctrlr), device: 'blk', rw, bs: 4096, iodepth: 32, runtimeSec: Number(args.runtime), cpu: generatorCpu });
        return { iops: r.iops, avgUs: r.avgLatUs };
      }
      const r: BenchResult = await runBench(jobFor(ctrlr, rw, 4096, Number(args.runtime), Number(args.ramp)));
      return { iops: r.iops, avgUs: r.latencyUs.avg };
    };
    // Every volume written once first: the same page state under raw and lvol (a fresh memfd
    // or file reads holes, a thick lvol's clusters were unmapped at create).
    for (const v of volumes) await runBench(jobFor(v.ctrlr, 'write', 131072, 3, 0));
    for (const backend of [...new Set(volumes.map((v) => v.backend))]) {
      const pair = volumes.filter((v) => v.backend === backend);
      for (const w of WORKLOADS) {
        const byVolume = new Map(pair.map((v) => [v, { backend, volume: v.volume, workload: w.name, iops: [] as number[], avgUs: [] as number[] }]));
        for (let round = 0; round < rounds; round++) {
          // Alternate which goes first: a drift of the machine over a round hits both alike.
          for (const v of round % 2 === 0 ? pair : [...pair].reverse()) {
            const r = await measure(v.ctrlr, w.rw);
            const row = byVolume.get(v)!;
            row.iops.push(r.iops);
            row.avgUs.push(r.avgUs);
            process.stdout.write(`${backend.padEnd(22)} ${v.volume.padEnd(10)} ${w.name.padEnd(18)} round ${round + 1} ${Math.round(r.iops).toString().padStart(8)} IOPS avg ${r.avgUs.toFixed(1)} us\n`);
          }
        }
        rows.push(...byVolume.values());
      }
    }

    // First write into a cluster: thin lvol (allocation, cluster cleared by unmap), and a clone of
    // a snapshot (allocation plus a 4 MiB copy), against overwriting the same blocks afterwards.
    await rpc.call('bdev_lvol_create', { lvs_name: 'lvs-ur', lvol_name: 'thin', size_in_mib: 128, thin_provision: true });
    await rpc.call('bdev_lvol_create', { lvs_name: 'lvs-ur', lvol_name: 'origin', size_in_mib: 128, thin_provision: false });
    await rpc.call('bdev_lvol_snapshot', { lvol_name: 'lvs-ur/origin', snapshot_name: 'snap' });
    await rpc.call('bdev_lvol_clone', { snapshot_name: 'lvs-ur/snap', clone_name: 'clone' });
    for (const [name, what] of [['thin', 'thin lvol (no parent)'], ['clone', 'clone of a snapshot (copy-on-write)']]) {
      await rpc.call('vhost_create_blk_controller', { ctrlr: `first-${name}`, dev_name: `lvs-ur/${name}` });
      const arena = new GuestMemoryArena();
      const c = await connectLikeQemuBlk({ socketPath: join(dir, `first-${name}`), arena, numQueues: 1, queueSize: 64, driver: { maxDataBytes: 65536, timeoutMs: 10000 } });
      const buf = new Uint8Array(4096).fill(0x5a);
      const clusters = 32;
      const timed = async (): Promise<number[]> => {
        const out: number[] = [];
        for (let i = 0; i < clusters; i++) {
          const t0 = performance.now();
          const r = await c.driver.write((i * CLUSTER) / 512 + 8, buf);
          if (r.status !== 0) throw new Error(`write status ${r.status}`);
          out.push((performance.now() - t0) * 1000);
        }
        return out;
      };
      const first = stats(await timed());
      const again = stats(await timed());
      alloc.push(
        `| ${what} | ${first.avg.toFixed(0)} | ${first.p50.toFixed(0)} | ${first.p99.toFixed(0)} | ${again.avg.toFixed(0)} | ${again.p50.toFixed(0)} |`,
      );
      process.stdout.write(`first write ${what}: avg ${first.avg.toFixed(0)} us, overwrite avg ${again.avg.toFixed(0)} us\n`);
      await c.stop().catch(() => {});
      c.close();
      arena.close();
    }
    rpc.close();
  } finally {
    await stop();
    for (const f of files) rmSync(f, { force: true });
  }

  const k = (x: number): string => `${Math.round(x / 1000).toLocaleString('en-US')}K`;
  const table = [
    '| backend | volume | workload | IOPS, median | range | avg lat, median (us) | lvol vs raw (medians) |',
    '|---|---|---|---:|---:|---:|---:|',
    ...rows.map((row) => {
      const raw = rows.find((x) => x.backend === row.backend && x.workload === row.workload && x.volume === 'raw bdev');
      const rel = raw && row.volume !== 'raw bdev' ? `${((median(row.iops) / median(raw.iops) - 1) * 100).toFixed(1)}%` : '';
      return `| ${row.backend} | ${row.volume} | ${row.workload} | ${k(median(row.iops))} | ${k(Math.min(...row.iops))}-${k(Math.max(...row.iops))} | ${median(row.avgUs).toFixed(1)} | ${rel} |`;
    }),
  ].join('\n');
  const section = [
    `Run ${started.toISOString()} on ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, Linux ${release()}, Node ${process.version}.`,
    `vhostd's reactor pinned to CPU ${targetCpu} (one reactor, --poll-mode poll; its control-plane thread on either CPU), ${useBdevperf ? "SPDK's bdevperf (virtio-user, ring of 512, guest memory on huge pages)" : 'vhostd-bench'} pinned to CPU ${generatorCpu}; virtio-blk, one queue, 4 KiB random I/O at QD32 over 1 GiB, ${args.runtime} s${useBdevperf ? '' : ` after ${args.ramp} s ramp`} per run.`,
    `${rounds} rounds per workload, raw and lvol alternated (which goes first swaps each round); IOPS as median and range over the rounds.`,
    `Each thick lvol (4 MiB clusters, all allocated at create) sits in an lvol store on a bdev of the same kind as the raw bdev it is compared with; every volume is first written whole (128 KiB sequential, 3 s).`,
    '',
    table,
    '',
    `First 4 KiB write into each of 32 unallocated 4 MiB clusters, one at a time through the TypeScript front-end (includes its own round trip), then the same writes again (clusters allocated):`,
    '',
    '| lvol | first write avg (us) | p50 | p99 | overwrite avg (us) | p50 |',
    '|---|---:|---:|---:|---:|---:|',
    ...alloc,
  ].join('\n');
  process.stdout.write(`\n${section}\n`);
  if (!args['no-write']) {
    const md = join(ROOT, 'BENCHMARKS.md');
    const text = existsSync(md) ? readFileSync(md, 'utf8') : '';
    const begin = text.indexOf('<!-- bench-lvol:begin -->');
    const end = text.indexOf('<!-- bench-lvol:end -->');
    const body = '<!-- bench-lvol:begin -->\n' + section + '\n';
    writeFileSync(md, begin >= 0 && end > begin ? text.slice(0, begin) + body + text.slice(end) : `${text}\n## Logical volumes (npm run bench:lvol)\n\n${body}<!-- bench-lvol:end -->\n`);
    process.stdout.write('BENCHMARKS.md updated\n');
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:lvol: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
