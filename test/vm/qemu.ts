// Runs a test guest under QEMU/TCG and collects its VHOSTD-RESULT lines.
// Two QEMUs: the one on PATH (10.x from bookworm-backports) and 7.2 unpacked
// by scripts/fetch-qemu-7.2.sh into build/qemu-7.2. Only the device arguments
// differ between QEMU's built-in devices and vhostd's vhost-user devices.
import { spawn, execFileSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT, VM_BUILD_DIR } from './guest-image.ts';
import type { GuestImage } from './guest-image.ts';
import { parseGuestLine } from './guest-results.ts';
import type { GuestResult } from './guest-results.ts';
import { VmHarnessError, VmPrerequisiteMissing } from './vm-errors.ts';

export type QemuFlavour = 'system' | '7.2';

export interface QemuBinary {
  flavour: QemuFlavour;
  path: string;
  /** e.g. "10.0.2" */
  version: string;
  major: number;
  /** -L directories, searched before the binary's built-in firmware path. */
  dataDirs: string[];
  /** Extra environment (module and library paths of an unpacked QEMU). */
  env: Record<string, string>;
}

export const QEMU_72_DIR = join(REPO_ROOT, 'build', 'qemu-7.2');

function qemuVersion(path: string, env: Record<string, string>): string {
  const out = execFileSync(path, ['--version'], { env: { ...process.env, ...env }, encoding: 'utf8' });
  const m = /QEMU emulator version (\d+\.\d+(?:\.\d+)?)/.exec(out);
  if (!m) throw new VmHarnessError('VM_QEMU_START_FAILED', `${path} --version printed no version: ${out}`);
  return m[1];
}

function onPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir !== '' && existsSync(join(dir, name))) return join(dir, name);
  }
  return null;
}

/**
 * Finds a QEMU. 'system': $VHOSTD_QEMU or qemu-system-x86_64 on PATH.
 * '7.2': build/qemu-7.2 (run scripts/fetch-qemu-7.2.sh first).
 * Throws VmPrerequisiteMissing when absent.
 */
export function findQemu(flavour: QemuFlavour): QemuBinary {
  if (flavour === 'system') {
    const path = process.env.VHOSTD_QEMU ?? onPath('qemu-system-x86_64');
    if (path === null || !existsSync(path)) {
      throw new VmPrerequisiteMissing('qemu-system-x86_64 not on PATH (install qemu-system-x86 from bookworm-backports)');
    }
    const version = qemuVersion(path, {});
    return { flavour, path, version, major: Number(version.split('.')[0]), dataDirs: [], env: {} };
  }
  const path = join(QEMU_72_DIR, 'usr/bin/qemu-system-x86_64');
  if (!existsSync(path)) {
    throw new VmPrerequisiteMissing(`${path} missing (run scripts/fetch-qemu-7.2.sh)`);
  }
  // Debian's 7.2 loads TCG itself as a module (accel-tcg-x86_64.so) and
  // refuses modules of another build: point it at its own.
  const env: Record<string, string> = { QEMU_MODULE_DIR: join(QEMU_72_DIR, 'usr/lib/x86_64-linux-gnu/qemu') };
  const libs = join(QEMU_72_DIR, 'libs');
  if (existsSync(libs)) env.LD_LIBRARY_PATH = libs;
  const version = qemuVersion(path, env);
  const dataDirs = [join(QEMU_72_DIR, 'usr/share/qemu'), join(QEMU_72_DIR, 'usr/share/seabios')];
  return { flavour, path, version, major: Number(version.split('.')[0]), dataDirs, env };
}

export interface VmOptions {
  /** Names the log file: build/vm/logs/<name>-<time>.log. Letters, digits, '-', '_', '.' */
  name: string;
  qemu: QemuBinary;
  image: GuestImage;
  /** Guest parameters, passed as vhostd.<key>=<value> (test= names the scenario). */
  params: Record<string, string | number>;
  /** Device arguments, e.g. ['-device', 'virtio-scsi-pci,id=scsi0', ...]. */
  deviceArgs: string[];
  /** Guest RAM; shared memfd, as vhost-user needs. Default 512. */
  memoryMiB?: number;
  /** Whole run, boot to power-off. Default 120 s. */
  timeoutMs?: number;
  /**
   * Until the guest's first step (boot, ~3-10 s under TCG). Default 90 s, or timeoutMs if less:
   * a VM stuck in firmware or in QEMU's device set-up does not use up the whole run's time.
   */
  bootTimeoutMs?: number;
  logDir?: string;
  /** vCPUs (default 1); Linux uses at most one virtio-blk queue per CPU. */
  cpus?: number;
  /** Called for each VHOSTD-RESULT line as it arrives (to act while the guest runs). */
  onResult?: (r: GuestResult) => void;
}

export interface VmRun {
  results: GuestResult[];
  /** The failed steps' output lines (VHOSTD-LOG), by step name. */
  logs: Map<string, string[]>;
  /** The guest printed VHOSTD-DONE. */
  done: boolean;
  timedOut: boolean;
  /** Timed out before the guest reported its first step. */
  bootTimedOut: boolean;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  elapsedMs: number;
  logPath: string;
  args: string[];
  /** The last console lines and QEMU stderr lines (CONSOLE_TAIL of them): where a stuck guest stopped. */
  consoleTail: string[];
}

const CONSOLE_TAIL = 30;

const KERNEL_ARGS = 'console=ttyS0 quiet panic=-1';
const PARAM_VALUE = /^[A-Za-z0-9_.,:@%+=\/-]*$/;

export function kernelCommandLine(params: Record<string, string | number>): string {
  const words = [KERNEL_ARGS];
  for (const [key, value] of Object.entries(params)) {
    const v = String(value);
    if (!/^[a-z_]+$/.test(key) || !PARAM_VALUE.test(v)) {
      throw new VmHarnessError('VM_BAD_KERNEL_PARAM', `vhostd.${key}=${JSON.stringify(v)}: key must be [a-z_]+, value without spaces or quotes`);
    }
    words.push(`vhostd.${key}=${v}`);
  }
  return words.join(' ');
}

export function qemuArgs(opts: VmOptions): string[] {
  const mem = opts.memoryMiB ?? 512;
  return [
    ...opts.qemu.dataDirs.flatMap((d) => ['-L', d]),
    '-accel', 'tcg',
    '-m', `${mem}M`,
    '-smp', String(opts.cpus ?? 1),
    // vhost-user back-ends map guest RAM: it must be a shared fd.
    '-object', `memory-backend-memfd,id=mem,size=${mem}M,share=on`,
    '-numa', 'node,memdev=mem',
    '-nographic', '-no-reboot',
    '-nic', 'none',
    '-kernel', opts.image.kernel,
    '-initrd', opts.image.initrd,
    '-append', kernelCommandLine(opts.params),
    ...opts.deviceArgs,
  ];
}

function shellQuote(a: string): string {
  return /^[A-Za-z0-9_.,:=\/@%+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

/** Boots the guest, waits for power-off (or the timeout) and returns what it reported. */
export async function runVm(opts: VmOptions): Promise<VmRun> {
  if (!/^[A-Za-z0-9_.-]+$/.test(opts.name)) {
    throw new VmHarnessError('VM_BAD_KERNEL_PARAM', `VM name ${JSON.stringify(opts.name)} is not usable in a file name`);
  }
  const logDir = opts.logDir ?? join(VM_BUILD_DIR, 'logs');
  mkdirSync(logDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const logPath = join(logDir, `${opts.name}-${stamp}.log`);
  const args = qemuArgs(opts);
  const log = createWriteStream(logPath);
  const envText = Object.entries(opts.qemu.env).map(([k, v]) => `${k}=${shellQuote(v)} `).join('');
  log.write(`# ${envText}${[opts.qemu.path, ...args].map(shellQuote).join(' ')}\n`);

  const start = Date.now();
  const child = spawn(opts.qemu.path, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.qemu.env },
  });
  const run: VmRun = {
    results: [], logs: new Map(), done: false, timedOut: false, bootTimedOut: false,
    exitCode: null, signal: null, elapsedMs: 0, logPath, args, consoleTail: [],
  };
  const keep = (line: string): void => {
    run.consoleTail.push(line);
    if (run.consoleTail.length > CONSOLE_TAIL) run.consoleTail.shift();
  };
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    log.write(`${line}\n`);
    keep(line);
    const g = parseGuestLine(line);
    if (g === null) return;
    if (g.kind === 'done') run.done = true;
    else if (g.kind === 'log') {
      const list = run.logs.get(g.name) ?? [];
      list.push(g.text);
      run.logs.set(g.name, list);
    } else {
      const r = { name: g.name, status: g.status, detail: g.detail, atMs: Date.now() - start };
      run.results.push(r);
      opts.onResult?.(r);
    }
  });
  child.stderr.on('data', (chunk: Buffer) => {
    log.write(`[qemu stderr] ${chunk.toString()}`);
    for (const line of chunk.toString().split('\n')) if (line !== '') keep(`[qemu stderr] ${line}`);
  });

  const timeoutMs = opts.timeoutMs ?? 120_000;
  let killTimer: NodeJS.Timeout | undefined;
  const stopVm = (): void => {
    if (run.timedOut) return;
    run.timedOut = true;
    child.kill('SIGTERM');
    killTimer = setTimeout(() => child.kill('SIGKILL'), 3000);
  };
  const timer = setTimeout(stopVm, timeoutMs);
  const bootTimer = setTimeout(() => {
    if (run.results.length > 0) return;
    run.bootTimedOut = true;
    stopVm();
  }, Math.min(opts.bootTimeoutMs ?? 90_000, timeoutMs));

  await new Promise<void>((resolveRun, rejectRun) => {
    child.once('error', (e) => {
      clearTimeout(timer);
      clearTimeout(bootTimer);
      rejectRun(new VmHarnessError('VM_QEMU_START_FAILED', `cannot start ${opts.qemu.path}: ${e.message}`));
    });
    child.once('close', (code, signal) => {
      run.exitCode = code;
      run.signal = signal;
      resolveRun();
    });
  }).finally(() => {
    clearTimeout(timer);
    clearTimeout(bootTimer);
    if (killTimer !== undefined) clearTimeout(killTimer);
  });
  run.elapsedMs = Date.now() - start;
  const end = `# exit=${run.exitCode} signal=${run.signal} timedOut=${run.timedOut} bootTimedOut=${run.bootTimedOut} elapsed=${run.elapsedMs}ms\n`;
  await new Promise<void>((r) => log.end(end, () => r()));
  return run;
}
