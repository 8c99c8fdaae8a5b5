// `npm run bench:nbd`: vhostd's NBD bdev against qemu-storage-daemon's nbd driver, both exporting
// the same nbdkit memory export over vhost-user-blk, same generator (vhostd-bench), same run. The
// target runs pinned to one CPU; the generator and nbdkit share the other (a 2-core machine has no
// third: both targets see the same server placement). Prints a row per target and workload and,
// with --write, appends a section to BENCHMARKS.md.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnVhostd, stopper } from './targets.ts';
import { allocPerIo, pair, pairCells, parseRemoteArgs, runComparison, startQsdBlk, type RemoteTarget, type Workload } from './remote-compare.ts';

const ROOT = new URL('../', import.meta.url).pathname;
const USAGE = `usage: npm run bench:nbd -- [options]
vhostd blk on an NBD bdev vs qemu-storage-daemon's nbd driver, over the same nbdkit memory export.
  --runtime S        measured seconds per row (default 4)
  --ramp S           unmeasured seconds before each row (default 1)
  --poll-mode M      vhostd's reactors: poll | adaptive (default poll)
  --target-cpu N     CPU of the target (default 0); the generator and nbdkit get --generator-cpu
  --generator-cpu N  (default 1)
  --size-mib N       export size (default 1024)
  --wait M           generator between completions: interrupt (default: sleeps until the target
                     signals, leaving the shared CPU to the server) | spin
  --write            append the results to BENCHMARKS.md
  -h, --help         this text`;

const args = parseRemoteArgs('bench:nbd', USAGE, { runtime: '4', pollMode: 'poll', wait: 'interrupt' });

const WORKLOADS: Workload[] = [
  { name: '4k randread QD1', rw: 'randread', bs: 4096, iodepth: 1 },
  { name: '4k randread QD32', rw: 'randread', bs: 4096, iodepth: 32 },
  { name: '4k randwrite QD1', rw: 'randwrite', bs: 4096, iodepth: 1 },
  { name: '4k randwrite QD32', rw: 'randwrite', bs: 4096, iodepth: 32 },
  { name: '128k read QD8', rw: 'read', bs: 131072, iodepth: 8 },
];

async function waitFor(path: string, proc: ChildProcess, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!existsSync(path) || (path.endsWith('.pid') && readFileSync(path, 'utf8').trim() === '')) {
    if (proc.exitCode !== null) throw new Error(`${what} exited`);
    if (Date.now() > deadline) throw new Error(`${what}: ${path} did not appear`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-nbd-'));
  const sock = join(dir, 'nbdkit.sock');
  const pid = join(dir, 'nbdkit.pid');
  const nbdkit = spawn('taskset', ['-c', String(args.generatorCpu), 'nbdkit', '-f', '--exit-with-parent', '-U', sock, '-P', pid, 'memory', `size=${args.sizeMiB}M`], { stdio: 'ignore' });
  let rows;
  try {
    await waitFor(pid, nbdkit, 'nbdkit');
    const targets: RemoteTarget[] = [
      {
        name: 'vhostd blk, nbd bdev',
        start: async () => {
          const v = await spawnVhostd([args.targetCpu], args.pollMode);
          await v.rpc.call('bdev_nbd_client_create', { name: 'nbd0', socket: sock });
          await v.rpc.call('vhost_create_blk_controller', { ctrlr: 'blk-nbd', dev_name: 'nbd0' });
          v.rpc.close();
          return { socket: join(v.dir, 'blk-nbd'), pid: v.proc.pid as number, rpc: v.rpcPath, stop: stopper(v.proc, v.dir) };
        },
      },
      {
        name: 'qemu-storage-daemon blk, nbd driver',
        start: () => startQsdBlk(args.targetCpu, `driver=nbd,node-name=d0,server.type=unix,server.path=${sock},cache.direct=on`),
      },
    ];
    rows = await runComparison(targets, WORKLOADS, args);
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
    `Machine: ${cpus().length}x ${cpus()[0]?.model ?? '?'}, Linux ${release()}. Same nbdkit memory export (${args.sizeMiB} MiB, Unix socket) for both; ` +
      `target pinned to CPU ${args.targetCpu}, generator (vhostd-bench --wait ${args.wait}) and nbdkit on CPU ${args.generatorCpu}; vhostd --poll-mode ${args.pollMode}; ` +
      `qemu-storage-daemon with cache.direct=on. ${args.runtime} s per row after ${args.ramp} s ramp. CPU/IO = target CPU time per I/O.`,
    '',
    '| workload | vhostd IOPS | qsd IOPS | ratio | vhostd avg / p99 us | qsd avg / p99 us | vhostd CPU/IO us | qsd CPU/IO us | vhostd reactor alloc B/IO |',
    '|---|---:|---:|---:|---|---|---:|---:|---:|',
  ];
  for (const w of WORKLOADS) {
    const p = pair(rows, w);
    if (!p) continue;
    const c = pairCells(p.v, p.q);
    lines.push(`| ${w.name} | ${c.iops} | ${c.latency} | ${c.cpu} | ${allocPerIo(p.v)} |`);
  }
  appendFileSync(join(ROOT, 'BENCHMARKS.md'), `${lines.join('\n')}\n`);
}

await main();
