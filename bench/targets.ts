// Targets of the benchmark matrix: vhostd (this checkout) and qemu-storage-daemon, each started
// pinned to the target CPU, each exposing sockets the load generator attaches to.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RpcClient } from '../src/rpc/rpc-client.ts';
import { createImageFile, removeImageFile } from './image-file.ts';

const ROOT = new URL('../', import.meta.url).pathname;
const NODE = join(ROOT, 'node_modules/.bin/node');

export interface Endpoint {
  /** Row label, e.g. "vhostd blk malloc". */
  label: string;
  socket: string;
  device: 'scsi' | 'blk';
  /** What backs it, said plainly (RAM, no data touched, tmpfs file...). */
  backend: string;
  /** Request queues the generator uses (default 1). */
  queues?: number;
  /** Only these workloads of the matrix (by name; default all). */
  workloads?: string[];
}

export interface RunningTarget {
  name: string;
  pid: number;
  /** vhostd's RPC socket: the generator reads its reactors' GC over the measured window. */
  rpc?: string;
  endpoints: Endpoint[];
  stop(): Promise<void>;
}

async function waitFor(path: string, proc: ChildProcess, err: () => string): Promise<void> {
  const deadline = Date.now() + 20000;
  while (!existsSync(path)) {
    if (proc.exitCode !== null) throw new Error(`exited: ${err()}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${path}: ${err()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function stopper(proc: ChildProcess, dir: string): () => Promise<void> {
  return async () => {
    if (proc.exitCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
}

/**
 * A vhostd process (taskset to `cpus`, or to `processCpus` when given, so that its control-plane
 * thread may run elsewhere; one reactor per CPU of `cpus`) and an RPC client on it.
 */
export async function spawnVhostd(
  cpus: number[],
  pollMode: string,
  processCpus: number[] = cpus,
): Promise<{ dir: string; rpcPath: string; proc: ChildProcess; rpc: RpcClient }> {
  const dir = mkdtempSync(join(tmpdir(), 'vhostd-bench-'));
  const rpcPath = join(dir, 'rpc.sock');
  const list = cpus.join(',');
  const proc = spawn('taskset', ['-c', processCpus.join(','), NODE, join(ROOT, 'src/cli/vhostd.ts'), '--no-default', '-S', dir, '-r', rpcPath, '-m', `[${list}]`, '--poll-mode', pollMode, '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  await waitFor(rpcPath, proc, () => err);
  return { dir, rpcPath, proc, rpc: await RpcClient.connect(rpcPath) };
}

/** Where the file-backed rows keep their images: tmpfs (memory) and, when given, a disk file system. */
export interface ImageDirs {
  tmpfs: string;
  disk: string | null;
}

/** vhostd pinned to `cpu` (process and reactor), with RAM, null and (if available) io_uring bdevs on a tmpfs file and a disk file. */
export async function startVhostd(cpu: number, pollMode: string, dirs: ImageDirs, sizeMiB: number): Promise<RunningTarget> {
  const { dir, rpcPath, proc, rpc } = await spawnVhostd([cpu], pollMode);
  const blocks = (sizeMiB * 1024 * 1024) / 512;
  const endpoints: Endpoint[] = [];
  const files: string[] = [];
  await rpc.call('bdev_malloc_create', { name: 'mal', num_blocks: blocks, block_size: 512 });
  await rpc.call('bdev_malloc_create', { name: 'mal2', num_blocks: blocks, block_size: 512 });
  await rpc.call('bdev_null_create', { name: 'nul', num_blocks: blocks, block_size: 512 });
  await rpc.call('vhost_create_scsi_controller', { ctrlr: 'scsi-mal' });
  await rpc.call('vhost_scsi_controller_add_target', { ctrlr: 'scsi-mal', scsi_target_num: 0, bdev_name: 'mal' });
  await rpc.call('vhost_create_blk_controller', { ctrlr: 'blk-mal', dev_name: 'mal2' });
  await rpc.call('vhost_create_blk_controller', { ctrlr: 'blk-nul', dev_name: 'nul' });
  endpoints.push(
    { label: 'vhostd scsi', socket: join(dir, 'scsi-mal'), device: 'scsi', backend: 'malloc (RAM)' },
    { label: 'vhostd blk', socket: join(dir, 'blk-mal'), device: 'blk', backend: 'malloc (RAM)' },
    { label: 'vhostd blk', socket: join(dir, 'blk-nul'), device: 'blk', backend: 'null (no data touched)' },
  );
  const methods = (await rpc.call('rpc_get_methods')) as string[];
  if (methods.includes('bdev_uring_create')) {
    // A written tmpfs file is mapped (under a file lease); the second one is read and written
    // through system calls (mmap: false), as any file is when its lease cannot be had.
    files.push(createImageFile(dirs.tmpfs, `vhostd-bench-${process.pid}.img`, sizeMiB));
    await rpc.call('bdev_uring_create', { name: 'ur', filename: files[0], block_size: 512 });
    await rpc.call('vhost_create_blk_controller', { ctrlr: 'blk-ur', dev_name: 'ur' });
    const [ur] = (await rpc.call('bdev_get_bdevs', { name: 'ur' })) as { driver_specific: { uring: { mapped?: boolean; map_reason?: string } } }[];
    const how = ur.driver_specific.uring.mapped ? 'mapped' : `not mapped: ${ur.driver_specific.uring.map_reason ?? 'not tmpfs'}`;
    endpoints.push({ label: 'vhostd blk', socket: join(dir, 'blk-ur'), device: 'blk', backend: `uring, file on tmpfs (${how})` });
    files.push(createImageFile(dirs.tmpfs, `vhostd-bench-${process.pid}-calls.img`, sizeMiB));
    await rpc.call('bdev_uring_create', { name: 'ur-calls', filename: files[1], block_size: 512, mmap: false });
    await rpc.call('vhost_create_blk_controller', { ctrlr: 'blk-ur-calls', dev_name: 'ur-calls' });
    endpoints.push({ label: 'vhostd blk', socket: join(dir, 'blk-ur-calls'), device: 'blk', backend: 'uring, file on tmpfs (mmap: false)' });
    if (dirs.disk) {
      const disk = createImageFile(dirs.disk, `vhostd-bench-${process.pid}.img`, sizeMiB);
      files.push(disk);
      await rpc.call('bdev_uring_create', { name: 'ur-disk', filename: disk, block_size: 512 });
      await rpc.call('vhost_create_blk_controller', { ctrlr: 'blk-ur-disk', dev_name: 'ur-disk' });
      endpoints.push({ label: 'vhostd blk', socket: join(dir, 'blk-ur-disk'), device: 'blk', backend: 'uring, file on disk (O_DIRECT)' });
    }
  }
  rpc.close();
  const stop = stopper(proc, dir);
  return {
    name: 'vhostd',
    pid: proc.pid!,
    rpc: rpcPath,
    endpoints,
    // The tmpfs file holds its size in RAM once written: never leave it behind.
    async stop() {
      await stop();
      for (const f of files) removeImageFile(f);
    },
  };
}

/**
 * vhostd with one reactor per CPU of `cpus` and blk controllers on all of them: the generator's
 * queues are spread over the reactors (queue i on reactor i).
 */
export async function startVhostdMultiReactor(cpus: number[], pollMode: string, sizeMiB: number, workloads: string[]): Promise<RunningTarget> {
  const { dir, rpcPath, proc, rpc } = await spawnVhostd(cpus, pollMode);
  const blocks = (sizeMiB * 1024 * 1024) / 512;
  const cpumask = `[${cpus.join(',')}]`;
  try {
    await rpc.call('bdev_malloc_create', { name: 'mal', num_blocks: blocks, block_size: 512 });
    await rpc.call('bdev_null_create', { name: 'nul', num_blocks: blocks, block_size: 512 });
    await rpc.call('vhost_create_blk_controller', { ctrlr: 'blk-mal', dev_name: 'mal', cpumask });
    await rpc.call('vhost_create_blk_controller', { ctrlr: 'blk-nul', dev_name: 'nul', cpumask });
  } finally {
    rpc.close();
  }
  const label = `vhostd blk, ${cpus.length} reactors`;
  const queues = cpus.length;
  return {
    name: 'vhostd-multi-reactor',
    pid: proc.pid!,
    rpc: rpcPath,
    endpoints: [
      { label, socket: join(dir, 'blk-mal'), device: 'blk', backend: 'malloc (RAM)', queues, workloads },
      { label, socket: join(dir, 'blk-nul'), device: 'blk', backend: 'null (no data touched)', queues, workloads },
    ],
    stop: stopper(proc, dir),
  };
}

/** qemu-storage-daemon pinned to `cpu`: vhost-user-blk exports of null-co and an io_uring tmpfs file. */
export async function startQsd(cpu: number, dirs: ImageDirs, sizeMiB: number): Promise<RunningTarget | null> {
  const bin = '/usr/bin/qemu-storage-daemon';
  if (!existsSync(bin)) return null;
  const dir = mkdtempSync(join(tmpdir(), 'qsd-bench-'));
  const files = [createImageFile(dirs.tmpfs, `qsd-bench-${process.pid}.img`, sizeMiB)];
  if (dirs.disk) files.push(createImageFile(dirs.disk, `qsd-bench-${process.pid}.img`, sizeMiB));
  const nul = join(dir, 'nul.sock');
  const fil = join(dir, 'file.sock');
  const dsk = join(dir, 'disk.sock');
  const proc = spawn(
    'taskset',
    [
      '-c', String(cpu), bin,
      '--blockdev', `driver=null-co,node-name=nul,size=${sizeMiB * 1024 * 1024}`,
      '--blockdev', `driver=file,node-name=fil,filename=${files[0]},aio=io_uring,cache.direct=off`,
      '--export', `type=vhost-user-blk,id=e0,node-name=nul,addr.type=unix,addr.path=${nul},writable=on`,
      '--export', `type=vhost-user-blk,id=e1,node-name=fil,addr.type=unix,addr.path=${fil},writable=on`,
      ...(dirs.disk
        ? [
            '--blockdev', `driver=file,node-name=dsk,filename=${files[1]},aio=io_uring,cache.direct=on`,
            '--export', `type=vhost-user-blk,id=e2,node-name=dsk,addr.type=unix,addr.path=${dsk},writable=on`,
          ]
        : []),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  await waitFor(fil, proc, () => err);
  const stop = stopper(proc, dir);
  return {
    name: 'qemu-storage-daemon',
    pid: proc.pid!,
    endpoints: [
      { label: 'qemu-storage-daemon blk', socket: nul, device: 'blk', backend: 'null-co (no data touched)' },
      { label: 'qemu-storage-daemon blk', socket: fil, device: 'blk', backend: 'file on tmpfs, aio=io_uring' },
      ...(dirs.disk ? [{ label: 'qemu-storage-daemon blk', socket: dsk, device: 'blk' as const, backend: 'file on disk, aio=io_uring, O_DIRECT' }] : []),
    ],
    async stop() {
      await stop();
      for (const f of files) removeImageFile(f);
    },
  };
}

/**
 * SPDK's vhost target, when built (../shared/tools/build-spdk.sh; SPDK_DIR or /tmp/spdk/src),
 * pinned to `cpu`, configured with the same JSON-RPC method names vhostd implements.
 */
export async function startSpdk(cpu: number, dirs: ImageDirs, sizeMiB: number): Promise<RunningTarget | null> {
  const base = process.env.SPDK_DIR ?? '/tmp/spdk/src';
  const bin = join(base, 'build/bin/vhost');
  if (!existsSync(bin)) return null;
  // SPDK needs hugepages (as root: reserve and mount them once).
  spawnSync('sh', ['-c', 'echo 2048 > /proc/sys/vm/nr_hugepages; mountpoint -q /dev/hugepages || (mkdir -p /dev/hugepages && mount -t hugetlbfs nodev /dev/hugepages)']);
  const dir = mkdtempSync(join(tmpdir(), 'spdk-bench-'));
  const rpcPath = join(dir, 'spdk.sock');
  const proc = spawn(bin, ['-m', `0x${(1 << cpu).toString(16)}`, '-s', '3072', '-S', dir, '-r', rpcPath], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LD_LIBRARY_PATH: `${join(base, 'build/lib')}:${join(base, 'isa-l/.libs')}` },
  });
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  await waitFor(rpcPath, proc, () => err);
  const rpc = await RpcClient.connect(rpcPath);
  // The peer of vhostd's uring bdev on a tmpfs file: SPDK's aio bdev on the same kind of file
  // (its uring bdev needs a build with liburing; on tmpfs, aio reads and writes inside io_submit).
  const files = [createImageFile(dirs.tmpfs, `spdk-bench-${process.pid}.img`, sizeMiB)];
  if (dirs.disk) files.push(createImageFile(dirs.disk, `spdk-bench-${process.pid}.img`, sizeMiB));
  try {
    await rpc.call('framework_wait_init').catch(() => {});
    const blocks = (sizeMiB * 1024 * 1024) / 512;
    await rpc.call('bdev_malloc_create', { name: 'mal', num_blocks: blocks, block_size: 512 });
    await rpc.call('bdev_malloc_create', { name: 'mal2', num_blocks: blocks, block_size: 512 });
    await rpc.call('bdev_null_create', { name: 'nul', num_blocks: blocks, block_size: 512 });
    await rpc.call('vhost_create_scsi_controller', { ctrlr: 'scsi-mal' });
    await rpc.call('vhost_scsi_controller_add_target', { ctrlr: 'scsi-mal', scsi_target_num: 0, bdev_name: 'mal' });
    await rpc.call('vhost_create_blk_controller', { ctrlr: 'blk-mal', dev_name: 'mal2' });
    await rpc.call('vhost_create_blk_controller', { ctrlr: 'blk-nul', dev_name: 'nul' });
    await rpc.call('bdev_aio_create', { filename: files[0], name: 'aio', block_size: 512 });
    await rpc.call('vhost_create_blk_controller', { ctrlr: 'blk-aio', dev_name: 'aio' });
    // SPDK's aio bdev opens with O_DIRECT whenever the file allows it.
    if (files[1]) {
      await rpc.call('bdev_aio_create', { filename: files[1], name: 'aio-disk', block_size: 512 });
      await rpc.call('vhost_create_blk_controller', { ctrlr: 'blk-aio-disk', dev_name: 'aio-disk' });
    }
  } catch (e) {
    proc.kill('SIGKILL');
    for (const f of files) removeImageFile(f);
    throw e;
  } finally {
    rpc.close();
  }
  const stop = stopper(proc, dir);
  return {
    name: 'spdk',
    pid: proc.pid!,
    endpoints: [
      { label: 'SPDK vhost scsi', socket: join(dir, 'scsi-mal'), device: 'scsi', backend: 'malloc (RAM)' },
      { label: 'SPDK vhost blk', socket: join(dir, 'blk-mal'), device: 'blk', backend: 'malloc (RAM)' },
      { label: 'SPDK vhost blk', socket: join(dir, 'blk-nul'), device: 'blk', backend: 'null (no data touched)' },
      { label: 'SPDK vhost blk', socket: join(dir, 'blk-aio'), device: 'blk', backend: 'aio, file on tmpfs' },
      ...(files[1] ? [{ label: 'SPDK vhost blk', socket: join(dir, 'blk-aio-disk'), device: 'blk' as const, backend: 'aio, file on disk (O_DIRECT)' }] : []),
    ],
    async stop() {
      await stop();
      for (const f of files) removeImageFile(f);
    },
  };
}
