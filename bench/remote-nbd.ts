// `npm run bench:nbd`: vhostd's NBD bdev against qemu-storage-daemon's nbd driver, both exporting
// the same nbdkit memory export over vhost-user-blk, same generator (vhostd-bench), same run. The
// target runs pinned to one CPU; the generator and nbdkit share the other (a 2-core machine has no
// third: both targets see the same server placement). Prints a row per target and workload and,
// with --write, appends a section to BENCHMARKS.md.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runBench, type BenchResult } from '../src/bench/bench-runner.ts';
import { validateJob, type RwMode } from '../src/bench/bench-job.ts';
import { spawnVhostd, stopper } from './targets.ts';

const ROOT = new URL('../', import.meta.url).pathname;
const USAGE = `usage: npm run bench:nbd -- [options]
vhostd blk on an NBD bdev vs qemu-storage-daemon's nbd driver, over the same nbdkit memory export.
  --runtime S        measured seconds per row (default 4)
  --ramp S           unmeasured seconds before each row (default 1)
  --poll-mode M      vhostd's reactors: poll | adaptive (default poll)
  --target-cpu N     CPU of the target (default 0); the generator and nbdkit get --generator-cpu
  --generator-cpu N  (default 1)
  --size-mib N       export size (default 1024)
  --write            append the results to BENCHMARKS.md
  -h, --help         this text`;

const { values: args } = (() => {
  try {
    return parseArgs({
      options: {
        runtime: { type: 'string', default: '4' },
        ramp: { type: 'string', default: '1' },
        'poll-mode': { type: 'string', default: 'poll' },
        'target-cpu': { type: 'string', default: '0' },
        'generator-cpu': { type: 'string', default: '1' },
        'size-mib': { type: 'string', default: '1024' },
        write: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    process.stderr.write(`bench:nbd: ${(e as Error).message}\n\n${USAGE}\n`);
    process.exit(2);
  }
})();
if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const WORKLOADS: { name: string; rw: RwMode; bs: number; iodepth: number }[] = [
  { name: '4k randread QD1', rw: 'randread', bs: 4096, iodepth: 1 },
  { name: '4k randread QD32', rw: 'randread', bs: 4096, iodepth: 32 },
  { name: '4k randwrite QD1', rw: 'randwrite', bs: 4096, iodepth: 1 },
  { name: '4k randwrite QD32', rw: 'randwrite', bs: 4096, iodepth: 32 },
  { name: '128k read QD8', rw: 'read', bs: 131072, iodepth: 8 },
];

const targetCpu = Number(args['target-cpu']);
const generatorCpu = Number(args['generator-cpu']);
const sizeMiB = Number(args['size-mib']);

async function waitFor(path: string, proc: ChildProcess, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!existsSync(path) || (path.endsWith('.pid') && readFileSync(path, 'utf8').trim() === '')) {
    if (proc.exitCode !== null) throw new Error(`${what} exited`);
    if (Date.now() > deadline) throw new Error(`${what}: ${path} did not appear`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** vhostd's reactors: bytes allocated per I/O over the measured window. */
function allocCell(r: BenchResult): string {
  const t = r.gc.target;
  if (!t || r.ios === 0) return '';
  const bytes = t.reduce((a, x) => a + x.allocatedBytes, 0);
  return `reactor alloc ${(bytes / r.ios).toFixed(2)} B/IO`;
}

interface Row {
  target: string;
  workload: string;
  r: BenchResult;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-nbd-'));
  const sock = join(dir, 'nbdkit.sock');
  const pid = join(dir, 'nbdkit.pid');
  const nbdkit = spawn('taskset', ['-c', String(generatorCpu), 'nbdkit', '-f', '--exit-with-parent', '-U', sock, '-P', pid, 'memory', `size=${sizeMiB}M`], { stdio: 'ignore' });
  const rows: Row[] = [];
  try {
    await waitFor(pid, nbdkit, 'nbdkit');
    const targets: { name: string; start: () => Promise<{ socket: string; pid: number; rpc?: string; stop: () => Promise<void> }> }[] = [
      {
        name: 'vhostd blk, nbd bdev',
        start: async () => {
          const v = await spawnVhostd([targetCpu], args['poll-mode'] as string);
          await v.rpc.call('bdev_nbd_client_create', { name: 'nbd0', socket: sock });
          await v.rpc.call('vhost_create_blk_controller', { ctrlr: 'blk-nbd', dev_name: 'nbd0' });
          v.rpc.close();
          return { socket: join(v.dir, 'blk-nbd'), pid: v.proc.pid as number, rpc: v.rpcPath, stop: stopper(v.proc, v.dir) };
        },
      },
      {
        name: 'qemu-storage-daemon blk, nbd driver',
        start: async () => {
          const qdir = mkdtempSync(join(tmpdir(), 'bench-qsd-'));
          const qsock = join(qdir, 'blk.sock');
          const q = spawn(
            'taskset',
            [
              '-c', String(targetCpu), 'qemu-storage-daemon',
              '--blockdev', `driver=nbd,node-name=n0,server.type=unix,server.path=${sock},cache.direct=on`,
              '--export', `type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,addr.path=${qsock},writable=on`,
            ],
            { stdio: ['ignore', 'ignore', 'inherit'] },
          );
          await waitFor(qsock, q, 'qemu-storage-daemon');
          return { socket: qsock, pid: q.pid as number, stop: stopper(q, qdir) };
        },
      },
    ];
    for (const w of WORKLOADS) {
      for (const t of targets) {
        const running = await t.start();
        try {
          const job = validateJob({
            socket: running.socket, device: 'blk', rw: w.rw, rwmixread: 50, bs: w.bs, iodepth: w.iodepth, queues: 1,
            queueSize: 256, runtime: Number(args.runtime), ramp: Number(args.ramp), size: 0, verify: false,
            cpu: generatorCpu, target: 0, packed: false, seed: 1, targetPid: running.pid, hugepages: false, targetRpc: running.rpc,
          });
          const r = await runBench(job);
          rows.push({ target: t.name, workload: w.name, r });
          const l = r.latencyUs;
          const cpuPerIo = r.iops > 0 ? (r.cpu.targetPct * 10_000) / r.iops : 0;
          process.stdout.write(
            `${t.name.padEnd(36)} ${w.name.padEnd(18)} ${Math.round(r.iops).toString().padStart(8)} IOPS avg ${l.avg.toFixed(1)}us p99 ${l.p99.toFixed(1)}us ` +
              `target ${r.cpu.targetPct.toFixed(0)}% (${cpuPerIo.toFixed(1)} us CPU/IO) ${allocCell(r)} errors ${r.errors}\n`,
          );
        } finally {
          await running.stop();
        }
      }
    }
  } finally {
    nbdkit.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
  if (!args.write) return;
  const when = new Date().toISOString().slice(0, 16);
  const lines = [
    '',
    `## NBD: vhostd's nbd bdev vs qemu-storage-daemon's nbd driver (npm run bench:nbd, ${when})`,
    '',
    `Machine: ${cpus().length}x ${cpus()[0]?.model ?? '?'}, Linux ${release()}. Same nbdkit memory export (${sizeMiB} MiB, Unix socket) for both; ` +
      `target pinned to CPU ${targetCpu}, generator (vhostd-bench) and nbdkit on CPU ${generatorCpu}; vhostd --poll-mode ${String(args['poll-mode'])}; ` +
      `qemu-storage-daemon with cache.direct=on. ${args.runtime} s per row after ${args.ramp} s ramp. CPU/IO = target CPU time per I/O.`,
    '',
    '| workload | vhostd IOPS | qsd IOPS | ratio | vhostd avg / p99 us | qsd avg / p99 us | vhostd CPU/IO us | qsd CPU/IO us | vhostd reactor alloc |',
    '|---|---:|---:|---:|---|---|---:|---:|---|',
  ];
  for (const w of WORKLOADS) {
    const v = rows.find((r) => r.workload === w.name && r.target.startsWith('vhostd'))?.r;
    const q = rows.find((r) => r.workload === w.name && r.target.startsWith('qemu'))?.r;
    if (!v || !q) continue;
    const per = (r: BenchResult): string => (r.iops > 0 ? ((r.cpu.targetPct * 10_000) / r.iops).toFixed(1) : '-');
    lines.push(
      `| ${w.name} | ${Math.round(v.iops)} | ${Math.round(q.iops)} | ${(v.iops / q.iops).toFixed(2)} | ${v.latencyUs.avg.toFixed(0)} / ${v.latencyUs.p99.toFixed(0)} | ` +
        `${q.latencyUs.avg.toFixed(0)} / ${q.latencyUs.p99.toFixed(0)} | ${per(v)} | ${per(q)} | ${allocCell(v).replace('reactor alloc ', '')} |`,
    );
  }
  appendFileSync(join(ROOT, 'BENCHMARKS.md'), `${lines.join('\n')}\n`);
}

await main();
