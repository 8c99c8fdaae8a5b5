// Real NVMe/TCP targets for the tests, on 127.0.0.1, each exporting one image file of the host
// as namespace 1, so the tests can check what landed on "disk":
//  - linux-nvmet: the Linux kernel's nvmet + nvmet-tcp in a TCG guest (Debian's kernel, the VM
//    tests' initramfs, scenario nvmet-target), the image as its virtio-blk disk, reached through
//    QEMU's user network forwarding a host port. Needs only what CI installs for the VM tests.
//  - spdk: SPDK's nvmf_tgt (../shared/tools/build-spdk.sh builds it; not in CI) with an aio bdev
//    on the image, when VHOSTD_SPDK_DIR names the build (e.g. /tmp/spdk/src).
// kill() ends the target abruptly (SIGKILL); start() brings it back on the same port and image.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { RpcClient } from '../../src/rpc/rpc-client.ts';
import { ensureGuestImage, type GuestImage } from '../vm/guest-image.ts';
import { findQemu, qemuArgs, type QemuBinary } from '../vm/qemu.ts';
import { parseGuestLine } from '../vm/guest-results.ts';
import { freePort } from './nbd-servers.ts';

export type NvmfTargetKind = 'linux-nvmet' | 'spdk';

export interface NvmfTarget {
  readonly kind: NvmfTargetKind;
  readonly host: string;
  readonly port: number;
  readonly nqn: string;
  /** The exported image (namespace 1, 512-byte blocks). */
  readonly image: string;
  readonly sizeBytes: number;
  /** Abrupt end (SIGKILL): connections drop, nothing is shut down cleanly. */
  kill(): Promise<void>;
  /** Starts (again) on the same port and image; resolves once it listens. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export const NVMET_NQN = 'nqn.2026-12.io.vhostd:target';

/** The SPDK build to test against, if VHOSTD_SPDK_DIR names one with nvmf_tgt. */
export function spdkDir(): string | null {
  const d = process.env.VHOSTD_SPDK_DIR;
  return d && existsSync(join(d, 'build/bin/nvmf_tgt')) ? d : null;
}

function exitOf(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

class LinuxNvmetTarget implements NvmfTarget {
  readonly kind = 'linux-nvmet';
  readonly host = '127.0.0.1';
  readonly nqn = NVMET_NQN;
  readonly image: string;
  readonly sizeBytes: number;
  port = 0;
  readonly #dir: string;
  readonly #qemu: QemuBinary;
  readonly #guest: GuestImage;
  #child: ChildProcess | null = null;
  #console: string[] = [];

  constructor(dir: string, sizeBytes: number, qemu: QemuBinary, guest: GuestImage) {
    this.#dir = dir;
    this.image = join(dir, 'nvmet.raw');
    this.sizeBytes = sizeBytes;
    this.#qemu = qemu;
    this.#guest = guest;
  }

  async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    const args = qemuArgs({
      name: 'nvmet-target',
      qemu: this.#qemu,
      image: this.#guest,
      params: { test: 'nvmet-target', nqn: this.nqn },
      memoryMiB: 256,
      deviceArgs: [
        '-netdev', `user,id=n0,hostfwd=tcp:127.0.0.1:${this.port}-10.0.2.15:4420`,
        '-device', 'virtio-net-pci,netdev=n0,romfile=',
        // Written through to the image file as the guest's bios complete: what nvmet acknowledges is in the file.
        '-drive', `file=${this.image},format=raw,if=none,id=d0,cache=writethrough,aio=threads`,
        '-device', 'virtio-blk-pci,drive=d0',
      ],
    });
    const child = spawn(this.#qemu.path, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...this.#qemu.env } });
    this.#child = child;
    this.#console = [];
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nvmet guest not listening within 120 s:\n${this.#console.slice(-20).join('\n')}`)), 120_000);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        this.#console.push(line);
        const g = parseGuestLine(line);
        if (g?.kind !== 'result') return;
        if (g.status === 'FAIL') {
          clearTimeout(timer);
          reject(new Error(`nvmet guest: ${g.name} failed: ${g.detail}`));
        } else if (g.name === 'nvmet') {
          clearTimeout(timer);
          resolve();
        }
      });
      child.stderr!.on('data', (d: Buffer) => this.#console.push(`[qemu] ${d.toString()}`));
      child.once('exit', (code, sig) => {
        clearTimeout(timer);
        reject(new Error(`nvmet guest exited (${code ?? sig}):\n${this.#console.slice(-20).join('\n')}`));
      });
    });
    await ready;
  }

  async kill(): Promise<void> {
    const c = this.#child;
    this.#child = null;
    if (!c) return;
    c.kill('SIGKILL');
    await exitOf(c);
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

class SpdkNvmfTarget implements NvmfTarget {
  readonly kind = 'spdk';
  readonly host = '127.0.0.1';
  readonly nqn = 'nqn.2016-06.io.spdk:vhostd-test';
  readonly image: string;
  readonly sizeBytes: number;
  port = 0;
  readonly #dir: string;
  readonly #spdk: string;
  #child: ChildProcess | null = null;
  #log: string[] = [];

  constructor(dir: string, sizeBytes: number, spdk: string) {
    this.#dir = dir;
    this.image = join(dir, 'spdk.raw');
    this.sizeBytes = sizeBytes;
    this.#spdk = spdk;
  }

  async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    const hp = Number(readFileSync('/proc/sys/vm/nr_hugepages', 'utf8'));
    if (hp < 512) writeFileSync('/proc/sys/vm/nr_hugepages', '512');
    const sock = join(this.#dir, 'nvmf.sock');
    rmSync(sock, { force: true });
    const env = { ...process.env, LD_LIBRARY_PATH: `${this.#spdk}/build/lib:${this.#spdk}/isa-l/.libs` };
    const child = spawn(join(this.#spdk, 'build/bin/nvmf_tgt'), ['-m', process.env.VHOSTD_NVMF_CPUMASK ?? '0x2', '-s', '256', '--disable-cpumask-locks', '-r', sock], { stdio: ['ignore', 'pipe', 'pipe'], env });
    this.#child = child;
    this.#log = [];
    child.stdout!.on('data', (d: Buffer) => this.#log.push(d.toString()));
    child.stderr!.on('data', (d: Buffer) => this.#log.push(d.toString()));
    const until = Date.now() + 30_000;
    while (!existsSync(sock)) {
      if (child.exitCode !== null) throw new Error(`nvmf_tgt exited: ${this.#log.join('')}`);
      if (Date.now() > until) throw new Error(`nvmf_tgt made no RPC socket: ${this.#log.join('')}`);
      await sleep(50);
    }
    const rpc = await RpcClient.connect(sock);
    try {
      await rpc.call('nvmf_create_transport', { trtype: 'TCP' });
      await rpc.call('bdev_aio_create', { name: 'aio0', filename: this.image, block_size: 512 });
      await rpc.call('nvmf_create_subsystem', { nqn: this.nqn, allow_any_host: true, serial_number: 'VHOSTD-SPDK' });
      await rpc.call('nvmf_subsystem_add_ns', { nqn: this.nqn, namespace: { bdev_name: 'aio0' } });
      await rpc.call('nvmf_subsystem_add_listener', { nqn: this.nqn, listen_address: { trtype: 'tcp', adrfam: 'ipv4', traddr: '127.0.0.1', trsvcid: String(this.port) } });
    } finally {
      rpc.close();
    }
  }

  async kill(): Promise<void> {
    const c = this.#child;
    this.#child = null;
    if (!c) return;
    c.kill('SIGKILL');
    await exitOf(c);
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** Creates the image (zeroes) and starts the target. Throws VmPrerequisiteMissing for linux-nvmet without QEMU or a guest kernel. */
export async function startNvmfTarget(kind: NvmfTargetKind, sizeMiB = 64): Promise<NvmfTarget> {
  const dir = mkdtempSync('/tmp/vhostd-nvmf-');
  const size = sizeMiB << 20;
  let t: NvmfTarget;
  if (kind === 'linux-nvmet') {
    const qemu = findQemu('system');
    const guest = await ensureGuestImage();
    t = new LinuxNvmetTarget(dir, size, qemu, guest);
  } else {
    const d = spdkDir();
    if (d === null) throw new Error('VHOSTD_SPDK_DIR does not name an SPDK build with build/bin/nvmf_tgt');
    t = new SpdkNvmfTarget(dir, size, d);
  }
  writeFileSync(t.image, '');
  truncateSync(t.image, size);
  try {
    await t.start();
  } catch (e) {
    await t.stop();
    throw e;
  }
  return t;
}

/** The targets this machine can run: linux-nvmet always (VM prerequisites permitting), spdk when built. */
export function nvmfTargetKinds(): NvmfTargetKind[] {
  return spdkDir() !== null ? ['linux-nvmet', 'spdk'] : ['linux-nvmet'];
}
