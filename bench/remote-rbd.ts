// `npm run bench:rbd`: vhostd's RBD bdev against qemu-storage-daemon's rbd driver, both exporting
// the same image of one single-node Ceph cluster (started here on 127.0.0.1, BlueStore on a file)
// over vhost-user-blk, same generator (vhostd-bench), same run; `rbd bench` on the same image as
// the ceiling (librbd alone, no vhost-user in between). The target is pinned to one CPU; the
// generator and the Ceph daemons share the other. Both targets run librbd without its cache
// (vhostd: rbd_cache=false; qsd: cache.direct=on, which QEMU maps to the same).
import { execFileSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { spawnVhostd, stopper } from './targets.ts';
import { allocPerIo, pair, pairCells, parseRemoteArgs, runComparison, startQsdBlk, type RemoteTarget, type Workload } from './remote-compare.ts';
import { startCephCluster } from '../test/integration/ceph-cluster.ts';

const ROOT = new URL('../', import.meta.url).pathname;
const USAGE = `usage: npm run bench:rbd -- [options]
vhostd blk on an RBD bdev vs qemu-storage-daemon's rbd driver on the same image, and rbd bench.
  --runtime S        measured seconds per row (default 5)
  --ramp S           unmeasured seconds before each row (default 1)
  --poll-mode M      vhostd's reactors: poll | adaptive (default adaptive)
  --target-cpu N     CPU of the target (default 0); the generator and Ceph get --generator-cpu
  --generator-cpu N  (default 1)
  --size-mib N       image size (default 1024; written in full first, so reads hit data)
  --wait M           generator between completions: interrupt (default: sleeps until the target
                     signals, leaving the shared CPU to the server) | spin
  --write            append the results to BENCHMARKS.md
  -h, --help         this text`;

const args = parseRemoteArgs('bench:rbd', USAGE, { runtime: '5', pollMode: 'adaptive', wait: 'interrupt' });

const WORKLOADS: Workload[] = [
  { name: '4k randread QD1', rw: 'randread', bs: 4096, iodepth: 1 },
  { name: '4k randread QD32', rw: 'randread', bs: 4096, iodepth: 32 },
  { name: '4k randwrite QD1', rw: 'randwrite', bs: 4096, iodepth: 1 },
  { name: '4k randwrite QD32', rw: 'randwrite', bs: 4096, iodepth: 32 },
];

/** `rbd bench` pinned to the target CPU: IOPS of librbd alone. */
function rbdBench(conf: string, w: Workload): number {
  const type = w.rw === 'randread' ? 'read' : 'write';
  const total = Math.max(w.bs * 4000, w.bs * w.iodepth * 500);
  const out = execFileSync(
    'taskset',
    ['-c', String(args.targetCpu), 'rbd', '--rbd_cache=false', 'bench', '--io-type', type, '--io-size', String(w.bs), '--io-threads', String(w.iodepth), '--io-total', String(total), '--io-pattern', 'rand', 'rbd/bench'],
    { env: { ...process.env, CEPH_CONF: conf }, encoding: 'utf8', timeout: 300_000 },
  );
  const m = /ops\/sec:\s*([\d.]+)/.exec(out);
  return m ? Number(m[1]) : 0;
}

async function main(): Promise<void> {
  const ceph = await startCephCluster();
  const ceilings = new Map<string, number>();
  let rows;
  try {
    for (const pid of ceph.pids) execFileSync('taskset', ['-a', '-p', '-c', String(args.generatorCpu), String(pid)], { stdio: 'ignore' });
    await ceph.rbd(['create', '--size', `${args.sizeMiB}M`, 'rbd/bench']);
    // Fully written, so reads are served from data and writes overwrite allocated objects.
    await ceph.rbd(['bench', '--io-type', 'write', '--io-size', '4M', '--io-threads', '4', '--io-total', `${args.sizeMiB}M`, '--io-pattern', 'seq', 'rbd/bench'], 600_000);
    const targets: RemoteTarget[] = [
      {
        name: 'vhostd blk, rbd bdev',
        start: async () => {
          const v = await spawnVhostd([args.targetCpu], args.pollMode);
          await v.rpc.call('bdev_rbd_register_cluster', { name: 'ceph', config_file: ceph.conf, config_param: { rbd_cache: 'false' } });
          await v.rpc.call('bdev_rbd_create', { name: 'rbd0', pool_name: 'rbd', rbd_name: 'bench', cluster_name: 'ceph' });
          await v.rpc.call('vhost_create_blk_controller', { ctrlr: 'blk-rbd', dev_name: 'rbd0' });
          v.rpc.close();
          return { socket: join(v.dir, 'blk-rbd'), pid: v.proc.pid as number, rpc: v.rpcPath, stop: stopper(v.proc, v.dir) };
        },
      },
      {
        name: 'qemu-storage-daemon blk, rbd driver',
        start: () => startQsdBlk(args.targetCpu, `driver=rbd,node-name=d0,pool=rbd,image=bench,conf=${ceph.conf},cache.direct=on`),
      },
    ];
    rows = await runComparison(targets, WORKLOADS, args, (w) => {
      const ceiling = rbdBench(ceph.conf, w);
      ceilings.set(w.name, ceiling);
      process.stdout.write(`${'rbd bench (librbd alone)'.padEnd(36)} ${w.name.padEnd(18)} ${Math.round(ceiling).toString().padStart(8)} IOPS\n`);
    });
  } finally {
    await ceph.stop();
  }
  if (!args.write) return;
  const when = new Date().toISOString().slice(0, 16);
  const lines = [
    '',
    `## RBD: vhostd's rbd bdev vs qemu-storage-daemon's rbd driver (npm run bench:rbd, ${when})`,
    '',
    `Machine: ${cpus().length}x ${cpus()[0]?.model ?? '?'}, Linux ${release()}. One single-node Ceph 16.2 cluster on 127.0.0.1 (mon + one BlueStore OSD on a sparse file, pool size 1), ` +
      `image of ${args.sizeMiB} MiB written in full first. Target pinned to CPU ${args.targetCpu} (with its librados threads); generator (vhostd-bench --wait ${args.wait}) and the Ceph daemons on CPU ${args.generatorCpu}. ` +
      `vhostd --poll-mode ${args.pollMode} with rbd_cache=false; qemu-storage-daemon with cache.direct=on. ${args.runtime} s per row after ${args.ramp} s ramp. ` +
      'CPU/IO = target CPU time per I/O (all its threads). rbd bench: same image, same CPU as the targets, no vhost-user, rbd_cache=false. the qemu-storage-daemon rbd driver is Debian package qemu-block-extra (bookworm-backports).',
    '',
    '| workload | vhostd IOPS | qsd IOPS | ratio | rbd bench IOPS | vhostd avg / p99 us | qsd avg / p99 us | vhostd CPU/IO us | qsd CPU/IO us | vhostd reactor alloc B/IO |',
    '|---|---:|---:|---:|---:|---|---|---:|---:|---:|',
  ];
  for (const w of WORKLOADS) {
    const p = pair(rows, w);
    if (!p) continue;
    const c = pairCells(p.v, p.q);
    lines.push(`| ${w.name} | ${c.iops} | ${Math.round(ceilings.get(w.name) ?? 0)} | ${c.latency} | ${c.cpu} | ${allocPerIo(p.v)} |`);
  }
  appendFileSync(join(ROOT, 'BENCHMARKS.md'), `${lines.join('\n')}\n`);
}

await main();
