// `npm run bench:nvme`: vhostd's NVMe/TCP initiator against SPDK's vhost target with its own
// bdev_nvme, both attached to the same SPDK nvmf_tgt subsystem (a malloc namespace) on 127.0.0.1
// and exporting it over vhost-user-blk; same generator (vhostd-bench, guest memory on huge pages
// for both, as SPDK needs), same run. The target under test is pinned to one CPU; nvmf_tgt and the
// generator share the other (a 2-core machine has no third; both poll, so they take turns on it:
// the same placement for both peers). Needs SPDK built by ../shared/tools/build-spdk.sh
// (SPDK_DIR, default /tmp/spdk/src).
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnVhostd, stopper } from './targets.ts';
import { allocPerIo, pair, pairCells, parseRemoteArgs, runComparison, type RemoteTarget, type Workload } from './remote-compare.ts';
import { RpcClient } from '../src/rpc/rpc-client.ts';

const ROOT = new URL('../', import.meta.url).pathname;
const SPDK = process.env.SPDK_DIR ?? '/tmp/spdk/src';
const USAGE = `usage: npm run bench:nvme -- [options]
vhostd blk on an NVMe/TCP namespace vs SPDK vhost blk on bdev_nvme, over the same SPDK nvmf_tgt.
  --runtime S        measured seconds per row (default 4)
  --ramp S           unmeasured seconds before each row (default 1)
  --poll-mode M      vhostd's reactors: poll | adaptive (default poll, as SPDK)
  --target-cpu N     CPU of the target (default 0); nvmf_tgt and the generator get --generator-cpu
  --generator-cpu N  (default 1)
  --size-mib N       namespace size (malloc bdev in nvmf_tgt; default 1024)
  --wait M           generator between completions: interrupt (default: sleeps until the target
                     signals, leaving the shared CPU to the server) | spin
  --write            append the results to BENCHMARKS.md
  -h, --help         this text
SPDK_DIR names the SPDK build (default /tmp/spdk/src).`;

const args = parseRemoteArgs('bench:nvme', USAGE, { runtime: '4', pollMode: 'poll', wait: 'interrupt' });
const NQN = 'nqn.2016-06.io.spdk:bench';

const WORKLOADS: Workload[] = [
  { name: '4k randread QD1', rw: 'randread', bs: 4096, iodepth: 1 },
  { name: '4k randread QD32', rw: 'randread', bs: 4096, iodepth: 32 },
  { name: '4k randwrite QD1', rw: 'randwrite', bs: 4096, iodepth: 1 },
  { name: '4k randwrite QD32', rw: 'randwrite', bs: 4096, iodepth: 32 },
  { name: '128k read QD8', rw: 'read', bs: 131072, iodepth: 8 },
];

const mask = (cpu: number): string => `0x${(1 << cpu).toString(16)}`;
const spdkEnv = { ...process.env, LD_LIBRARY_PATH: `${join(SPDK, 'build/lib')}:${join(SPDK, 'isa-l/.libs')}` };

async function waitForSocket(path: string, exited: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!existsSync(path)) {
    if (exited()) throw new Error(`${what} exited`);
    if (Date.now() > deadline) throw new Error(`${what}: ${path} did not appear`);
    await sleep(50);
  }
}

async function main(): Promise<void> {
  for (const bin of ['nvmf_tgt', 'vhost']) {
    if (!existsSync(join(SPDK, 'build/bin', bin))) throw new Error(`${join(SPDK, 'build/bin', bin)} is missing: build SPDK with ../shared/tools/build-spdk.sh (or set SPDK_DIR)`);
  }
  writeFileSync('/proc/sys/vm/nr_hugepages', '2048');
  const dir = mkdtempSync(join(tmpdir(), 'bench-nvmf-'));
  const tsock = join(dir, 'nvmf.sock');
  const tgt = spawn(join(SPDK, 'build/bin/nvmf_tgt'), ['-m', mask(args.generatorCpu), '-s', '1024', '--disable-cpumask-locks', '-r', tsock], { stdio: 'ignore', env: spdkEnv });
  const port = 4420 + (process.pid % 1000);
  let rows;
  try {
    await waitForSocket(tsock, () => tgt.exitCode !== null, 'nvmf_tgt');
    const rpc = await RpcClient.connect(tsock);
    await rpc.call('framework_wait_init').catch(() => {});
    await rpc.call('nvmf_create_transport', { trtype: 'TCP' });
    await rpc.call('bdev_malloc_create', { name: 'm0', num_blocks: (args.sizeMiB << 20) / 512, block_size: 512 });
    await rpc.call('nvmf_create_subsystem', { nqn: NQN, allow_any_host: true, serial_number: 'BENCH' });
    await rpc.call('nvmf_subsystem_add_ns', { nqn: NQN, namespace: { bdev_name: 'm0' } });
    await rpc.call('nvmf_subsystem_add_listener', { nqn: NQN, listen_address: { trtype: 'tcp', adrfam: 'ipv4', traddr: '127.0.0.1', trsvcid: String(port) } });
    rpc.close();
    const attach = { name: 'nv', trtype: 'tcp', adrfam: 'ipv4', traddr: '127.0.0.1', trsvcid: String(port), subnqn: NQN };
    const targets: RemoteTarget[] = [
      {
        name: 'vhostd blk, nvme bdev',
        start: async () => {
          const v = await spawnVhostd([args.targetCpu], args.pollMode);
          await v.rpc.call('bdev_nvme_attach_controller', attach);
          await v.rpc.call('vhost_create_blk_controller', { ctrlr: 'blk-nvme', dev_name: 'nvn1' });
          v.rpc.close();
          return { socket: join(v.dir, 'blk-nvme'), pid: v.proc.pid as number, rpc: v.rpcPath, hugepages: true, stop: stopper(v.proc, v.dir) };
        },
      },
      {
        name: 'SPDK vhost blk, bdev_nvme',
        start: async () => {
          const sdir = mkdtempSync(join(tmpdir(), 'bench-spdk-'));
          const rpcPath = join(sdir, 'spdk.sock');
          const p = spawn(join(SPDK, 'build/bin/vhost'), ['-m', mask(args.targetCpu), '-s', '1024', '--disable-cpumask-locks', '-S', sdir, '-r', rpcPath], { stdio: 'ignore', env: spdkEnv });
          await waitForSocket(rpcPath, () => p.exitCode !== null, 'SPDK vhost');
          const r = await RpcClient.connect(rpcPath);
          await r.call('framework_wait_init').catch(() => {});
          await r.call('bdev_nvme_attach_controller', attach);
          await r.call('vhost_create_blk_controller', { ctrlr: 'blk-nvme', dev_name: 'nvn1' });
          r.close();
          return { socket: join(sdir, 'blk-nvme'), pid: p.pid as number, hugepages: true, stop: stopper(p, sdir) };
        },
      },
    ];
    rows = await runComparison(targets, WORKLOADS, args);
  } finally {
    await stopper(tgt, dir)();
  }
  if (!args.write) return;
  const when = new Date().toISOString().slice(0, 16);
  const lines = [
    '',
    `## NVMe/TCP: vhostd's nvme bdev vs SPDK vhost's bdev_nvme (npm run bench:nvme, ${when})`,
    '',
    `Machine: ${cpus().length}x ${cpus()[0]?.model ?? '?'}, Linux ${release()}. SPDK v23.05 nvmf_tgt on 127.0.0.1 exporting a ${args.sizeMiB} MiB malloc namespace over TCP (no digests), ` +
      `pinned to CPU ${args.generatorCpu} with the generator (vhostd-bench --wait ${args.wait}, guest memory on 2 MiB huge pages): nvmf_tgt polls, the generator sleeps until the target signals a completion (as a guest with interrupts). Target pinned to CPU ${args.targetCpu}: ` +
      `vhostd --poll-mode ${args.pollMode} (one reactor, one I/O queue) or SPDK v23.05 vhost (one reactor, bdev_nvme defaults). ${args.runtime} s per row after ${args.ramp} s ramp. CPU/IO = target CPU time per I/O.`,
    '',
    '| workload | vhostd IOPS | SPDK IOPS | ratio | vhostd avg / p99 us | SPDK avg / p99 us | vhostd CPU/IO us | SPDK CPU/IO us | vhostd reactor alloc B/IO |',
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
