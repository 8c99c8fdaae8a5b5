// `npm run bench`: the standard matrix. vhostd, qemu-storage-daemon and SPDK's vhost target (when
// built) run pinned to CPU 0, the load generator to CPU 1; same generator, same jobs, same run:
// vhostd-bench (this checkout) for every row, and SPDK's bdevperf (a C front-end, when built) for
// the single-queue rows. Results go to build/bench/*.json and into BENCHMARKS.md between the bench
// markers.
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, release } from 'node:os';
import { parseArgs } from 'node:util';
import { runBench, type BenchResult } from '../src/bench/bench-runner.ts';
import { validateJob, type BenchJob, type RwMode } from '../src/bench/bench-job.ts';
import { startQsd, startSpdk, startVhostd, startVhostdMultiReactor, type Endpoint, type RunningTarget } from './targets.ts';
import { measureAdaptive, type AdaptiveFigures } from './adaptive-idle.ts';
import { bdevperfDir, runBdevperf, type BdevperfResult } from './bdevperf.ts';
import { describeFloor, measurePlatformFloor, type PlatformFloor } from './platform-floor.ts';

const ROOT = new URL('../', import.meta.url).pathname;

const USAGE = `usage: npm run bench -- [options]
Runs the standard matrix (vhostd, qemu-storage-daemon, and SPDK's vhost target when built) with
the target pinned to one CPU and the load generator to another; writes build/bench/results-*.json
and the results section of BENCHMARKS.md. Run it on an idle machine.
  --runtime S          measured seconds per row (default 4)
  --ramp S             unmeasured seconds before each row (default 1)
  --poll-mode M        vhostd's reactors: poll | adaptive (default poll)
  --target-cpu N       CPU for the target (default 0)
  --generator-cpu N    CPU for the load generator (default 1)
  --only TEXT          only the rows whose target, backend or workload contains TEXT
  --no-write           leave BENCHMARKS.md alone (JSON results are still written)
  --no-bdevperf        skip the SPDK bdevperf rows even when it is built
  --disk-dir DIR       directory on a disk file system for the "file on disk" rows ('' skips them)
  -h, --help           this text`;

function parseCommandLine() {
  try {
    return parseArgs({ options: OPTIONS });
  } catch (e) {
    process.stderr.write(`vhostd bench: ${(e as Error).message}\n\n${USAGE}\n`);
    process.exit(2);
  }
}

const OPTIONS = {
  runtime: { type: 'string', default: '4' },
  ramp: { type: 'string', default: '1' },
  'poll-mode': { type: 'string', default: 'poll' },
  'target-cpu': { type: 'string', default: '0' },
  'generator-cpu': { type: 'string', default: '1' },
  'no-write': { type: 'boolean', default: false },
  'no-bdevperf': { type: 'boolean', default: false },
  only: { type: 'string' },
  /** Directory on a disk file system for the "file on disk" rows ('' skips them). */
  'disk-dir': { type: 'string', default: join(ROOT, 'build/bench') },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

const { values: args } = parseCommandLine();
if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

interface Workload {
  name: string;
  rw: RwMode;
  bs: number;
  iodepth: number;
}

const WORKLOADS: Workload[] = [
  { name: '4k randread QD1', rw: 'randread', bs: 4096, iodepth: 1 },
  { name: '4k randread QD32', rw: 'randread', bs: 4096, iodepth: 32 },
  { name: '4k randread QD128', rw: 'randread', bs: 4096, iodepth: 128 },
  { name: '4k randwrite QD32', rw: 'randwrite', bs: 4096, iodepth: 32 },
  { name: '128k read QD32', rw: 'read', bs: 131072, iodepth: 32 },
];

/** The bdevperf rows: the reference figures were taken with it. */
const BDEVPERF_WORKLOADS: Workload[] = [
  { name: '4k randread QD1', rw: 'randread', bs: 4096, iodepth: 1 },
  { name: '4k randread QD32', rw: 'randread', bs: 4096, iodepth: 32 },
  { name: '4k randread QD128', rw: 'randread', bs: 4096, iodepth: 128 },
  { name: '4k randwrite QD32', rw: 'randwrite', bs: 4096, iodepth: 32 },
];
const useBdevperf = !args['no-bdevperf'] && bdevperfDir() !== null;

interface BdevperfRow {
  target: string;
  backend: string;
  workload: string;
  r: BdevperfResult;
}
const bdevperfRows: BdevperfRow[] = [];

interface Row {
  target: string;
  backend: string;
  device: string;
  workload: string;
  r: BenchResult;
}

const targetCpu = Number(args['target-cpu']);
const generatorCpu = Number(args['generator-cpu']);
/** The 2-reactor rows: reactors on the target CPU and the generator's (only 2 cores here). */
const twoCpus = [targetCpu, generatorCpu];
const MULTI_REACTOR_WORKLOADS = ['4k randread QD1', '4k randread QD32', '4k randwrite QD32'];
const tmpfs = existsSync('/dev/shm') ? '/dev/shm' : '/tmp';
const diskDir = args['disk-dir'] ? String(args['disk-dir']) : null;
if (diskDir) mkdirSync(diskDir, { recursive: true });
const imageDirs = { tmpfs, disk: diskDir };
// Guest memory on huge pages for every target (as VMs with hugetlbfs; SPDK requires it), when they can be reserved.
const hugepages = reserveHugepages(2048);
const rows: Row[] = [];

async function measure(t: RunningTarget, e: Endpoint): Promise<void> {
  for (const w of WORKLOADS) {
    if (e.workloads && !e.workloads.includes(w.name)) continue;
    const queues = e.queues ?? 1;
    const name = queues > 1 ? `${w.name} x ${queues} queues` : w.name;
    if (args.only && !`${e.label} ${e.backend} ${name}`.includes(args.only)) continue;
    const job: BenchJob = validateJob({
      socket: e.socket, device: e.device, rw: w.rw, rwmixread: 50, bs: w.bs, iodepth: w.iodepth, queues,
      queueSize: 256, runtime: Number(args.runtime), ramp: Number(args.ramp), size: 0, verify: false,
      cpu: generatorCpu, target: 0, packed: false, seed: 1, targetPid: t.pid, hugepages, targetRpc: t.rpc,
    });
    const r = await runBench(job);
    rows.push({ target: e.label, backend: e.backend, device: e.device, workload: name, r });
    const l = r.latencyUs;
    process.stdout.write(
      `${e.label.padEnd(24)} ${e.backend.padEnd(30)} ${name.padEnd(18)} ${Math.round(r.iops).toString().padStart(9)} IOPS ` +
        `avg ${l.avg.toFixed(1)}us p99 ${l.p99.toFixed(1)}us target ${r.cpu.targetPct.toFixed(0)}% gen ${r.cpu.generatorPct.toFixed(0)}% ` +
        `GCs gen ${r.gc.generatorCount} target ${targetGcCell(r)} errors ${r.errors}\n`,
    );
  }
  if (!useBdevperf || (e.queues ?? 1) !== 1) return;
  for (const w of BDEVPERF_WORKLOADS) {
    if (e.workloads && !e.workloads.includes(w.name)) continue;
    if (args.only && !`${e.label} ${e.backend} ${w.name} bdevperf`.includes(args.only)) continue;
    const r = await runBdevperf({ socket: e.socket, device: e.device, rw: w.rw, bs: w.bs, iodepth: w.iodepth, runtimeSec: Number(args.runtime), cpu: generatorCpu });
    bdevperfRows.push({ target: e.label, backend: e.backend, workload: w.name, r });
    process.stdout.write(`bdevperf ${e.label.padEnd(24)} ${e.backend.padEnd(30)} ${w.name.padEnd(18)} ${Math.round(r.iops).toString().padStart(9)} IOPS avg ${r.avgLatUs.toFixed(2)}us\n`);
  }
}

function bdevperfTable(): string {
  const head = '| target | backend | workload | IOPS | avg lat (us) | max lat (us) |';
  const sep = '|---|---|---|---:|---:|---:|';
  const lines = bdevperfRows.map(
    ({ target, backend, workload, r }) =>
      `| ${target} | ${backend} | ${workload} | ${Math.round(r.iops).toLocaleString('en-US')} | ${r.avgLatUs.toFixed(2)} | ${r.maxLatUs.toFixed(0)} |`,
  );
  return [head, sep, ...lines].join('\n');
}

function reserveHugepages(pages: number): boolean {
  try {
    const path = '/proc/sys/vm/nr_hugepages';
    if (Number(readFileSync(path, 'utf8')) < pages) writeFileSync(path, String(pages));
    return Number(readFileSync(path, 'utf8')) >= 1024;
  } catch {
    return false;
  }
}

function machine(): string {
  const model = cpus()[0]?.model ?? 'unknown CPU';
  return `${cpus().length} x ${model}, Linux ${release()}, Node ${process.version}`;
}

/** The target's reactors (summed): collections; empty for targets without vhostd's GC RPC. */
function targetGcCell(r: BenchResult): string {
  const g = r.gc.target;
  return g ? String(g.reduce((a, x) => a + x.collections, 0)) : '';
}

/** Heap growth of the target's reactors in KiB, and bytes allocated per I/O. */
function targetHeapCells(r: BenchResult): string {
  const g = r.gc.target;
  if (!g) return ' | ';
  const growth = g.reduce((a, x) => a + x.heapGrowthBytes, 0);
  const allocated = g.reduce((a, x) => a + x.allocatedBytes, 0);
  return `${growth >= 0 ? '+' : ''}${(growth / 1024).toFixed(0)} | ${r.ios > 0 ? (allocated / r.ios).toFixed(1) : ''}`;
}

function table(): string {
  const head =
    '| target | backend | workload | IOPS | MB/s | avg lat (us) | p50 | p99 | p99.9 | target CPU | generator CPU | generator GCs | target GCs | target heap (KiB) | target B/IO |';
  const sep = '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
  const lines = rows.map(({ target, backend, workload, r }) => {
    const l = r.latencyUs;
    return `| ${target} | ${backend} | ${workload} | ${Math.round(r.iops).toLocaleString('en-US')} | ${r.mbps.toFixed(0)} | ${l.avg.toFixed(1)} | ${l.p50.toFixed(1)} | ${l.p99.toFixed(1)} | ${l.p999.toFixed(1)} | ${r.cpu.targetPct.toFixed(0)}% | ${r.cpu.generatorPct.toFixed(0)}% | ${r.gc.generatorCount} | ${targetGcCell(r)} | ${targetHeapCells(r)} |`;
  });
  return [head, sep, ...lines].join('\n');
}

async function main(): Promise<void> {
  const started = new Date();
  const targets: (() => Promise<RunningTarget | null>)[] = [
    () => startVhostd(targetCpu, String(args['poll-mode']), imageDirs, 1024),
    () => startVhostdMultiReactor(twoCpus, String(args['poll-mode']), 1024, MULTI_REACTOR_WORKLOADS),
    () => startQsd(targetCpu, imageDirs, 1024),
    () => startSpdk(targetCpu, imageDirs, 1024),
  ];
  for (const start of targets) {
    const t = await start();
    if (!t) continue;
    try {
      for (const e of t.endpoints) await measure(t, e);
    } finally {
      await t.stop();
    }
  }
  // Adaptive polling: a separate vhostd in --poll-mode adaptive, null bdev, one I/O at a time.
  let adaptive: AdaptiveFigures | null = null;
  if (!args.only || 'adaptive'.includes(args.only)) {
    const a = await startVhostd(targetCpu, 'adaptive', { tmpfs, disk: null }, 64);
    try {
      adaptive = await measureAdaptive(a, a.endpoints.find((e) => e.backend.startsWith('null'))!.socket, generatorCpu);
    } finally {
      await a.stop();
    }
    process.stdout.write(`adaptive: ${JSON.stringify(adaptive)}\n`);
  }
  // What the machine itself costs (C, no vhostd code): the bound for the file and wake-up rows.
  let floor: PlatformFloor | null = null;
  if (!args.only || 'floor'.includes(args.only)) {
    floor = measurePlatformFloor(tmpfs, targetCpu, generatorCpu);
    if (floor) process.stdout.write(`floor: ${JSON.stringify(floor)}\n`);
  }
  const adaptiveText = adaptive
    ? [
        '',
        `Adaptive polling (vhostd --poll-mode adaptive, blk on the null bdev, one 4 KiB read at a time, generator polling with interrupts off):`,
        `reactor CPU during 1 s of idle after 1 s of idle: ${adaptive.idleReactorCpuPct.toFixed(2)}% of a core (worst of 3);`,
        `first I/O after idle (the reactor sleeps in epoll and wakes on the kick): ${adaptive.firstIoAfterIdleUs.map((u) => u.toFixed(1)).join(', ')} us;`,
        `while busy: ${adaptive.busyIoUs.toFixed(1)} us per I/O.`,
      ]
    : [];
  const section = [
    `Run ${started.toISOString()} on ${machine()}.`,
    `Targets pinned to CPU ${targetCpu} (vhostd --poll-mode ${args['poll-mode']}, one reactor), load generator (vhostd-bench, this checkout) pinned to CPU ${generatorCpu};`,
    `one request queue, queue size 256, ${args.runtime} s measured after ${args.ramp} s ramp, random offsets over 1 GiB; image files written in full (reads find real data); disk files on ${diskDir ?? '(none)'};`,
    `except the "${twoCpus.length} reactors" rows: vhostd -m [${twoCpus.join(',')}] (one reactor pinned to each CPU), blk controllers with cpumask [${twoCpus.join(',')}] whose`,
    `2 queues are served one per reactor, generator with 2 queues (iodepth per queue) still pinned to CPU ${generatorCpu}. This machine has only`,
    `${cpus().length} cores: the generator shares CPU ${generatorCpu} with reactor 1 (three busy-polling threads on two cores), so these rows show`,
    `that queues spread over reactors work, not how vhostd scales; target CPU is up to 200% there.`,
    `generator guest memory ${hugepages ? 'on 2 MiB huge pages (memfd MFD_HUGETLB)' : 'on 4 KiB pages (huge pages could not be reserved)'}.`,
    'GC columns cover the measured window: the generator\'s own thread, and (vhostd only) its reactor threads read through',
    'vhostd_reactor_gc_start/stop: collections, heap growth, and bytes allocated per I/O (heap growth plus what collections freed).',
    '',
    table(),
    ...(bdevperfRows.length > 0
      ? [
          '',
          `The same targets driven by SPDK v23.05's bdevperf (C, virtio-user initiator, one queue of 512, its memory on huge pages), pinned to CPU ${generatorCpu}, ${args.runtime} s per row:`,
          '',
          bdevperfTable(),
        ]
      : []),
    ...adaptiveText,
    ...(floor ? ['', ...describeFloor(floor, targetCpu)] : []),
  ].join('\n');
  mkdirSync(join(ROOT, 'build/bench'), { recursive: true });
  const json = join(ROOT, 'build/bench', `results-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(json, JSON.stringify({ started, machine: machine(), rows, bdevperfRows, adaptive, floor }, null, 2));
  process.stdout.write(`\n${section}\n\nresults: ${json}\n`);
  if (!args['no-write']) {
    const md = join(ROOT, 'BENCHMARKS.md');
    const text = existsSync(md) ? readFileSync(md, 'utf8') : '<!-- bench:begin -->\n<!-- bench:end -->\n';
    const begin = text.indexOf('<!-- bench:begin -->');
    const end = text.indexOf('<!-- bench:end -->');
    if (begin < 0 || end < begin) throw new Error('BENCHMARKS.md lacks the <!-- bench:begin --> / <!-- bench:end --> markers');
    writeFileSync(md, text.slice(0, begin) + '<!-- bench:begin -->\n' + section + '\n' + text.slice(end));
    process.stdout.write(`BENCHMARKS.md updated\n`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
